/**
 * The plan that mirrors the applications' consumer groups of one stream
 * (`lib/replication/mirror/group_plan.ts`, pure): what is created, moved and
 * destroyed on the target, never past what the target holds, with
 * `entries-read` only when it is exact. The same rules against real servers:
 * tests/group_mirror_test.ts.
 */
import assert from "node:assert/strict";
import {
  type GroupPosition,
  idBefore,
  planGroups,
  type StreamSide,
} from "../lib/replication/mirror/group_plan.ts";

const OPTIONS = { patterns: ["*"], ownGroup: "redis-sync-group" };

function group(
  name: string,
  lastDeliveredId: string,
  more: Partial<GroupPosition> = {},
): GroupPosition {
  const bytes = new TextEncoder().encode(name);
  return {
    name: bytes,
    key: new TextDecoder("latin1").decode(bytes),
    lastDeliveredId,
    entriesRead: null,
    lag: null,
    pending: 0,
    oldestPendingId: null,
    consumers: 0,
    ...more,
  };
}

/** A stream of entries 1-0 .. top-0, all of them added there (entries-added = top). */
function side(top: number, groups: GroupPosition[], more: Partial<StreamSide> = {}): StreamSide {
  return {
    exists: true,
    lastGeneratedId: `${top}-0`,
    topId: top === 0 ? "0-0" : `${top}-0`,
    entriesAdded: top,
    groups,
    ...more,
  };
}

Deno.test("a source group the target lacks is created at the same position, with the entries read that Redis would count there", () => {
  const source = side(100, [group("billing", "40-0", { entriesRead: 40, lag: 60 })]);
  const plan = planGroups(source, side(100, []), OPTIONS);
  assert.equal(plan.changes.length, 1);
  const [change] = plan.changes;
  assert.equal(change.kind, "create");
  assert.ok(change.kind === "create");
  assert.equal(change.id, "40-0");
  assert.equal(change.entriesRead, 40);
  assert.equal(change.mkstream, false);
  assert.deepEqual(plan.standings.map((s) => [s.targetId, s.capped]), [["40-0", false]]);
});

Deno.test("entries read are left to Redis when the target counted other entries than the source (its copy began later, or it holds entries the source lost)", () => {
  // The target holds 51-0 .. 100-0 only (copied from the middle): 50 entries added there.
  const source = side(100, [group("billing", "80-0", { entriesRead: 80, lag: 20 })]);
  const later = side(100, [], { entriesAdded: 50 });
  const [change] = planGroups(source, later, OPTIONS).changes;
  assert.ok(change.kind === "create");
  assert.equal(change.entriesRead, undefined);
  // 120 added on the target: 20 the source lost after they were copied, then 20 new ones.
  const lost = side(100, [], { entriesAdded: 120 });
  const [c2] = planGroups(source, lost, OPTIONS).changes;
  assert.ok(c2.kind === "create");
  assert.equal(c2.entriesRead, undefined);
});

Deno.test("a group past what the target holds waits at the target's last entry, never beyond", () => {
  const source = side(100, [group("billing", "90-0", { entriesRead: 90, lag: 10 })]);
  const plan = planGroups(source, side(60, []), OPTIONS);
  const [change] = plan.changes;
  assert.ok(change.kind === "create");
  assert.equal(change.id, "60-0");
  assert.equal(change.entriesRead, 60, "at the target's end: everything added there was read");
  assert.deepEqual(plan.standings.map((s) => [s.targetId, s.capped]), [["60-0", true]]);
  // Once the copy reaches it, it moves on; the target still behind the source's end, its
  // entries read are left to Redis (the target's counter there is not known).
  const later = planGroups(
    source,
    side(95, [group("billing", "60-0", { entriesRead: 60 })]),
    OPTIONS,
  );
  assert.deepEqual(
    later.changes.map((c) => c.kind === "setid" && [c.id, c.entriesRead]),
    [["90-0", undefined]],
  );
});

Deno.test("a group in step is left alone, and one moved back on the source is moved back", () => {
  const source = side(100, [group("billing", "40-0", { entriesRead: 40, lag: 60 })]);
  const inStep = side(100, [group("billing", "40-0", { entriesRead: 40, lag: 60 })]);
  assert.deepEqual(planGroups(source, inStep, OPTIONS).changes, []);
  const ahead = side(100, [group("billing", "70-0", { entriesRead: 70, lag: 30 })]);
  const [change] = planGroups(source, ahead, OPTIONS).changes;
  assert.ok(change.kind === "setid");
  assert.equal(change.id, "40-0");
  assert.equal(change.entriesRead, 40);
});

