// Convergence verdicts, one row per rule: expected state vs reported metrics vs live status.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Reported } from "../../coordinator/metrics-parse.ts";
import { isConverged, verdict } from "../../coordinator/verdict.ts";
import type { ExpectedState, Verdict } from "../../coordinator/verdict.ts";
import type { AgentStatus } from "../../shared/types.ts";
import { agentStatus } from "../helpers/status.ts";

const NOW = 1_741_340_000_000;
const MAX_AGE = 30 * 60_000;
const HASH = "a".repeat(64);
const OTHER = "b".repeat(64);
const ID = 20250307090501;
const BOOT = 1_741_330_000;
const EXPECTED: ExpectedState = { id: ID, planHash: HASH };

/** An agent that applied the expected plan and was scraped a minute ago. */
const reported = (over: Partial<Reported> = {}): Reported => ({
  appliedId: ID,
  acceptedId: ID,
  planHash: HASH,
  lastRunSuccess: 1,
  lastRunTimestamp: BOOT + 100,
  bootTime: BOOT,
  appliedBootTime: BOOT,
  running: false,
  driftedFiles: 0,
  host: "web-1",
  nodeKeyId: "0123456789abcdef",
  scrapedAt: NOW - 60_000,
  ...over,
});

const status = (over: Partial<AgentStatus>): AgentStatus =>
  agentStatus({ id: ID, plan_hash: HASH, since: NOW - 1000, boot_time: BOOT, ...over });

type Row = [
  name: string,
  expected: ExpectedState | null,
  reported: Reported | null,
  status: AgentStatus | null,
  want: Verdict,
  reason: RegExp,
];

