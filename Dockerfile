# syntax=docker/dockerfile:1
# Multi-stage build of redis-stream-sync.
#   docker build -t redis-stream-sync .        (or scripts/build_image.sh)
#   docker run --rm -e SOURCE_REDIS_HOST=... -e TARGET_REDIS_HOST=... redis-stream-sync
#   docker run --rm -v $PWD/env.conf:/config/env.conf:ro redis-stream-sync

# 1. Build: compile main.ts into one executable with the official Deno image.
FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY main.ts mod.ts ./
COPY lib/ lib/
COPY scripts/compile_failed.ts scripts/
RUN deno install --frozen --entrypoint main.ts \
 && deno task compile \
 && ./dist/redis-stream-sync --version

# 2. Run: distroless "cc" has just what the binary links against (glibc,
#    libgcc, libstdc++); no shell, no package manager. Non-root user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/dist/redis-stream-sync /usr/local/bin/redis-stream-sync
# The configuration comes from environment variables, or an env.conf mounted
# at /config/env.conf (read because it is the working directory's ./env.conf).
WORKDIR /config
ENV METRICS_HOST=0.0.0.0
EXPOSE 9108
USER nonroot:nonroot
# No shell and no curl here: the binary asks its own listener (http://127.0.0.1:9108/healthz,
# from METRICS_HOST/METRICS_PORT; `health --url .../readyz` asks readiness instead) and exits
# 0 when it answers 200. Liveness only: an unreachable Redis makes /readyz fail, not this.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/redis-stream-sync", "health"]
ENTRYPOINT ["/usr/local/bin/redis-stream-sync"]
CMD ["run"]
