/**
 * Mirrors the applications' consumer groups (STREAM_GROUPS_SYNC) of the
 * streams this instance replicates: every stream once per interval, spread
 * over it in slices (at most {@linkcode MAX_STREAMS_PER_SECOND} a second),
 * each slice one pipeline of `XINFO GROUPS` + `XINFO STREAM` per side and
 * one of the changes ({@linkcode planGroups} decides them). No timer or
 * state per stream beyond the groups that are not in step.
 *
 * @module
 */
import type { GroupSyncSettings } from "../../config/mod.ts";
import { errorMessage } from "../../errors.ts";
import { escapeBytes, getLog } from "../../log.ts";
import type { RedisClient, ServerPool } from "../../redis/mod.ts";
import { chunksBy } from "../_group_by.ts";
import type { Scheduler } from "../scheduler.ts";
import type { StreamRef } from "../stream/stream_ref.ts";
import { type GroupChange, isMirrored, planGroups, type StreamSide } from "./group_plan.ts";
import { readSides } from "./group_sides.ts";

const log = getLog("groups");

/** Streams whose groups are mirrored a second at most, whatever the interval. */
export const MAX_STREAMS_PER_SECOND = 2000;
/** How often a slice goes, at most. */
const TICK_MS = 1000;
/**
 * Every this many passes over the streams, the target side of every stream
 * is read; in the others, only that of streams whose source side changed
 * since a pass found them in step.
 */
const FULL_EVERY = 6;

/** What one pass (or slice) did. */
export interface MirrorReport {
  /** Streams whose groups were read on both sides. */
  streams: number;
  /** Changes made on the target, by kind. */
  created: number;
  moved: number;
  destroyed: number;
  /** With STREAM_GROUPS_SYNC_PENDING: entries claimed or acknowledged, consumers made or removed. */
  pending: number;
  /** Changes the target refused, and streams that could not be read. */
  failed: number;
}

/** A mirrored group name and how far its copies are behind. */
export interface MirroredGroupStatus {
  /** The group's name (latin1 text of its bytes). */
  group: string;
  /** Streams where it is mirrored. */
  streams: number;
  /** Of those, where the target's group is not at the source's position. */
  behind: number;
  /** Seconds since the longest-behind of them was last in step (0: all are). */
  delaySeconds: number;
}

/** Options for {@linkcode GroupMirror}. */
export interface GroupMirrorOptions {
  /** STREAM_GROUPS_SYNC and its interval. */
  settings: GroupSyncSettings;
  /** The run's scheduler (its sleeps end on the run's signal). */
  scheduler: Scheduler;
  /**
   * Each slice's report (metrics).
   * @default {undefined}
   */
  onReport?: (report: MirrorReport) => void;
}

/** See the module doc. */
export class GroupMirror {
  readonly #source: RedisClient;
  readonly #target: ServerPool;
  readonly #options: GroupMirrorOptions;
  #from = 0;
  /** Per stream id + "\0" + group: since when the target's group is not in step (ms). */
  readonly #behindSince = new Map<string, number>();
  /** Per stream id + "\0" + group: mirrored groups seen at the last look of their stream. */
  readonly #seen = new Map<string, Set<string>>();
  #warned = "";
  /** Per stream id: the source side's fingerprint when a pass last found it in step. */
  readonly #quiet = new Map<string, number>();
  /** Passes over all the streams so far (a pass ends when the turns wrap around). */
  #passes = 0;

  constructor(
    connections: { source: RedisClient; target: ServerPool },
    options: GroupMirrorOptions,
  ) {
    this.#source = connections.source;
    this.#target = connections.target;
    this.#options = options;
  }