Deno.test("a group at the right position whose entries read Redis does not know is set again with them", () => {
  const source = side(100, [group("billing", "40-0", { entriesRead: 40, lag: 60 })]);
  const target = side(100, [group("billing", "40-0", { entriesRead: null })]);
  const [change] = planGroups(source, target, OPTIONS).changes;
  assert.ok(change.kind === "setid");
  assert.deepEqual([change.id, change.entriesRead], ["40-0", 40]);
});

Deno.test("entries read are left out when they cannot be told exactly, and then do not count as a difference", () => {
  // The target is behind the source's end: what follows the group on the target is not known.
  const source = side(100, [group("billing", "40-0", { entriesRead: 40, lag: 60 })]);
  const behind = side(90, []);
  const [change] = planGroups(source, behind, OPTIONS).changes;
  assert.ok(change.kind === "create");
  assert.equal(change.id, "40-0");
  assert.equal(change.entriesRead, undefined);
  assert.deepEqual(
    planGroups(source, side(90, [group("billing", "40-0", { entriesRead: null })]), OPTIONS)
      .changes,
    [],
  );
  // The source's lag unknown (entries deleted after the group's position).
  const unknown = side(100, [group("billing", "40-0", { entriesRead: 40, lag: null })]);
  const [c2] = planGroups(unknown, side(100, []), OPTIONS).changes;
  assert.ok(c2.kind === "create");
  assert.equal(c2.entriesRead, undefined);
  // The target's last entries were deleted: the counter of its last entry is not known.
  const holed = side(100, [], { lastGeneratedId: "105-0" });
  const [c3] = planGroups(side(100, [group("g", "100-0", { lag: 0 })]), holed, OPTIONS).changes;
  assert.ok(c3.kind === "create");
  assert.equal(c3.entriesRead, undefined);
});

Deno.test("a mirrored group gone from the source is destroyed on the target; others and the tool's own are never touched", () => {
  const source = side(100, [group("redis-sync-group", "100-0"), group("billing", "10-0")]);
  const target = side(100, [
    group("billing", "10-0", { entriesRead: 10 }),
    group("shipping", "50-0"),
    group("audit", "50-0"),
    group("redis-sync-group", "3-0"),
  ]);
  const plan = planGroups(source, target, {
    patterns: ["billing", "ship*"],
    ownGroup: "redis-sync-group",
  });
  assert.deepEqual(
    plan.changes.map((c) => [c.kind, new TextDecoder().decode(c.group.name)]),
    [["destroy", "shipping"]],
  );
  // Its own group is never mirrored, even when the patterns name it.
  const own = planGroups(source, side(100, []), { patterns: ["*"], ownGroup: "redis-sync-group" });
  assert.deepEqual(own.changes.map((c) => new TextDecoder().decode(c.group.name)), ["billing"]);
});

Deno.test("with no source stream nothing is planned (its groups are not known); with no target stream the group is made with it, at 0-0", () => {
  const gone: StreamSide = {
    exists: false,
    lastGeneratedId: "0-0",
    topId: "0-0",
    entriesAdded: 0,
    groups: [],
  };
  assert.deepEqual(planGroups(gone, side(10, [group("billing", "5-0")]), OPTIONS).changes, []);
  const source = side(0, [group("billing", "0-0", { entriesRead: 0, lag: 0 })]);
  const [change] = planGroups(source, gone, OPTIONS).changes;
  assert.ok(change.kind === "create");
  assert.deepEqual([change.id, change.entriesRead, change.mkstream], ["0-0", 0, true]);
});

Deno.test("group names are matched as bytes: a name that is not UTF-8 matches a pattern of its bytes", () => {
  const bytes = new Uint8Array([0x67, 0xff, 0x31]); // "g\xff1"
  const odd = { ...group("x", "1-0"), name: bytes, key: new TextDecoder("latin1").decode(bytes) };
  const plan = planGroups(side(5, [odd]), side(5, []), { patterns: ["g?1"], ownGroup: "own" });
  assert.equal(plan.changes.length, 1);
  assert.deepEqual(plan.changes[0].group.name, bytes);
});