const ROWS: Row[] = [
  ["never pushed", null, reported(), null, "unknown", /never pushed/],
  ["no metrics", EXPECTED, null, null, "unknown", /no metrics/],
  ["no metrics, live status running", EXPECTED, null, status({ state: "running" }), "unknown", /no metrics/],
  ["scrape older than max age", EXPECTED, reported({ scrapedAt: NOW - MAX_AGE - 1 }), null, "stale-data", /1800 s old \(max 1800 s\)/],
  ["scrape exactly max age", EXPECTED, reported({ scrapedAt: NOW - MAX_AGE }), null, "converged", /applied id/],
  ["applied, same hash, last run ok", EXPECTED, reported(), null, "converged", new RegExp(`applied id ${ID}, hash aaaaaaaaaaaa`)],
  [
    "applied, then rebooted",
    EXPECTED,
    reported({ bootTime: BOOT + 3600 }),
    null,
    "rebooted",
    new RegExp(`boot at ${BOOT}, now booted at ${BOOT + 3600}`),
  ],
  ["applied, agent exports no applied boot time", EXPECTED, reported({ appliedBootTime: null }), null, "converged", /applied id/],
  ["converged while the status is stale and idle", EXPECTED, reported(), status({ state: "idle" }), "converged", /applied id/],
  [
    "run of expected id failed",
    EXPECTED,
    reported({ appliedId: ID - 1, lastRunSuccess: 0 }),
    null,
    "failed",
    new RegExp(`id ${ID}, failed`),
  ],
  [
    "run of expected id failed, seen in status only",
    EXPECTED,
    null,
    status({ state: "failed", step_index: 1, steps: 3 }),
    "failed",
    /failed at step 2\/3/,
  ],
  [
    "run interrupted by a crash",
    EXPECTED,
    reported({ appliedId: ID - 1, lastRunSuccess: 0 }),
    status({ state: "interrupted" }),
    "failed",
    /interrupted/,
  ],
  [
    "envelope rejected",
    EXPECTED,
    reported({ appliedId: ID - 1, acceptedId: ID - 1 }),
    status({ state: "rejected", result: "wrong_target" }),
    "failed",
    /rejected id \d+: wrong_target/,
  ],
  ["duplicate delivery is benign", EXPECTED, reported(), status({ state: "rejected", result: "duplicate" }), "converged", /applied id/],
  [
    "rejection of an older id is not this push's failure",
    EXPECTED,
    reported({ appliedId: ID - 1, acceptedId: ID - 1 }),
    status({ state: "rejected", id: ID - 2, result: "stale" }),
    "pending",
    /waiting/,
  ],
  [
    "a published failure counts even with stale metrics",
    EXPECTED,
    reported({ scrapedAt: NOW - MAX_AGE - 1 }),
    status({ state: "failed" }),
    "failed",
    /failed/,
  ],
  [
    "running the expected id",
    EXPECTED,
    reported({ appliedId: ID - 1, lastRunSuccess: 0, running: true }),
    status({ state: "running", step_index: 1, steps: 5 }),
    "pending",
    /running id \d+: step 2\/5$/,
  ],
  ["running, no status", EXPECTED, reported({ appliedId: ID - 1, running: true }), null, "pending", new RegExp(`running id ${ID}$`)],
  [
    "accepted, not yet finished",
    EXPECTED,
    reported({ appliedId: ID - 1, lastRunSuccess: null }),
    null,
    "pending",
    /accepted, run not finished/,
  ],
  [
    "not yet received",
    EXPECTED,
    reported({ appliedId: ID - 1, acceptedId: ID - 1 }),
    null,
    "pending",
    new RegExp(`waiting .* id ${ID} \\(agent at ${ID - 1}\\)`),
  ],
  [
    "fresh agent, never applied",
    EXPECTED,
    reported({ appliedId: null, acceptedId: null, planHash: null, lastRunSuccess: null }),
    null,
    "pending",
    /agent at none/,
  ],
  [
    "failed last run of an older id",
    EXPECTED,
    reported({ appliedId: ID - 2, acceptedId: ID - 1, lastRunSuccess: 0 }),
    null,
    "pending",
    /waiting/,
  ],
  ["applied id ok but last run not a success", EXPECTED, reported({ lastRunSuccess: null }), null, "pending", /accepted, run not finished/],
  [
    "agent ahead of this coordinator",
    EXPECTED,
    reported({ appliedId: ID + 5, acceptedId: ID + 5, planHash: OTHER }),
    null,
    "unknown",
    /newer than the last id issued here/,
  ],
  [
    "applied, then a file changed (metrics)",
    EXPECTED,
    reported({ driftedFiles: 2 }),
    null,
    "drifted",
    new RegExp(`applied id ${ID}, but 2 file\\(s\\)`),
  ],
  [
    "applied, drift seen in the signed status only",
    EXPECTED,
    reported({ driftedFiles: null }),
    status({ applied_id: ID, applied_hash: HASH, drifted_files: 1 }),
    "drifted",
    /1 file/,
  ],
  [
    "drift reported for another applied plan does not count",
    EXPECTED,
    reported(),
    status({ applied_id: ID - 1, applied_hash: HASH, drifted_files: 3 }),
    "converged",
    /applied id/,
  ],
  [
    "drift of a plan not yet applied is no verdict of its own",
    EXPECTED,
    reported({ appliedId: ID - 1, acceptedId: ID - 1, driftedFiles: 1 }),
    null,
    "pending",
    /waiting/,
  ],
  ["reboot wins over drift: both re-push", EXPECTED, reported({ bootTime: BOOT + 1, driftedFiles: 1 }), null, "rebooted", /now booted/],
  ["same id, different hash", EXPECTED, reported({ planHash: OTHER }), null, "unknown", /hash bbbbbbbbbbbb, expected aaaaaaaaaaaa/],
];

describe("verdict", () => {
  for (const [name, expected, rep, st, want, reason] of ROWS) {
    it(`${name} → ${want}`, () => {
      const got = verdict(expected, rep, st, NOW, MAX_AGE);
      assert.equal(got.verdict, want, got.reason);
      assert.match(got.reason, reason);
    });
  }

  it("covers every verdict", () => {
    assert.deepEqual(
      new Set(ROWS.map((r) => r[4])),
      new Set(["converged", "pending", "failed", "rebooted", "drifted", "stale-data", "unknown"]),
    );
  });
});

describe("isConverged", () => {
  it("is true only for the converged verdict, whatever the status says", () => {
    assert.equal(isConverged(EXPECTED, reported(), NOW, MAX_AGE), true);
    assert.equal(isConverged(EXPECTED, reported({ bootTime: BOOT + 1 }), NOW, MAX_AGE), false);
    assert.equal(isConverged(EXPECTED, reported({ driftedFiles: 1 }), NOW, MAX_AGE), false);
    assert.equal(isConverged(EXPECTED, reported({ scrapedAt: NOW - MAX_AGE - 1 }), NOW, MAX_AGE), false);
    assert.equal(isConverged(EXPECTED, null, NOW, MAX_AGE), false);
    assert.equal(isConverged(null, reported(), NOW, MAX_AGE), false);
    assert.equal(isConverged({ id: ID, planHash: OTHER }, reported(), NOW, MAX_AGE), false);
  });
});