  /** Mirrors the groups of every stream of `streams()`, once per interval, until `signal` aborts. */
  async run(streams: () => readonly StreamRef[], signal: AbortSignal): Promise<void> {
    const { everyMs } = this.#options.settings;
    const tick = Math.min(TICK_MS, everyMs);
    while (!signal.aborted) {
      await this.#options.scheduler.sleep(tick, signal);
      if (signal.aborted) return;
      const all = streams();
      const share = Math.min(
        Math.ceil(all.length * tick / everyMs),
        Math.ceil(MAX_STREAMS_PER_SECOND * tick / 1000),
      );
      const slice = this.#turn(all, share);
      const full = this.#passes % FULL_EVERY === 0;
      if (this.#from >= all.length || slice === all) this.#endPass(all);
      try {
        await this.sync(slice, { full });
      } catch (error) {
        log.debug("Mirroring consumer groups failed: {error}", { error: errorMessage(error) });
      }
    }
  }

  /**
   * Mirrors the groups of `refs` now; the report of what it did. With
   * `full: false`, the target is not read for a stream whose source side
   * is as it was when a pass last found it in step (another client's change
   * on the target is then undone by the next full pass).
   */
  async sync(refs: readonly StreamRef[], options: { full?: boolean } = {}): Promise<MirrorReport> {
    const { full = true } = options;
    const report: MirrorReport = {
      streams: 0,
      created: 0,
      moved: 0,
      destroyed: 0,
      pending: 0,
      failed: 0,
    };
    if (refs.length === 0) return report;
    const settings = this.#options.settings;
    const problems: string[] = [];
    let firstDestroyed = "";
    for (const [targetDb, list] of chunksBy(refs, (r) => r.targetDb, 500)) {
      const mirrored = (group: string) => isMirrored(group, settings);
      const sources = await readSides(this.#source, list.map((r) => ({ db: r.db, key: r.key })), {
        pendingOf: mirrored,
        pel: settings.pending ? mirrored : undefined,
      });
      const target = this.#target.client(targetDb);
      const prints = sources.map((s) => (s instanceof Error ? -1 : fingerprint(s)));
      const looked = list.flatMap((ref, i) =>
        full || prints[i] === -1 || this.#quiet.get(ref.id) !== prints[i] ? [i] : []
      );
      report.streams += list.length - looked.length; // in step, as they were
      const targets = await readSides(
        target,
        looked.map((i) => ({ db: targetDb, key: list[i].targetKey })),
        { pel: settings.pending ? mirrored : undefined },
      );
      const changes: { ref: StreamRef; change: GroupChange }[] = [];
      const now = Date.now();
      looked.forEach((i, k) => {
        const ref = list[i];
        const [s, t] = [sources[i], targets[k]];
        this.#quiet.delete(ref.id);
        if (s instanceof Error || t instanceof Error) {
          report.failed++;
          problems.push(`${ref.label}: ${errorMessage(s instanceof Error ? s : t)}`);
          return;
        }
        report.streams++;
        const plan = planGroups(s, t, settings);
        for (const change of plan.changes) changes.push({ ref, change });
        if (plan.changes.length === 0 && !plan.standings.some((st) => st.capped)) {
          this.#quiet.set(ref.id, prints[i]);
        }
        const names = new Set<string>();
        for (const st of plan.standings) {
          const pair = `${ref.id}\0${st.group.key}`;
          names.add(st.group.key);
          if (st.capped) {
            if (!this.#behindSince.has(pair)) this.#behindSince.set(pair, now);
          } else this.#behindSince.delete(pair);
        }
        this.#forgetGone(ref.id, names);
      });
      // Claims first; a group moves to where it stands on the source only once they were made
      // (else it stays before its entries that are not pending there yet).
      const failed = new Set<string>();
      const tally = (list: typeof changes, outcomes: PromiseSettledResult<unknown>[]) => {
        outcomes.forEach((outcome, i) => {
          const { ref, change } = list[i];
          const pair = `${ref.id}\0${change.group.key}`;
          if (outcome.status === "rejected") {
            report.failed++;
            failed.add(pair);
            // Not in step: counted behind until a pass makes the change.
            if (
              (change.kind === "create" || change.kind === "setid") && !this.#behindSince.has(pair)
            ) {
              this.#behindSince.set(pair, now);
            }
            problems.push(
              `${ref.targetLabel} group ${escapeBytes(change.group.name)}: ${
                errorMessage(outcome.reason)
              }`,
            );
            return;
          }
          if (change.kind === "create") report.created++;
          else if (change.kind === "setid") report.moved++;
          else if (change.kind === "destroy") {
            report.destroyed++;
            firstDestroyed ||= `${escapeBytes(change.group.name)} of ${ref.targetLabel}`;
          } else report.pending++;
          log.debug("Consumer group {group} of {stream}: {change} on the target{at}", {
            group: escapeBytes(change.group.name),
            stream: ref.targetLabel,
            change: change.kind,
            at: describe(change),
          });
        });
      };
      const later = (c: GroupChange) => c.kind === "setid" && c.afterClaims === true;
      const first = changes.filter((c) => !later(c.change));
      tally(first, await target.pipeline(targetDb, first.map((c) => command(c.ref, c.change))));
      const then = changes.filter((c) =>
        later(c.change) && !failed.has(`${c.ref.id}\0${c.change.group.key}`)
      );
      if (then.length > 0) {
        tally(then, await target.pipeline(targetDb, then.map((c) => command(c.ref, c.change))));
      }
    }
    this.#say(problems);
    if (report.created + report.destroyed > 0) {
      // Made and destroyed groups are said (a destroyed one takes its consumers with it).
      log.info("Consumer groups on the target: {created} made, {destroyed} destroyed{first}", {
        created: report.created,
        destroyed: report.destroyed,
        first: firstDestroyed === "" ? "" : ` (gone from the source; first: ${firstDestroyed})`,
      });
    }
    this.#options.onReport?.(report);
    return report;
  }

  /** Each mirrored group name: on how many streams, how many behind, the longest delay. */
  status(now = Date.now()): MirroredGroupStatus[] {
    const byName = new Map<string, MirroredGroupStatus>();
    for (const names of this.#seen.values()) {
      for (const group of names) {
        const s = byName.get(group) ?? { group, streams: 0, behind: 0, delaySeconds: 0 };
        s.streams++;
        byName.set(group, s);
      }
    }
    for (const [pair, since] of this.#behindSince) {
      const group = pair.slice(pair.indexOf("\0") + 1);
      const s = byName.get(group);
      if (!s) continue;
      s.behind++;
      s.delaySeconds = Math.max(s.delaySeconds, (now - since) / 1000);
    }
    return [...byName.values()].sort((a, b) => (a.group < b.group ? -1 : 1));
  }

  /** Forgets what was kept of a stream that is no longer replicated here. */
  forget(id: string): void {
    this.#forgetGone(id, new Set());
    this.#seen.delete(id);
    this.#quiet.delete(id);
  }

  /** A pass over `all` ends: what is kept of streams no longer in it goes. */
  #endPass(all: readonly StreamRef[]): void {
    this.#passes++;
    const ids = new Set(all.map((r) => r.id));
    for (const id of [...this.#seen.keys(), ...this.#quiet.keys()]) {
      if (!ids.has(id)) this.forget(id);
    }
  }

  #forgetGone(id: string, names: Set<string>): void {
    for (const group of this.#seen.get(id) ?? []) {
      if (!names.has(group)) this.#behindSince.delete(`${id}\0${group}`);
    }
    if (names.size > 0) this.#seen.set(id, names);
    else this.#seen.delete(id);
  }