Deno.test("a group with entries pending on the source is mirrored just before its oldest pending entry, so that they are delivered again on the target", () => {
  const held = group("billing", "40-0", {
    entriesRead: 40,
    lag: 60,
    pending: 5,
    oldestPendingId: "36-0",
  });
  const [change] = planGroups(side(100, [held]), side(100, []), OPTIONS).changes;
  assert.ok(change.kind === "create");
  assert.equal(change.id, "35-18446744073709551615");
  assert.equal(change.entriesRead, undefined, "not known exactly below the last delivered entry");
  assert.equal(idBefore("36-3"), "36-2");
  assert.equal(idBefore("0-1"), "0-0");
  assert.equal(idBefore("0-0"), "0-0");
  assert.equal(idBefore("18446744073709551615-0"), "18446744073709551614-18446744073709551615");
});

Deno.test("pending entries follow: claimed under the same consumer with their delivery counts (those the target holds), acknowledged when gone from the source, consumers made and removed", () => {
  const entry = (id: string, consumer: string, deliveries = 1) => ({
    id,
    consumer: new TextEncoder().encode(consumer),
    consumerKey: consumer,
    idleMs: 500,
    deliveries,
  });
  const names = (...list: string[]) => new Map(list.map((n) => [n, new TextEncoder().encode(n)]));
  const source = group("billing", "20-0", {
    pending: 4,
    oldestPendingId: "11-0",
    pel: [entry("11-0", "w1", 2), entry("12-0", "w1"), entry("13-0", "w2"), entry("19-0", "w2")],
    pelComplete: true,
    consumerNames: names("w1", "w2", "idle"),
  });
  const target = group("billing", "20-0", {
    pel: [entry("11-0", "w1", 2), entry("12-0", "w2"), entry("14-0", "w1")],
    pelComplete: true,
    consumerNames: names("w1", "w2", "gone"),
  });
  const plan = planGroups(side(20, [source]), side(15, [target]), { ...OPTIONS, pending: true });
  const described = plan.changes.map((c) =>
    c.kind === "claim"
      ? `claim ${c.entry.id} ${c.entry.consumerKey} ${c.entry.deliveries}`
      : c.kind === "ack"
      ? `ack ${c.ids.join(",")}`
      : c.kind === "createconsumer" || c.kind === "delconsumer"
      ? `${c.kind} ${new TextDecoder().decode(c.consumer)}`
      : `${c.kind} ${"id" in c ? c.id : ""}`
  );
  // Capped at the target's last entry (15-0); 19-0 is not there yet: claimed once copied. 11-0
  // is as it should be; 12-0 moves to w1; 13-0 is claimed; 14-0 was acked on the source.
  // Entries to claim at or below where the target's group stands: it is held before the oldest
  // pending entry while they are claimed, and goes where it stands on the source only once the
  // claims were made (the last change, which the caller sends after them).
  assert.deepEqual(described, [
    "setid 10-18446744073709551615",
    "createconsumer idle",
    "claim 12-0 w1 1",
    "claim 13-0 w2 1",
    "ack 14-0",
    "delconsumer gone",
    "setid 15-0",
  ]);
  const last = plan.changes.at(-1)!;
  assert.ok(last.kind === "setid" && last.afterClaims);
  // Nothing to claim: straight where it stands.
  const claimed = group("billing", "20-0", {
    entriesRead: 20,
    pel: source.pel!.slice(0, 3).map((e) => ({ ...e })),
    pelComplete: true,
    consumerNames: names("w1", "w2", "idle"),
  });
  const settled = planGroups(
    side(20, [{ ...source, pel: source.pel!.slice(0, 3), pending: 3 }]),
    side(20, [claimed]),
    { ...OPTIONS, pending: true },
  );
  assert.deepEqual(settled.changes.map((c) => c.kind === "setid" ? c.id : c.kind), []);
  const whole = planGroups(side(20, [source]), side(20, []), { ...OPTIONS, pending: true });
  // A group made now: before its oldest pending entry, then (once claimed) where it stands.
  assert.equal(
    whole.changes[0].kind === "create" && whole.changes[0].id,
    "10-18446744073709551615",
  );
  const moved = whole.changes.at(-1)!;
  assert.ok(moved.kind === "setid" && moved.afterClaims && moved.id === "20-0");
  // A pending list longer than what is read: held back as without the option, nothing claimed.
  const long = { ...source, pelComplete: false };
  const held = planGroups(side(20, [long]), side(20, []), { ...OPTIONS, pending: true });
  assert.deepEqual(held.changes.map((c) => c.kind), ["create"]);
  assert.equal(held.changes[0].kind === "create" && held.changes[0].id, "10-18446744073709551615");
});
