import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import {
  counted,
  escapeBytes,
  flushLogging,
  formatPythonStyle,
  getLog,
  type PythonStyleRecord,
  setupLogging,
  type SetupLoggingOptions,
} from "../lib/log.ts";

const SECRET = 's3cr3t-"pa\\ss"';

function record(overrides: Partial<PythonStyleRecord> = {}): PythonStyleRecord {
  return {
    timestamp: new Date(2026, 10, 26, 9, 41, 7, 123).getTime(),
    name: "redis-stream-sync.x",
    levelname: "INFO",
    message: "hello",
    ...overrides,
  };
}

/** Sets logging up with a capturing writer, runs `fn`, then resets LogTape. */
async function capture(
  options: SetupLoggingOptions,
  fn: () => void | Promise<void>,
): Promise<string[]> {
  const lines: string[] = [];
  await setupLogging({ ...options, write: (line) => lines.push(line) });
  try {
    await fn();
    await flushLogging();
  } finally {
    await reset();
  }
  return lines;
}

Deno.test("formatPythonStyle() renders the seed's default format", () => {
  const line = formatPythonStyle(
    "%(asctime)s - %(name)s - %(levelname)s - %(message)s",
    record({ message: "Copied 5 entries" }),
  );
  assert.equal(line, "2026-11-26 09:41:07,123 - redis-stream-sync.x - INFO - Copied 5 entries");
  assert.match(
    formatPythonStyle("%(asctime)s", record({ timestamp: Date.now() })),
    /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}$/,
  );
});

Deno.test("formatPythonStyle() renders process, levelno, created, msecs and %%", () => {
  assert.equal(formatPythonStyle("%(process)d", record()), String(Deno.pid));
  assert.equal(formatPythonStyle("[%(process)d]", record({ process: 42 })), "[42]");
  assert.equal(formatPythonStyle("%(levelno)s %(levelno)d", record()), "20 20");
  assert.equal(formatPythonStyle("%(levelno)d", record({ levelname: "CRITICAL" })), "50");
  const ts = Date.UTC(2026, 0, 1, 0, 0, 0, 7);
  assert.equal(formatPythonStyle("%(created)f", record({ timestamp: ts })), `${ts / 1000}000`);
  assert.equal(formatPythonStyle("%(msecs)d|%(msecs)03d", record({ timestamp: ts })), "7|007");
  assert.equal(formatPythonStyle("100%% %(message)s", record()), "100% hello");
  assert.equal(formatPythonStyle("%%(message)s", record()), "%(message)s");
});

Deno.test("formatPythonStyle() supports width and alignment", () => {
  assert.equal(formatPythonStyle("%(levelname)-8s|", record()), "INFO    |");
  assert.equal(formatPythonStyle("|%(levelname)8s", record()), "|    INFO");
  assert.equal(formatPythonStyle("%(levelname).1s", record({ levelname: "WARNING" })), "W");
  assert.equal(formatPythonStyle("%(levelname)-3s|", record({ levelname: "WARNING" })), "WARNING|");
  assert.equal(formatPythonStyle("%(levelno)5d|%(levelno)-5d|", record()), "   20|20   |");
});

Deno.test("formatPythonStyle() keeps unknown placeholders as written", () => {
  assert.equal(
    formatPythonStyle("%(foo)s %(funcName)-10s %s %(message)s %", record()),
    "%(foo)s %(funcName)-10s %s hello %",
  );
});

Deno.test("setupLogging() renders the default text format through LogTape", async () => {
  const lines = await capture({}, () => {
    getLog("replicator").info("Copied {count} entries from {stream} ({ids})", {
      count: 5,
      stream: "db0:orders",
      ids: ["1-0", "2-0"],
    });
  });
  assert.equal(lines.length, 1);
  assert.match(
    lines[0],
    /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} - redis-stream-sync\.replicator - INFO - Copied 5 entries from db0:orders \(\["1-0","2-0"\]\)\n$/,
  );
});

