/**
 * glibc's `malloc_trim(0)`: gives the free pages inside the C heap back to
 * the system. The runtime's own allocations (the backing stores of buffers,
 * sockets' buffers) go through malloc; after a burst (starting 100,000
 * streams) glibc keeps what was freed in its heap, where a hole cannot be
 * returned until everything above it is free: measured at 100,000 quiet
 * streams, 101 MB of C heap of which `malloc_trim(0)` gave 73 MB back
 * (38 ms the first time, 5 ms later), the process' RSS 342 → 268 MB.
 *
 * Loaded through FFI from the C library's absolute path, which the
 * `--allow-ffi` flag of the tasks names (a permission for that one
 * library, not for any); where it is not granted, absent (musl, macOS) or
 * cannot be loaded, there is no trim and nothing else changes.
 *
 * @module
 */

/** Where glibc lives: Debian/Ubuntu (x86-64, arm64), Fedora/RHEL and others. */
export const LIBC_PATHS: readonly string[] = [
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/lib/aarch64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
];

let trim: (() => void) | null | undefined;

/** `malloc_trim(0)`, or null where it cannot be called (see the module doc). */
export function mallocTrim(): (() => void) | null {
  if (trim !== undefined) return trim;
  trim = null;
  if (Deno.build.os !== "linux") return trim;
  for (const path of LIBC_PATHS) {
    try {
      if (Deno.permissions.querySync({ name: "ffi", path }).state !== "granted") continue;
      Deno.statSync(path);
      const lib = Deno.dlopen(path, {
        malloc_trim: { parameters: ["usize"], result: "i32" },
      });
      trim = () => void lib.symbols.malloc_trim(0n);
      break;
    } catch {
      // Not here, or not glibc: the next path.
    }
  }
  return trim;
}
