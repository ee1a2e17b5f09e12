/**
 * The writer's proof that a write continues the target stream: which IDs
 * directly follow another (nothing can lie between them), so that only
 * the other writes ask the source.
 */
import assert from "node:assert/strict";
import { followsDirectly } from "../lib/replication/write/_continuity.ts";

Deno.test("an ID directly follows another only in the same millisecond with the next sequence number", () => {
  assert.equal(followsDirectly("5-0", "5-1"), true);
  assert.equal(followsDirectly("1700000000000-41", "1700000000000-42"), true);
  assert.equal(followsDirectly("0-0", "0-1"), true);
  // Anything else may have entries between.
  assert.equal(followsDirectly("5-1", "5-3"), false);
  assert.equal(followsDirectly("5-1", "6-0"), false);
  assert.equal(followsDirectly("5-1", "6-2"), false);
  assert.equal(followsDirectly("5-1", "5-1"), false);
  assert.equal(followsDirectly("5-2", "5-1"), false);
  assert.equal(followsDirectly("15-1", "5-2"), false);
  assert.equal(followsDirectly("5", "5-1"), false);
});

Deno.test("sequence numbers beyond 2^53 are compared exactly", () => {
  assert.equal(followsDirectly("5-9007199254740992", "5-9007199254740993"), true);
  assert.equal(followsDirectly("5-9007199254740993", "5-9007199254740993"), false);
  assert.equal(followsDirectly("5-18446744073709551614", "5-18446744073709551615"), true);
  assert.equal(followsDirectly("5-18446744073709551613", "5-18446744073709551615"), false);
});
