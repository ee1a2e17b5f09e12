/**
 * What the lease fence costs the source Redis, per entry read, and what the
 * other ways of fencing a read that were considered would cost.
 *
 * Usage: deno run -A scripts/fence_cost.ts [--entries N] [--count N]
 *
 * On a fresh `redis-server` (no persistence): one stream of --entries
 * entries (default 200,000) of 5 fields of about 15 bytes, read from the
 * start by a new group in reads of --count entries (default 1,000) until
 * none is left, once per way, twice over. The figure is the server's own
 * CPU (`INFO cpu` used_cpu_user + used_cpu_sys, before and after) per
 * entry read, so the client's speed does not count. The ways:
 *
 * - direct: plain XREADGROUP (what `STREAM_LEASES=false` sends);
 * - fenced: the FENCED_READ script the reader sends with leases (the lease
 *   checked, then XREADGROUP inside Lua);
 * - lua-in: the same script returning only the count of entries, so what is
 *   left is the cost of turning the reply into Lua values;
 * - xrange+xclaim: XRANGE (native), then a script that checks the lease and
 *   takes the IDs with XCLAIM FORCE JUSTID LASTID (no entry data in Lua);
 * - multi: MULTI, GET of the lease, XREADGROUP, EXEC (cheap, but the GET
 *   does not stop the read: for reference, it is not a fence).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { FENCED_READ } from "../lib/replication/mod.ts";
import { connect, RedisServer } from "../testing/redis.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    entries: { type: "string", default: "200000" },
    count: { type: "string", default: "1000" },
  },
});
const ENTRIES = Number(values.entries);
const COUNT = String(Number(values.count));
const KEY = "fence-cost";
const LEASE = "fence-cost-lease";
const VALUE = "instance/token.1";

const READ_CALL = "local reply = redis.call(unpack(args))";
if (!FENCED_READ.includes(READ_CALL)) {
  throw new Error("FENCED_READ no longer reads with " + READ_CALL);
}
const COUNT_ONLY = FENCED_READ.replace(
  READ_CALL,
  `${READ_CALL}\nif not reply then return false end\ndo return #reply[1][2] end`,
);

/** Entries in a stream's flat list of the fenced reply: `[id, n, field, value, ..., id, n, ...]`. */
function flatCount(flat: unknown[]): number {
  let count = 0;
  for (let i = 0; i < flat.length; count++) i += 2 + Math.max(0, Number(flat[i + 1]));
  return count;
}
const CLAIM = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('LEASELOST 0') end
local args = {'XCLAIM', KEYS[2], ARGV[2], ARGV[3], '0'}
for i = 4, #ARGV do args[#args + 1] = ARGV[i] end
args[#args + 1] = 'FORCE'; args[#args + 1] = 'JUSTID'; args[#args + 1] = 'LASTID'; args[#args + 1] = ARGV[#ARGV]
return #redis.call(unpack(args))`;

await using server = await RedisServer.start();
await using c = await connect(server);
// deno-lint-ignore no-explicit-any
const send = (args: string[]): Promise<any> => c.send(args);

async function serverCpu(): Promise<number> {
  const info = String(await send(["INFO", "cpu"]));
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)![1]);
  return field("used_cpu_user") + field("used_cpu_sys");
}

const v = "x".repeat(14);
for (let i = 0; i < ENTRIES; i += 2000) {
  const n = Math.min(2000, ENTRIES - i);
  await Promise.all(
    Array.from(
      { length: n },
      (_, j) => send(["XADD", KEY, "*", "f1", v + j, "f2", v, "f3", v, "f4", v, "f5", v]),
    ),
  );
}
await send(["SET", LEASE, VALUE]);

/** One read of the way; the number of entries it took (0: none left). */
type Read = (state: { last: string }) => Promise<number>;
const fencedArgs = (
  script: string,
) => ["EVAL", script, "2", LEASE, KEY, "g", "c", COUNT, VALUE, ">"];
const WAYS: Record<string, Read> = {
  direct: async () => {
    const r = await send(["XREADGROUP", "GROUP", "g", "c", "COUNT", COUNT, "STREAMS", KEY, ">"]);
    return r ? r[0][1].length : 0;
  },
  fenced: async () => {
    // {reply, before}: reply is XREADGROUP's, each stream's entries flat.
    const [reply] = await send(fencedArgs(FENCED_READ));
    return reply ? flatCount(reply[0][1]) : 0;
  },
  "lua-in": async () => Number(await send(fencedArgs(COUNT_ONLY)) ?? 0),
  "xrange+xclaim": async (state) => {
    const range: unknown[][] = await send(["XRANGE", KEY, `(${state.last}`, "+", "COUNT", COUNT]);
    if (range.length === 0) return 0;
    const ids = range.map((e) => String(e[0]));
    state.last = ids[ids.length - 1];
    return Number(await send(["EVAL", CLAIM, "2", LEASE, KEY, VALUE, "g", "c", ...ids]));
  },
  multi: async () => {
    const [, , , r] = await Promise.all([
      send(["MULTI"]),
      send(["GET", LEASE]),
      send(["XREADGROUP", "GROUP", "g", "c", "COUNT", COUNT, "STREAMS", KEY, ">"]),
      send(["EXEC"]),
    ]);
    return r[1] ? r[1][0][1].length : 0;
  },
};

console.log(`${ENTRIES} entries, reads of ${COUNT}; source CPU per entry read (µs)`);
for (const round of [1, 2]) {
  const line: string[] = [];
  for (const [name, read] of Object.entries(WAYS)) {
    await send(["XGROUP", "DESTROY", KEY, "g"]);
    await send(["XGROUP", "CREATE", KEY, "g", "0"]);
    const before = await serverCpu();
    const state = { last: "0-0" };
    let taken = 0;
    for (let n; (n = await read(state)) > 0;) taken += n;
    const micros = (await serverCpu() - before) * 1e6 / taken;
    if (taken !== ENTRIES) {
      throw new Error(`The way "${name}" took ${taken} entries, not ${ENTRIES}`);
    }
    line.push(`${name} ${micros.toFixed(2)}`);
  }
  console.log(`round ${round}: ${line.join(", ")}`);
}
