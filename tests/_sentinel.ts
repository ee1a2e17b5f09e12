/**
 * A Redis Sentinel setup for tests: a master, one replica of it, and three
 * `redis-server --sentinel` processes that monitor it as "mymaster" (quorum
 * 2, down after 1 s, INFO every 1 s, hello every 250 ms), all on free
 * loopback ports. `failover()` runs `SENTINEL FAILOVER` and waits until the
 * replica is the master everyone names.
 *
 * @module
 */
import { join } from "node:path";
import { waitFor } from "../testing/cli.ts";
import { connect, freePort, RedisServer } from "../testing/redis.ts";
import { startTlsServer, type TestCertificates } from "../testing/tls.ts";

export const MASTER_NAME = "mymaster";

/**
 * Sentinel's own timers, shortened with `SENTINEL DEBUG` (they are not
 * configuration settings): INFO to the master and the replicas every second
 * (default 10 s; Sentinel uses 1 s anyway while a failover is under way) and
 * hello messages every 250 ms (default 2 s). Sentinels then find each other
 * and the replica within a second, and a failover ends (the old master turned
 * into a replica, which waits for 4 hello periods and the next INFO) within
 * about 2 s instead of 11 s. The order of the steps of a failover is
 * Sentinel's own, unchanged.
 */
const SENTINEL_PERIODS = ["info-period", "1000", "publish-period", "250"];

/** One sentinel process. */
class SentinelProcess implements AsyncDisposable {
  readonly port: number;
  readonly dir: string;
  readonly #child: Deno.ChildProcess;

  private constructor(port: number, dir: string, child: Deno.ChildProcess) {
    this.port = port;
    this.dir = dir;
    this.#child = child;
  }

