#!/usr/bin/python3
"""Reference replicator following the seed design (per-stream loop:
XREADGROUP COUNT batch BLOCK poll -> XADD each entry with its ID -> XACK),
written with Debian's python3-redis (redis.asyncio). Used only as the
baseline that the project is measured against, side by side (deno task
bench, row a). The project's own copy of the original service's loop: one
XADD round trip per entry, as the original service does (--pipelined sends a
batch's XADDs in one round trip instead). scripts/setup.sh installs
python3-redis; tests/seed_baseline_test.ts checks that it copies exactly.

usage: seed_baseline.py SRC_PORT DST_PORT STREAM [BATCH] [--pipelined]
Drains STREAM (which must exist on SRC) into DST and prints msgs/s.
"""
import asyncio, sys, time
import redis.asyncio as aioredis


async def main():
    sp, dp, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    batch = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4].isdigit() else 100
    pipelined = "--pipelined" in sys.argv
    src, dst = aioredis.Redis(port=sp), aioredis.Redis(port=dp)
    group = "seed-baseline-group"
    try:
        await src.xgroup_destroy(key, group)
    except Exception:
        pass
    await src.xgroup_create(key, group, id="0")
    t0, n = time.perf_counter(), 0
    while True:
        res = await src.xreadgroup(group, "c1", {key: ">"}, count=batch, block=1)
        if not res or not res[0][1]:
            break
        entries = res[0][1]
        if pipelined:
            p = dst.pipeline(transaction=False)
            for mid, fields in entries:
                p.xadd(key, fields, id=mid)
            await p.execute()
        else:
            for mid, fields in entries:
                await dst.xadd(key, fields, id=mid)
        await src.xack(key, group, *[e[0] for e in entries])
        n += len(entries)
    dt = time.perf_counter() - t0
    await src.xgroup_destroy(key, group)
    print(f"{n} {n / dt:.0f}")


asyncio.run(main())
