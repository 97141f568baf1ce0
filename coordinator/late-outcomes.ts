// A host that did not report before `push --wait` gave up may report later: when a later command
// reads its believed status, the outcome is appended to the history of the push that timed out.
import type { AgentStatus } from "../shared/types.ts";
import type { CoordinatorDb, HistoryRow, ResultInput } from "./db.ts";
import { outcomeFromStatus } from "./decide.ts";
import { failureOf } from "./status-evidence.ts";

/** Outcomes of a wait that ended without the host's word: a later status may still settle them. */
export const UNSETTLED = new Set(["timeout", "wait_interrupted", "agent_down"]);

/** The row to append for `last` (the host's newest history row) given its believed status, or null (pure). */
export const lateOutcome = (last: HistoryRow | undefined, status: AgentStatus, now: number): ResultInput | null => {
  if (!last || !UNSETTLED.has(last.outcome) || last.id === null) return null;
  // Id-less rejections cannot be tied to this id after the fact: Infinity leaves them out.
  const outcome = outcomeFromStatus(last.id, Infinity, status);
  if (!outcome) return null;
  const failure = outcome.outcome === "failed" ? failureOf(status) : null;
  const detail = failure?.message ?? outcome.reason;
  return {
    host: last.host,
    id: last.id,
    planHash: last.planHash ?? "",
    outcome: outcome.outcome,
    reason: failure?.reason ?? outcome.reason,
    message: `reported after the wait ended (${last.outcome})${detail ? `: ${detail}` : ""}`,
    at: now,
  };
};

/** Append the late outcome of every host in `statuses` (believed records only) whose last wait ended unsettled; returns them. */
export const recordLateOutcomes = (db: CoordinatorDb, statuses: Map<string, AgentStatus>, now: number): ResultInput[] => {
  const recorded: ResultInput[] = [];
  for (const [host, status] of statuses) {
    const last = db.history({ host, limit: 1 })[0];
    const row = lateOutcome(last, status, now);
    if (row === null || last === undefined) continue;
    db.recordResult(last.pushId, row);
    recorded.push(row);
  }
  return recorded;
};
