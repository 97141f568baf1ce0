import type { AgentStatus } from "../shared/types.ts";
import type { Reported } from "./metrics-parse.ts";

// Convergence verdicts, pure: what this coordinator issued last (expected) against what the
// agent reports (metrics) and, when known, its live status from the store (only a record verified
// against the host's identity key: coordinator/status-evidence.ts). Convergence is only
// ever claimed from fresh metrics; the status can prove a failure, never a success, because a
// status record stays in the store unchanged after its agent dies.

export const Verdict = {
  Converged: "converged",
  Pending: "pending",
  Failed: "failed",
  Rebooted: "rebooted",
  Drifted: "drifted",
  StaleData: "stale-data",
  Unknown: "unknown",
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

export interface VerdictResult {
  verdict: Verdict;
  reason: string;
}

export interface ExpectedState {
  id: number;
  planHash: string;
}

const short = (hash: string | null) => (hash === null ? "none" : hash.slice(0, 12));
/** `step 2/5` (1-based) from a status; status records carry no step names. */
const stepOf = (status: AgentStatus, lead: string) =>
  status.step_index === null ? "" : `${lead} step ${status.step_index + 1}/${status.steps ?? "?"}`;

/** A terminal failure of the expected id that the agent published: it will never retry on its own. */
const statusFailure = (expected: ExpectedState, status: AgentStatus | null): VerdictResult | null => {
  if (status === null || status.id !== expected.id) return null;
  if (status.state === "rejected" && status.result !== "duplicate") {
    return { verdict: Verdict.Failed, reason: `agent rejected id ${expected.id}: ${status.result ?? "no reason given"}` };
  }
  if (status.state === "failed" || status.state === "interrupted") {
    const step = stepOf(status, " at");
    return { verdict: Verdict.Failed, reason: `run of id ${expected.id} ${status.state}${step}` };
  }
  return null;
};

/**
 * Files of the expected plan the agent found changed: from its metrics, or from its signed status
 * when that names the expected plan as applied (a changed count is republished at once).
 */
const driftedFiles = (expected: ExpectedState, r: Reported, status: AgentStatus | null): number => {
  const own = status !== null && status.applied_id === expected.id && status.applied_hash === expected.planHash;
  return Math.max(r.driftedFiles ?? 0, own ? (status.drifted_files ?? 0) : 0);
};

/** Why a fresh, unconverged target is not (yet) there. */
const notConverged = (expected: ExpectedState, r: Reported, status: AgentStatus | null): VerdictResult => {
  if (r.lastRunSuccess === 0 && r.acceptedId === expected.id && !r.running) {
    return { verdict: Verdict.Failed, reason: `last run, of id ${expected.id}, failed` };
  }
  const newest = Math.max(r.appliedId ?? 0, r.acceptedId ?? 0);
  if (newest > expected.id) {
    return {
      verdict: Verdict.Unknown,
      reason: `agent is at id ${newest}, newer than the last id issued here (${expected.id}): another coordinator database?`,
    };
  }
  if (r.appliedId === expected.id && r.planHash !== expected.planHash) {
    return {
      verdict: Verdict.Unknown,
      reason: `agent applied id ${expected.id} with hash ${short(r.planHash)}, expected ${short(expected.planHash)}`,
    };
  }
  if (r.running || (status?.state === "running" && status.id === expected.id)) {
    const step = status?.state === "running" ? stepOf(status, ":") : "";
    return { verdict: Verdict.Pending, reason: `running id ${r.acceptedId ?? expected.id}${step}` };
  }
  if (r.acceptedId === expected.id) return { verdict: Verdict.Pending, reason: `id ${expected.id} accepted, run not finished` };
  return { verdict: Verdict.Pending, reason: `waiting for the agent to receive id ${expected.id} (agent at ${r.appliedId ?? "none"})` };
};

/** The verdict for one server; `now` and `scrapedAt` in unix ms. */
export const verdict = (
  expected: ExpectedState | null,
  reported: Reported | null,
  status: AgentStatus | null,
  now: number,
  maxAgeMs: number,
): VerdictResult => {
  if (expected === null) return { verdict: Verdict.Unknown, reason: "never pushed" };
  const failure = statusFailure(expected, status);
  if (failure !== null) return failure;
  if (reported === null) return { verdict: Verdict.Unknown, reason: "no metrics from the agent" };
  const ageMs = now - reported.scrapedAt;
  if (ageMs > maxAgeMs) {
    return { verdict: Verdict.StaleData, reason: `metrics are ${Math.round(ageMs / 1000)} s old (max ${Math.round(maxAgeMs / 1000)} s)` };
  }
  if (reported.appliedId === expected.id && reported.planHash === expected.planHash && reported.lastRunSuccess === 1) {
    const { bootTime, appliedBootTime } = reported;
    if (bootTime !== null && appliedBootTime !== null && bootTime !== appliedBootTime) {
      return {
        verdict: Verdict.Rebooted,
        reason: `applied id ${expected.id} during boot at ${appliedBootTime}, now booted at ${bootTime}`,
      };
    }
    const drifted = driftedFiles(expected, reported, status);
    if (drifted > 0) {
      const reason = `applied id ${expected.id}, but ${drifted} file(s) it wrote changed since (push re-asserts it)`;
      return { verdict: Verdict.Drifted, reason };
    }
    return { verdict: Verdict.Converged, reason: `applied id ${expected.id}, hash ${short(expected.planHash)}` };
  }
  return notConverged(expected, reported, status);
};

/** Converged right now on the expected id and hash (push skips such targets when the hash is unchanged). */
export const isConverged = (expected: ExpectedState | null, reported: Reported | null, now: number, maxAgeMs: number): boolean =>
  verdict(expected, reported, null, now, maxAgeMs).verdict === Verdict.Converged;