  /** The next `share` of `all` (all of them when fewer), in turns. */
  #turn(all: readonly StreamRef[], share: number): readonly StreamRef[] {
    if (all.length <= share) return all;
    const from = this.#from % all.length;
    this.#from = from + share;
    const out = all.slice(from, from + share);
    if (out.length < share) out.push(...all.slice(0, share - out.length));
    return out;
  }

  /** One WARNING per pass with problems, naming the first; the same again only at DEBUG. */
  #say(problems: string[]): void {
    if (problems.length === 0) {
      this.#warned = "";
      return;
    }
    const first = problems[0];
    const level = first === this.#warned ? "debug" : "warning";
    this.#warned = first;
    log[level]("Mirroring consumer groups failed for {count} (first: {first})", {
      count: problems.length === 1 ? "1 stream or group" : `${problems.length} streams or groups`,
      first,
    });
  }
}

/** What of a source side the target's groups depend on, hashed (FNV-1a, 32 bits). */
function fingerprint(side: StreamSide): number {
  let out = `${side.exists}|${side.lastGeneratedId}`;
  for (const g of side.groups) {
    out += `|${g.key}\0${g.lastDeliveredId}\0${g.entriesRead}\0${g.lag}\0${g.oldestPendingId}`;
    for (const name of g.consumerNames?.keys() ?? []) out += `\0${name}`;
    for (const e of g.pel ?? []) out += `\0${e.id} ${e.consumerKey} ${e.deliveries}`;
  }
  let hash = 0x811c9dc5;
  for (let i = 0; i < out.length; i++) {
    hash = Math.imul(hash ^ out.charCodeAt(i), 0x01000193) >>> 0;
  }
  return hash;
}

/** For the DEBUG line of `change`: where it puts the group, or what it moves. */
function describe(change: GroupChange): string {
  switch (change.kind) {
    case "create":
    case "setid":
      return ` at ${change.id}`;
    case "claim":
      return ` ${change.entry.id} to ${escapeBytes(change.entry.consumer)}`;
    case "ack":
      return ` ${change.ids.length} entries`;
    case "createconsumer":
    case "delconsumer":
      return ` ${escapeBytes(change.consumer)}`;
    default:
      return "";
  }
}

/** The target command of `change`. */
function command(ref: StreamRef, change: GroupChange): (string | Uint8Array)[] {
  const name = change.group.name;
  const key = ref.targetKey;
  switch (change.kind) {
    case "destroy":
      return ["XGROUP", "DESTROY", key, name];
    case "claim": {
      const { entry } = change;
      return [
        "XCLAIM",
        key,
        name,
        entry.consumer,
        "0",
        entry.id,
        "IDLE",
        String(entry.idleMs),
        "RETRYCOUNT",
        String(entry.deliveries),
        "FORCE",
        "JUSTID",
      ];
    }
    case "ack":
      return ["XACK", key, name, ...change.ids];
    case "createconsumer":
      return ["XGROUP", "CREATECONSUMER", key, name, change.consumer];
    case "delconsumer":
      return ["XGROUP", "DELCONSUMER", key, name, change.consumer];
  }
  const args: (string | Uint8Array)[] = change.kind === "create"
    ? ["XGROUP", "CREATE", ref.targetKey, name, change.id]
    : ["XGROUP", "SETID", ref.targetKey, name, change.id];
  if (change.kind === "create" && change.mkstream) args.push("MKSTREAM");
  if (change.entriesRead !== undefined) args.push("ENTRIESREAD", String(change.entriesRead));
  return args;
}
