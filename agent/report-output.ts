// Why a run failed, for the coordinator: stable codes in the signed status, and the tail of the
// failing step's output sealed to the trusted admin keys under this host's logs key.
import type { Logger } from "../shared/log.ts";
import { MAX_OUTPUT_TAIL, sealOutput } from "../shared/output-seal.ts";
import type { AgentStatus, NodeKeyPair, PlanFeed, TrustSet } from "../shared/types.ts";
import { readRunLogTail } from "./executor/run-log.ts";
import type { RunOutcome } from "./executor.ts";

/** The failure fields a status record carries, all present together or not at all. */
export type FailureFields = Required<Pick<AgentStatus, "failure_reason" | "exit_code" | "failed_step">>;

/** The status fields of a failed run (pure): its stable reason, the failing step's exit code and index. */
export const failureFields = (outcome: Pick<RunOutcome, "result" | "reason" | "steps">): FailureFields | null => {
  if (outcome.result !== "failed") return null;
  const step = outcome.steps.find((s) => s.exitCode !== 0);
  const fromStep =
    step === undefined
      ? "failed"
      : step.timedOut
        ? "step_timeout"
        : step.signal
          ? "step_killed"
          : step.exitCode === null
            ? "step_not_started"
            : "step_failed";
  return { failure_reason: outcome.reason ?? fromStep, exit_code: step?.exitCode ?? null, failed_step: step?.index ?? null };
};

/** What the output reporter needs, passed in so tests can supply their own feed and keys. */
export interface OutputReporterDeps {
  feed: PlanFeed | null;
  host: string;
  nodeKeys: NodeKeyPair;
  /** The trust in force when the run failed: after a rotation, the new admin keys read the output. */
  trust: () => TrustSet;
  log: Logger;
}

/**
 * Seal and store the output tail of a failed run (best effort: a store that refuses it is logged,
 * the run's outcome is already in the ledger and the status). Readable only with a trusted admin key.
 */
export const createOutputReporter =
  (deps: OutputReporterDeps) =>
  async (id: number, outcome: RunOutcome, at: number): Promise<void> => {
    const fields = failureFields(outcome);
    if (!fields || !deps.feed?.putOutput) return;
    try {
      const tail = outcome.logFile
        ? readRunLogTail(outcome.logFile, MAX_OUTPUT_TAIL)
        : new TextEncoder().encode(`${outcome.error ?? ""}\n`);
      const admins = [...deps.trust().keys.values()];
      const record = sealOutput({ host: deps.host, id, at, ...fields }, tail, admins, deps.nodeKeys.identity.privateKey);
      await deps.feed.putOutput(deps.host, record);
    } catch (error) {
      deps.log.warn("output_put_failed", { id, error: (error as Error).message });
    }
  };