Deno.test("setupLogging() drops DEBUG at INFO and shows it at DEBUG", async () => {
  const log = getLog("x");
  const atInfo = await capture({ format: "%(levelname)s %(message)s" }, () => {
    log.debug("hidden");
    log.info("shown");
  });
  assert.deepEqual(atInfo, ["INFO shown\n"]);
  const atDebug = await capture({ level: "DEBUG", format: "%(levelname)s %(message)s" }, () => {
    log.trace("traced");
    log.debug("shown");
  });
  assert.deepEqual(atDebug, ["DEBUG traced\n", "DEBUG shown\n"]);
  const atError = await capture({ level: "ERROR", format: "%(levelname)s" }, () => {
    log.warn("no");
    log.error("yes");
  });
  assert.deepEqual(atError, ["ERROR\n"]);
});

Deno.test("setupLogging() names WARNING and CRITICAL as Python does", async () => {
  const lines = await capture({ format: "%(levelname)s:%(levelno)d:%(message)s" }, () => {
    const log = getLog("x");
    log.warn("careful");
    log.fatal("dead");
    log.error("failed: {error}", { error: new Error("boom") });
  });
  assert.deepEqual(lines, [
    "WARNING:30:careful\n",
    "CRITICAL:50:dead\n",
    "ERROR:40:failed: boom\n",
  ]);
});

Deno.test("setupLogging() with format json writes one JSON object per line", async () => {
  const lines = await capture({ format: "JSON" }, () => {
    const log = getLog("replicator");
    log.info("Copied {count} entries from {stream}", {
      count: 5,
      stream: "db0:orders",
      db: 0,
      ids: ["1-0", "2-0"],
      key: new Uint8Array([0x6b, 0x00, 0xff]),
    });
    log.error("failed: {error}", { error: new Error("boom"), message: "clash" });
  });
  assert.equal(lines.length, 2);
  for (const line of lines) assert.ok(line.endsWith("}\n"));
  const first = JSON.parse(lines[0]);
  assert.equal(first.level, "INFO");
  assert.equal(first.logger, "redis-stream-sync.replicator");
  assert.equal(first.message, "Copied 5 entries from db0:orders");
  assert.equal(new Date(first.time).toISOString(), first.time);
  assert.equal(first.count, 5);
  assert.equal(first.stream, "db0:orders");
  assert.equal(first.db, 0);
  assert.deepEqual(first.ids, ["1-0", "2-0"]);
  assert.equal(first.key, "k\\x00\\xff");
  const second = JSON.parse(lines[1]);
  assert.equal(second.level, "ERROR");
  assert.equal(second.message, "failed: boom");
  assert.equal(second.error, "boom");
  assert.equal(second._message, "clash");
});

Deno.test("setupLogging() never writes a secret put into a message or a property, in text or JSON", async () => {
  for (const format of [undefined, "json"]) {
    const lines = await capture({ level: "DEBUG", format, secrets: [SECRET, ""] }, () => {
      const log = getLog("connection");
      log.debug("AUTH with {what}", { what: SECRET });
      log.info("Connecting with {password}", { password: SECRET });
      log.error("Connection failed: {error}", {
        error: new Error(`WRONGPASS ${SECRET} is invalid`),
      });
      log.warn("bytes {raw}", { raw: new TextEncoder().encode(SECRET) });
      log.info("nested {config}", { config: { password: SECRET } });
    });
    assert.equal(lines.length, 5, `format ${format}`);
    for (const line of lines) {
      assert.ok(!line.includes(SECRET), line);
      assert.ok(!line.includes("s3cr3t"), line);
      assert.ok(line.includes("***"), line);
    }
    if (format === "json") { for (const line of lines) JSON.parse(line); }
  }
});

Deno.test("setupLogging() can be called again and replaces the configuration", async () => {
  const first: string[] = [];
  const second: string[] = [];
  try {
    await setupLogging({ format: "%(message)s", write: (line) => first.push(line) });
    getLog("x").info("one");
    await setupLogging({ format: "%(message)s", write: (line) => second.push(line) });
    getLog("x").info("two");
  } finally {
    await reset();
  }
  assert.deepEqual(first, ["one\n"]);
  assert.deepEqual(second, ["two\n"]);
});

