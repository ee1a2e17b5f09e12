/**
 * `deno task chaos [--duration SECONDS] [--seed N] [--streams N] [--rate N] [--instances N]`:
 * a long randomised fault run. Starts a source and a target
 * `redis-server` (AOF, appendfsync always), a TCP proxy in front of each
 * (testing/proxy.ts), a producer writing into `--streams` streams, and the
 * replicator as a real CLI process (main.ts with the `start` task's
 * permission flags) connected through the proxies. For `--duration`
 * seconds it injects random faults chosen by a PRNG seeded with `--seed`:
 * SIGKILL of the replicator (restarted), SIGKILL or graceful restart of
 * either server, and, on either proxy, a cut of every connection, a
 * black hole (a hang) or added latency. Then it stops the faults and the
 * producer, stops the replicator with SIGTERM (it must exit 0), runs
 * `run --once`, and checks that every target stream is an exact copy of its
 * source (IDs, bytes, order; lib/ops/verify.ts compareStream) with nothing
 * pending. With `--instances 2` or 3 that many replicators run at once
 * (leases share the streams), and the faults also pause one (SIGSTOP,
 * sometimes past STREAM_LEASE_TTL) and kill one while the others run.
 * With `--tamper`, other people's hands on the servers too
 * (scripts/_chaos_tamper.ts: target FLUSHALL, a target stream deleted,
 * either server out of memory for a while): the tool must heal each, and
 * the run still ends exact. With `--events`, the source sends `xadd`
 * keyspace notifications (`notify-keyspace-events Et`, kept across its
 * restarts): readers wait in the tool, woken by them.
 * Fault log on stderr; one summary line on stdout:
 *
 * ```
 * chaos: seed=1 duration=300s faults=97 (kills=29 source-restarts=14 target-restarts=15 net=39) entries=750000 streams=8 result=PASS
 * ```
 *
 * Exits 0 on PASS, 1 on FAIL (the differences are printed above the summary).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { RedisConnection } from "../lib/redis/mod.ts";
import { makeStreamRef } from "../lib/replication/mod.ts";
import { compareStream } from "../lib/ops/mod.ts";
import { runCli } from "../testing/cli.ts";
import { Replicators, tail } from "./_chaos_replicators.ts";
import { LOUD_KINDS, tamper, TAMPER_KINDS } from "./_chaos_tamper.ts";
import { loudDifference, totalLength, waitForCatchUp } from "./_chaos_checks.ts";
import { prng, Producer } from "../testing/producer.ts";
import { TcpProxy } from "../testing/proxy.ts";
import { connect, RedisServer } from "../testing/redis.ts";

const GROUP = "redis-sync-group";
const START = performance.now();

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function note(message: string): void {
  const seconds = ((performance.now() - START) / 1000).toFixed(1).padStart(6);
  console.error(`chaos [${seconds}s] ${message}`);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface Options {
  duration: number;
  seed: number;
  streams: number;
  rate: number;
  instances: number;
  tamper: boolean;
  events: boolean;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      duration: { type: "string", default: "60" },
      seed: { type: "string" },
      streams: { type: "string", default: "8" },
      rate: { type: "string", default: "2500" },
      instances: { type: "string", default: "1" },
      tamper: { type: "boolean", default: false },
      events: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      "deno task chaos [--duration SECONDS=60] [--seed N] [--streams N=8] [--rate ENTRIES_PER_S=2500] [--instances N=1] [--tamper] [--events]",
    );
    Deno.exit(0);
  }
  const number = (name: string, text: string, min: number): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) {
      console.error(`--${name} must be an integer >= ${min}, not "${text}"`);
      Deno.exit(2);
    }
    return value;
  };
  return {
    duration: number("duration", values.duration!, 1),
    seed: values.seed === undefined
      ? Math.floor(Math.random() * 2 ** 31)
      : number("seed", values.seed, 0),
    streams: number("streams", values.streams!, 1),
    rate: number("rate", values.rate!, 1),
    instances: number("instances", values.instances!, 1),
    tamper: values.tamper ?? false,
    events: values.events ?? false,
  };
}

async function startServer(server: RedisServer, name: string): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      await server.start();
      return;
    } catch (error) {
      if (attempt >= 5) throw error;
      note(`${name} server did not start (${errorText(error).split("\n")[0]}); retrying`);
      await delay(500);
    }
  }
}

async function main(): Promise<number> {
  const options = parseOptions();
  const { duration, seed, streams } = options;
  const random = prng(seed);
  const keys = Array.from({ length: streams }, (_, i) => `chaos-${i}-stream`);
  const counts = { kills: 0, pauses: 0, source: 0, target: 0, net: 0, tamper: 0 };
  /** The stream of the loud tamper faults, and whether one hit it. */
  const loudKey = keys[keys.length - 1];
  const loud = new Set<string>();
  const problems: string[] = [];
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  Deno.addSignalListener("SIGINT", onSigint);

  note(
    `seed=${seed} duration=${duration}s streams=${streams} rate=${options.rate}/s instances=${options.instances}${
      options.tamper ? " tamper" : ""
    }${options.events ? " events" : ""}; starting servers`,
  );
  await using source = await RedisServer.start({
    appendOnly: true,
    ...(options.events ? { args: ["--notify-keyspace-events", "Et"] } : {}),
  });
  await using target = await RedisServer.start({ appendOnly: true });
  await using sourceProxy = await TcpProxy.start(source);
  await using targetProxy = await TcpProxy.start(target);
  const proxies = { source: sourceProxy, target: targetProxy };
  const servers = { source, target };

  const env: Record<string, string> = {
    SOURCE_REDIS_HOST: sourceProxy.host,
    SOURCE_REDIS_PORT: String(sourceProxy.port),
    TARGET_REDIS_HOST: targetProxy.host,
    TARGET_REDIS_PORT: String(targetProxy.port),
    REDIS_DB_SEARCH_RANGE: "0",
    STREAM_POLL_INTERVAL: "0.2",
    STREAM_DISCOVERY_INTERVAL: "1",
    STREAM_PENDING_CHECK_INTERVAL: "5",
    LOG_LEVEL: "WARNING",
    METRICS_PORT: "0",
    // Several instances: short leases, so that pauses outlive them and takeovers happen.
    STREAM_LEASE_TTL: options.instances > 1 ? "3" : "10",
  };
  for (const side of ["SOURCE", "TARGET"]) {
    env[`${side}_REDIS_MAX_RETRIES`] = "100000";
    env[`${side}_REDIS_BACKOFF_BASE`] = "0.05";
    env[`${side}_REDIS_BACKOFF_MAX`] = "1";
    env[`${side}_REDIS_COMMAND_TIMEOUT`] = "2";
    env[`${side}_REDIS_HEALTH_CHECK_INTERVAL`] = "1";
  }

  const producer = new Producer(source, keys, prng(seed ^ 0x5eed));
  const producing = producer.runRate(options.rate);
  await using replicator = new Replicators(env, { count: options.instances, note });
  replicator.start();
  const anyInstance = () => Math.floor(random() * replicator.count);

  const end = performance.now() + duration * 1000;
  let nextReport = performance.now() + 30_000;
  while (performance.now() < end && !interrupted) {
    await delay(500 + random() * 2500);
    if (performance.now() >= end || interrupted) break;
    await replicator.checkAlive();
    const pick = random();
    if (options.tamper && random() < 0.3) {
      counts.tamper++;
      // Now and then a fault no tool can heal, always on the same stream: it must end loud.
      const loudNow = random() < 0.15;
      const kinds = loudNow ? LOUD_KINDS : TAMPER_KINDS;
      const kind = kinds[Math.floor(random() * kinds.length)];
      const loudHit = loud.size > 0;
      if (loudNow) loud.add(loudKey);
      const done = await tamper(kind, { source, target, keys, random, loudKey, loudHit })
        .catch(errorText);
      note(`tamper: ${done}`);
    } else if (replicator.count > 1 && pick < 0.15) {
      counts.pauses++;
      const i = anyInstance();
      const ms = 500 + Math.floor(random() * 7500);
      note(`replicator ${i} SIGSTOP for ${ms} ms (lease TTL 3 s)`);
      await replicator.pause(i, ms);
    } else if (pick < 0.3) {
      counts.kills++;
      const i = anyInstance();
      const pause = Math.floor(random() * (replicator.count > 1 ? 4000 : 500));
      note(`replicator ${i} SIGKILL (restart after ${pause} ms)`);
      await replicator.kill(i);
      await delay(pause);
      replicator.start(i);
    } else if (pick < 0.6) {
      const name = pick < 0.45 ? "source" : "target";
      const server = servers[name];
      const graceful = random() < 0.3;
      const down = 200 + Math.floor(random() * 2000);
      counts[name]++;
      note(`${name} server ${graceful ? "stop" : "SIGKILL"}, down ${down} ms`);
      if (graceful) await server.stop();
      else await server.kill();
      if (random() < 0.25) {
        // The replicator also restarts while the server is down: its start-up must wait.
        counts.kills++;
        const i = anyInstance();
        note(`replicator ${i} SIGKILL while the ${name} server is down (restarted at once)`);
        await replicator.kill(i);
        replicator.start(i);
      }
      await delay(down);
      await startServer(server, name);
    } else {
      counts.net++;
      const name = random() < 0.5 ? "source" : "target";
      const proxy = proxies[name];
      const kind = random();
      if (kind < 0.4) {
        note(`${name} proxy cut (${proxy.connections} connections)`);
        proxy.cut();
      } else if (kind < 0.7) {
        const ms = 300 + Math.floor(random() * 4000);
        note(`${name} proxy black hole for ${ms} ms`);
        proxy.blackhole(true);
        await delay(ms);
        proxy.blackhole(false);
      } else {
        const ms = 10 + Math.floor(random() * 400);
        const forMs = 1000 + Math.floor(random() * 4000);
        note(`${name} proxy delay ${ms} ms for ${forMs} ms`);
        proxy.delay(ms);
        await delay(forMs);
        proxy.delay(0);
      }
    }
    if (performance.now() >= nextReport) {
      nextReport += 30_000;
      note(
        `progress: produced ${producer.acked} (failed writes ${producer.failed}), on the target ${
          (await totalLength(target, keys)) ?? "?"
        }`,
      );
    }
  }
  Deno.removeSignalListener("SIGINT", onSigint);

  note("faults stopped; stopping the producer");
  for (const proxy of [sourceProxy, targetProxy]) {
    proxy.blackhole(false);
    proxy.delay(0);
  }
  for (const [name, server] of Object.entries(servers)) {
    if (!server.running) await startServer(server, name);
  }
  await replicator.checkAlive();
  producer.stop();
  await producing;
  note("waiting for the running replicator to catch up");
  const exact = keys.filter((k) => !loud.has(k));
  const caughtUp = await waitForCatchUp(source, target, exact, 180_000);
  if (!caughtUp.ok) {
    problems.push(`the running replicator did not catch up within 180 s: ${caughtUp.detail}`);
  } else {
    note(`caught up in ${caughtUp.seconds.toFixed(1)} s`);
  }
  await replicator.checkAlive();
  problems.push(...replicator.unexpectedExits);

  note("stopping the replicators (SIGTERM)");
  for (const stopped of await replicator.stop()) {
    if (stopped.code !== 0) {
      problems.push(`run exited ${stopped.code} on SIGTERM (expected 0):\n${stopped.stderr}`);
    }
  }

  note("run --once");
  const once = await runCli(["run", "--once"], { env, timeoutMs: 900_000 }).catch((error) => ({
    code: -1,
    stdout: "",
    stderr: errorText(error),
    signal: null,
  }));
  if (once.code !== 0 && loud.size === 0) {
    problems.push(`run --once exited ${once.code} (expected 0):\n${tail(once.stderr, 40)}`);
  }

  note("comparing every stream");
  let entries = 0;
  const src = new RedisConnection({ role: "source", host: source.host, port: source.port });
  const dst = new RedisConnection({ role: "target", host: target.host, port: target.port });
  await using client = await connect(source);
  try {
    for (const key of keys) {
      const cmp = await compareStream({ source: src, target: dst }, makeStreamRef(0, key), {
        windowSize: 2000,
      });
      entries += cmp.sourceEntries;
      const differs = !cmp.identical || cmp.sourceEntries !== cmp.targetEntries;
      if (loud.has(key)) {
        // A fault no tool can heal: what differs must have been said, by name, from where the
        // difference begins (below that, the target is an exact copy).
        if (differs) problems.push(...loudDifference(key, cmp, once.stderr));
        continue;
      }
      if (differs) {
        problems.push(
          `${key}: source ${cmp.sourceEntries} entries (${cmp.sourceFirstId}..${cmp.sourceLastId}), target ${cmp.targetEntries} (${cmp.targetFirstId}..${cmp.targetLastId}); missing ${cmp.missing} ${
            JSON.stringify(cmp.missingIds)
          }, extra ${cmp.extra} ${JSON.stringify(cmp.extraIds)}, changed ${cmp.changed} ${
            JSON.stringify(cmp.changedIds)
          }`,
        );
      }
      try {
        const pending = Number((await client.send(["XPENDING", key, GROUP]) as unknown[])[0]);
        if (pending !== 0) problems.push(`${key}: ${pending} entries pending in ${GROUP}`);
      } catch (error) {
        problems.push(`${key}: XPENDING failed: ${errorText(error)}`);
      }
    }
  } finally {
    src.close();
    dst.close();
  }
  if (loud.size === 0 && entries < producer.acked) {
    problems.push(`the source holds ${entries} entries, fewer than the ${producer.acked} acked`);
  }
  if (interrupted) problems.push("interrupted (SIGINT) before the end of the fault phase");

  for (const problem of problems) console.log(`FAIL: ${problem}`);
  const faults = counts.kills + counts.pauses + counts.source + counts.target + counts.net +
    counts.tamper;
  const result = problems.length === 0 ? "PASS" : "FAIL";
  console.log(
    `chaos: seed=${seed} duration=${duration}s instances=${options.instances} faults=${faults} (kills=${counts.kills} pauses=${counts.pauses} source-restarts=${counts.source} target-restarts=${counts.target} net=${counts.net} tamper=${counts.tamper}) entries=${entries} streams=${streams} result=${result}`,
  );
  return problems.length === 0 ? 0 : 1;
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main();
  } catch (error) {
    console.error(error);
    console.log(`chaos: result=FAIL (${errorText(error).split("\n")[0]})`);
    code = 1;
  }
  Deno.exit(code);
}
