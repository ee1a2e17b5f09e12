/**
 * The chaos checker's judgement of a stream that a fault no tool can heal
 * made differ: it passes only when the run's log names the stream and the
 * entry from which it cannot be copied, and every difference lies there or
 * above.
 */
import assert from "node:assert/strict";
import { loudDifference, reportedFrom } from "../scripts/_chaos_checks.ts";

const STOPPED =
  "ERROR Entry 1700000000005-0 of db0:loud is not on target stream db0:loud, whose last ID is already 1700000060000-0 (the first is 1-0): it was never written there";

Deno.test("the entry a stopped stream names is where its reported difference begins; the lowest when named several times", () => {
  assert.equal(reportedFrom(STOPPED, "loud"), "1700000000005-0");
  const twice =
    `${STOPPED}\nERROR Entry 1700000000003-1 of db0:loud is on target stream db0:loud with other fields`;
  assert.equal(reportedFrom(twice, "loud"), "1700000000003-1");
  assert.equal(reportedFrom(STOPPED, "lou"), undefined, "another stream's name is no report");
  assert.equal(
    reportedFrom(
      "ERROR Source stream db0:loud cannot be copied in order: its last ID 1-5 is below",
      "loud",
    ),
    "0-0",
  );
});

Deno.test("a difference below the entry the log names is a problem; one at or above it is not; an unnamed one is; a target trimmed by someone else covers what lies below where it begins and what XDEL removed", () => {
  const none = { missingIds: [], extraIds: [], changedIds: [] };
  assert.deepEqual(
    loudDifference("loud", {
      ...none,
      missingIds: ["1700000000005-0", "1700000000006-0"],
      extraIds: ["1700000060000-0"],
    }, STOPPED),
    [],
  );
  const below = loudDifference("loud", { ...none, missingIds: ["1700000000004-0"] }, STOPPED);
  assert.equal(below.length, 1);
  assert.match(below[0], /differs where run --once did not say it cannot copy it: 1700000000004-0/);
  const unnamed = loudDifference("loud", { ...none, extraIds: ["9-0"] }, "INFO all good");
  assert.match(unnamed[0], /did not name it/);
  const trimmed =
    "WARNING 40 entries were removed from target stream db0:loud by something else (XTRIM, XDEL: 40 so far; it begins at 41-0, XDEL removed up to 70-0): they cannot be written again";
  assert.deepEqual(
    loudDifference("loud", { ...none, missingIds: ["1-0", "40-0", "70-0"] }, trimmed),
    [],
  );
  assert.match(
    loudDifference("loud", { ...none, missingIds: ["71-0"] }, trimmed)[0],
    /did not say it cannot copy it: 71-0/,
  );
});