Deno.test("escapeBytes() renders keys unambiguously", () => {
  assert.equal(escapeBytes("orders:{eu}"), "orders:{eu}");
  assert.equal(escapeBytes('a"b\\c'), 'a\\"b\\\\c');
  assert.equal(escapeBytes("a\nb\tc"), "a\\x0ab\\x09c");
  assert.equal(
    escapeBytes(new Uint8Array([0x00, 0x7f, 0x80, 0xff, 0x41])),
    "\\x00\\x7f\\x80\\xffA",
  );
  assert.equal(escapeBytes("é"), "\\xc3\\xa9");
  assert.equal(escapeBytes(""), "");
  assert.equal(escapeBytes(new Uint8Array()), "");
});

Deno.test("short passwords are redacted where they are a value, and no other word of a line changes (passwords redis and x)", async () => {
  for (const format of [undefined, "json"]) {
    const lines = await capture({ level: "DEBUG", format, secrets: ["redis", "x"] }, () => {
      const log = getLog("main");
      log.info("Group {group} of {stream}: key file {path}", {
        group: "redis-sync-group",
        stream: "db0:redis-x-stream",
        path: "/etc/x/redis/key.pem",
      });
      log.info("Connecting with {password} as {user}", { password: "redis", user: "x" });
      log.info("Settings {settings}", { settings: { host: "redis.example", pass: "other" } });
    });
    const text = lines.join("");
    for (const word of ["redis-stream-sync.main", "redis-sync-group", "db0:redis-x-stream"]) {
      assert.ok(text.includes(word), `${word} in\n${text}`);
    }
    assert.ok(text.includes("/etc/x/redis/key.pem"), text);
    assert.ok(text.includes("redis.example"), text);
    assert.ok(!text.includes("other"), text); // a property named like a password
    assert.match(lines[1], /Connecting with \*\*\* as \*\*\*/);
    if (format === "json") {
      const second = JSON.parse(lines[1]);
      assert.equal(second.password, "***");
      assert.equal(second.user, "***");
    }
  }
});

Deno.test("no log call in lib builds its message template at run time (templates are never redacted)", async () => {
  const found: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (path.endsWith(".ts")) {
        const text = await Deno.readTextFile(path);
        // A template literal with a value in it, or a variable as the template.
        const call =
          /(?<![#\w.])log(?:\[[^\]]+\]|\.(?:trace|debug|info|warn|warning|error|fatal))\(\s*(?:`[^`]*\$\{|[A-Za-z_$][\w$.]*\s*[,)])/g;
        for (const m of text.matchAll(call)) {
          found.push(`${path}: ${m[0]}`);
        }
      }
    }
  };
  await walk(new URL("../lib", import.meta.url).pathname);
  assert.deepEqual(found, []);
});

Deno.test("counted() puts the noun in the singular for one, and in the plural given or made with an s otherwise", () => {
  assert.equal(counted(1, "entry", "entries"), "1 entry");
  assert.equal(counted(0, "entry", "entries"), "0 entries");
  assert.equal(counted(2, "stream"), "2 streams");
  assert.equal(counted(1, "stream"), "1 stream");
});

Deno.test("a password is redacted where a value shows it: bytes (non-ASCII too), a Map, an instance of a class, an object nested deeper than 4 levels", async () => {
  const utf8 = "stra\u00dfe-passwort"; // its UTF-8 bytes include 0x9f
  class Holder {
    constructor(readonly note: string) {}
  }
  for (const format of ["%(message)s", "json"]) {
    const lines = await capture({ level: "DEBUG", format, secrets: [utf8, "hunter2-long"] }, () => {
      const log = getLog("x");
      log.info("bytes {value}", { value: new TextEncoder().encode(utf8) });
      log.info("map {m} holder {h}", {
        m: new Map([["a", "hunter2-long"]]),
        h: new Holder("hunter2-long"),
      });
      log.info("deep {d}", { d: { a: { b: { c: { d: { e: "hunter2-long" } } } } } });
    });
    assert.equal(lines.length, 3, `format ${format}`);
    for (const line of lines) {
      assert.ok(!line.includes("hunter2-long"), line);
      assert.ok(!line.includes("stra\\xc3\\x9fe") && !line.includes("stra\\\\xc3\\\\x9fe"), line);
      assert.ok(line.includes("***"), line);
    }
  }
});