  static async start(
    masterPort: number,
    quorum = 2,
    certs?: TestCertificates,
  ): Promise<SentinelProcess> {
    const dir = await Deno.makeTempDir({ prefix: "redis-stream-sync-sentinel-" });
    const port = freePort();
    const conf = join(dir, "sentinel.conf");
    await Deno.writeTextFile(
      conf,
      [
        ...(certs
          ? [
            "port 0",
            `tls-port ${port}`,
            `tls-cert-file ${certs.serverCert}`,
            `tls-key-file ${certs.serverKey}`,
            `tls-ca-cert-file ${certs.ca}`,
            "tls-auth-clients no",
            "tls-replication yes",
          ]
          : [`port ${port}`]),
        "bind 127.0.0.1",
        "protected-mode no",
        "daemonize no",
        `dir ${dir}`,
        `logfile ${join(dir, "sentinel.log")}`,
        `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} ${quorum}`,
        `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
        `sentinel failover-timeout ${MASTER_NAME} 5000`,
        `sentinel parallel-syncs ${MASTER_NAME} 1`,
        "",
      ].join("\n"),
    );
    const child = new Deno.Command("redis-server", {
      args: [conf, "--sentinel"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const sentinel = new SentinelProcess(port, dir, child);
    try {
      await waitFor(async () => {
        if (certs) return (await tlsCli(certs, port, ["PING"])) === "PONG";
        await using c = await connect({ host: "127.0.0.1", port });
        return String(await c.send(["PING"])) === "PONG";
      }, { timeoutMs: 10_000, message: `sentinel on port ${port} answering` });
      const debug = ["SENTINEL", "DEBUG", ...SENTINEL_PERIODS];
      let reply: string;
      if (certs) reply = await tlsCli(certs, port, debug);
      else {
        await using c = await connect({ host: "127.0.0.1", port });
        reply = String(await c.send(debug));
      }
      if (reply !== "OK") throw new Error(`SENTINEL DEBUG on port ${port}: ${reply}`);
    } catch (error) {
      await sentinel[Symbol.asyncDispose]();
      throw error;
    }
    return sentinel;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // exited
    }
    await this.#child.status;
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** A master, its replica and three sentinels. */
export interface SentinelSetup extends AsyncDisposable {
  /** The servers: `servers[0]` is the master at the start, `servers[1]` its replica. */
  servers: [RedisServer, RedisServer];
  /** The sentinels' ports. */
  sentinelPorts: number[];
  /** `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`, for `*_REDIS_SENTINELS`. */
  sentinels: string;
  /** The server the sentinels name as master now. */
  master(): Promise<RedisServer>;
  /** `SENTINEL FAILOVER`; resolves once the other server is the master the sentinels name. */
  failover(): Promise<RedisServer>;
}

async function masterPortOf(port: number): Promise<number | undefined> {
  await using s = await connect({ host: "127.0.0.1", port });
  const reply = await s.send(["SENTINEL", "get-master-addr-by-name", MASTER_NAME]) as unknown[];
  return reply ? Number(String(reply[1])) : undefined;
}

/** Waits until `replica` has its link to its master up. */
function waitInSync(replica: RedisServer): Promise<void> {
  return waitFor(async () => {
    await using r = await connect(replica);
    return /master_link_status:up/.test(String(await r.send(["INFO", "replication"])));
  }, { timeoutMs: 20_000, message: `the replica on port ${replica.port} in sync` });
}

async function role(server: RedisServer): Promise<string> {
  await using c = await connect(server);
  return String((await c.send(["ROLE"]) as unknown[])[0]);
}

/**
 * Every server's arguments: a full sync starts at once, not 5 s later (Redis' default for
 * diskless syncs, waiting for more replicas to share the transfer). Both servers have it: a
 * failover turns the replica into the master the old master syncs from.
 */
const SYNC_AT_ONCE = ["--repl-diskless-sync-delay", "0"];

/** Starts `count` sentinels of the master on `masterPort` at the same time. */
async function startSentinels(
  count: number,
  masterPort: number,
  certs?: TestCertificates,
): Promise<SentinelProcess[]> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => SentinelProcess.start(masterPort, 2, certs)),
  );
  const sentinels = started.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  const failed = started.find((s) => s.status === "rejected");
  if (failed) {
    for (const s of sentinels) await s[Symbol.asyncDispose]();
    throw failed.reason;
  }
  return sentinels;
}

/** Options for {@linkcode startSentinelSetup} and {@linkcode startTlsSentinelSetup}. */
export interface SentinelSetupOptions {
  /**
   * Wait until every sentinel knows the replica and the other sentinels
   * (their hello messages go every 250 ms): a failover needs it. Without, the
   * sentinels name the master from their configuration at once, which is all
   * that `SENTINEL get-master-addr-by-name` (the tool's only question) needs.
   * @default {true}
   */
  failoverReady?: boolean;
}

/**
 * Starts the master (persistent), its replica and three sentinels, and waits until all see each
 * other (unless `failoverReady` is false).
 */
export async function startSentinelSetup(
  options: SentinelSetupOptions = {},
): Promise<SentinelSetup> {
  const master = await RedisServer.start({ appendOnly: true, args: SYNC_AT_ONCE });
  const replica = await RedisServer.start({
    appendOnly: true,
    args: [...SYNC_AT_ONCE, "--replicaof", "127.0.0.1", String(master.port)],
  });
  const sentinels: SentinelProcess[] = [];
  const dispose = async () => {
    for (const s of sentinels) await s[Symbol.asyncDispose]();
    await replica[Symbol.asyncDispose]();
    await master[Symbol.asyncDispose]();
  };
  try {
    await waitInSync(replica);
    sentinels.push(...await startSentinels(3, master.port));
    // A failover needs every sentinel to know the replica and the other sentinels.
    if (options.failoverReady ?? true) {
      await waitFor(async () => {
        for (const s of sentinels) {
          await using c = await connect({ host: "127.0.0.1", port: s.port });
          const info = String(await c.send(["INFO", "sentinel"]));
          if (!/slaves=1,sentinels=3/.test(info)) return false;
        }
        return true;
      }, { timeoutMs: 30_000, message: "three sentinels that see the replica and each other" });
    }
  } catch (error) {
    await dispose();
    throw error;
  }
  const servers: [RedisServer, RedisServer] = [master, replica];
  const setup: SentinelSetup = {
    servers,
    sentinelPorts: sentinels.map((s) => s.port),
    sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`).join(","),
    async master() {
      const port = await masterPortOf(sentinels[0].port);
      const found = servers.find((s) => s.port === port);
      if (!found) throw new Error(`the sentinels name port ${port}, not one of the servers`);
      return found;
    },
    async failover() {
      const before = await setup.master();
      const after = servers.find((s) => s !== before)!;
      await using c = await connect({ host: "127.0.0.1", port: sentinels[0].port });
      await c.send(["SENTINEL", "FAILOVER", MASTER_NAME]);
      await waitFor(async () => {
        for (const s of sentinels) if (await masterPortOf(s.port) !== after.port) return false;
        return await role(after) === "master" && await role(before) === "slave";
      }, { timeoutMs: 30_000, message: `port ${after.port} the master everyone names` });
      return after;
    },
    [Symbol.asyncDispose]: dispose,
  };
  return setup;
}

/**
 * One sentinel that monitors `port` as "mymaster" alone, with a quorum it
 * can never reach (so it never fails anything over): for a sentinel that
 * names the wrong server.
 */
export async function startLoneSentinel(port: number): Promise<{ port: number } & AsyncDisposable> {
  return await SentinelProcess.start(port, 3);
}

/** `redis-cli --tls` against a TLS port; its output, trimmed. */
export async function tlsCli(
  certs: TestCertificates,
  port: number,
  args: string[],
): Promise<string> {
  const out = await new Deno.Command("redis-cli", {
    args: ["--tls", "--cacert", certs.ca, "-h", "127.0.0.1", "-p", String(port), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

/**
 * A master and its replica that speak only TLS to each other and to the
 * three sentinels, which speak TLS too (`tls-replication yes` everywhere):
 * the tests read and write the servers on their plain ports.
 */
export async function startTlsSentinelSetup(
  certs: TestCertificates,
  options: SentinelSetupOptions = {},
): Promise<{ master: RedisServer; sentinels: string } & AsyncDisposable> {
  const master = await startTlsServer(certs, {
    args: [...SYNC_AT_ONCE, "--tls-replication", "yes"],
  });
  const replica = await startTlsServer(certs, {
    args: [
      ...SYNC_AT_ONCE,
      "--tls-replication",
      "yes",
      "--replicaof",
      "127.0.0.1",
      String(master.tlsPort),
    ],
  });
  const sentinels: SentinelProcess[] = [];
  const dispose = async () => {
    for (const s of sentinels) await s[Symbol.asyncDispose]();
    await replica[Symbol.asyncDispose]();
    await master[Symbol.asyncDispose]();
  };
  try {
    await waitInSync(replica.server);
    sentinels.push(...await startSentinels(3, master.tlsPort, certs));
    if (options.failoverReady ?? true) {
      await waitFor(async () => {
        for (const s of sentinels) {
          if (!/slaves=1,sentinels=3/.test(await tlsCli(certs, s.port, ["INFO", "sentinel"]))) {
            return false;
          }
        }
        return true;
      }, { timeoutMs: 30_000, message: "three TLS sentinels that see the replica and each other" });
    }
  } catch (error) {
    await dispose();
    throw error;
  }
  return {
    master: master.server,
    sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`).join(","),
    [Symbol.asyncDispose]: dispose,
  };
}
