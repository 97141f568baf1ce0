import type { Logger } from "../shared/log.ts";
import type { AgentStatus, OpenedEnvelope } from "../shared/types.ts";
import type { Executor, RunOutcome } from "./executor.ts";
import type { Ledger, RunRow } from "./ledger.ts";
import type { AgentMetrics } from "./metrics.ts";
import { setApplied, setLastRun } from "./metrics.ts";
import { failureFields } from "./report-output.ts";

export type RunResult = RunOutcome | "superseded";

export interface RunnerDeps {
  ledger: Ledger;
  executor: Executor;
  metrics: AgentMetrics;
  log: Logger;
  now: () => number;
  bootTime: number;
  /** Aborted on shutdown: the running step is stopped and nothing new starts. */
  signal: AbortSignal;
  publish: (state: AgentStatus["state"], fields: Partial<AgentStatus>) => void;
  /** After a success, with the plan that ran (its files are what drift checks compare against). */
  onApplied: (run: RunRow | null, plan: OpenedEnvelope["plan"]) => void;
  /** A failed run: its output tail goes to the coordinator, sealed (report-output.ts). */
  onFailed?: (id: number, outcome: RunOutcome, at: number) => Promise<void>;
}

type Entry = { opened: OpenedEnvelope; done: (r: RunResult) => void };

const failedOutcome = (error: string): RunOutcome => ({ result: "failed", steps: [], durationMs: 0, failedStep: null, error, logFile: "" });

/**
 * One run at a time; of the accepted envelopes waiting, the newest runs next and the others
 * are recorded `superseded`. Every run's fate reaches the ledger when the ledger can write.
 */
export const createRunner = (deps: RunnerDeps) => {
  const { ledger, metrics, log, now } = deps;
  const waiting = new Map<number, Entry>();
  let loop: Promise<void> | null = null;

  const runOne = async (runId: number, entry: Entry): Promise<RunOutcome> => {
    const { header, plan } = entry.opened;
    for (const superseded of ledger.startRun(runId, now())) {
      metrics.runs.inc({ result: "superseded" });
      log.info("run_superseded", { run_id: superseded, by: header.id });
      waiting.get(superseded)?.done("superseded");
      waiting.delete(superseded);
    }
    const base = { id: header.id, plan_hash: header.plan_hash, steps: plan.steps.length };
    log.info("run_started", { id: header.id, plan_hash: header.plan_hash, run_id: runId, steps: plan.steps.length });
    metrics.running.set(1);
    deps.publish("running", { ...base, step_index: 0 });
    const outcome = await executeSafely(runId, entry);
    const finishedAt = now();
    try {
      ledger.finishRun(runId, {
        state: outcome.result,
        at: finishedAt,
        durationMs: outcome.durationMs,
        bootTime: deps.bootTime,
        failedStep: outcome.failedStep,
        error: outcome.error,
      });
    } catch (error) {
      // It ran; the ledger keeps it `running`, which the next start records as `interrupted`.
      log.error("run_not_recorded", { id: header.id, run_id: runId, result: outcome.result, error: (error as Error).message });
    }
    metrics.running.set(0);
    metrics.runs.inc({ result: outcome.result });
    setLastRun(metrics, { success: outcome.result === "succeeded", finishedAt, durationMs: outcome.durationMs });
    if (outcome.result === "succeeded") {
      setApplied(metrics, { id: header.id, planHash: header.plan_hash, bootTime: deps.bootTime });
      deps.onApplied(ledger.lastSuccess(), plan);
    }
    const failed = outcome.steps.find((s) => s.exitCode !== 0);
    log[outcome.result === "succeeded" ? "info" : "warn"]("run_finished", {
      id: header.id,
      run_id: runId,
      result: outcome.result,
      reason: outcome.reason ?? null,
      duration_ms: outcome.durationMs,
      failed_step: outcome.failedStep,
      exit_code: failed?.exitCode ?? null,
      timed_out: failed?.timedOut ?? false,
      error: outcome.error,
      log_file: outcome.logFile,
    });
    deps.publish(outcome.result, {
      ...base,
      result: outcome.reason ?? outcome.result,
      step_index: failed?.index ?? null,
      ...failureFields(outcome),
    });
    if (outcome.result === "failed") void deps.onFailed?.(header.id, outcome, finishedAt);
    return outcome;
  };

  // Whatever the executor throws (no descriptors left, a callback that failed), the accepted id
  // still ends in a recorded outcome with its reason, never in limbo.
  const executeSafely = async (runId: number, entry: Entry): Promise<RunOutcome> => {
    const { header, plan } = entry.opened;
    const base = { id: header.id, plan_hash: header.plan_hash, steps: plan.steps.length };
    try {
      return await deps.executor.run(plan, {
        id: header.id,
        planHash: header.plan_hash,
        runId,
        signal: deps.signal,
        onStep: (e) => {
          if (e.phase === "start") {
            // The first step's start was published with the run's.
            if (e.index > 0) deps.publish("running", { ...base, step_index: e.index });
          } else if (e.result) {
            metrics.stepDuration.observe(e.result.durationMs / 1000);
            ledger.recordStep(runId, e.result);
          }
        },
      });
    } catch (error) {
      return { ...failedOutcome(`the executor failed: ${(error as Error).message}`), reason: "executor_error" };
    }
  };

  // The ledger could not record the start (disk full, locked): nothing was executed.
  const notStarted = (runId: number, entry: Entry, error: unknown): RunOutcome => {
    const { header } = entry.opened;
    metrics.running.set(0);
    log.error("run_not_recorded", {
      id: header.id,
      run_id: runId,
      reason: (error as { reason?: string }).reason ?? "internal",
      error: (error as Error).message,
    });
    deps.publish("failed", { id: header.id, plan_hash: header.plan_hash, result: "ledger_error" });
    return failedOutcome((error as Error).message);
  };

  const drain = async (): Promise<void> => {
    while (waiting.size > 0 && !deps.signal.aborted) {
      const runId = Math.max(...waiting.keys());
      const entry = waiting.get(runId)!;
      waiting.delete(runId);
      let outcome: RunOutcome;
      try {
        outcome = await runOne(runId, entry);
      } catch (error) {
        outcome = notStarted(runId, entry, error);
      }
      entry.done(outcome);
    }
    // Shutting down: what never started stays pending in the ledger (`interrupted` at next start).
    for (const entry of waiting.values()) entry.done({ ...failedOutcome("agent stopped before the run started"), result: "interrupted" });
    waiting.clear();
  };

  // An envelope queued after drain() saw an empty queue but before it settled (a caller that
  // awaited the previous outcome can do that) must not be stranded: look again once it settles.
  const start = (): void => {
    if (loop || deps.signal.aborted) return;
    loop = drain().finally(() => {
      loop = null;
      if (waiting.size > 0) start();
    });
  };

  return {
    /** Queue an accepted envelope; resolves with its run's outcome. */
    enqueue(runId: number, opened: OpenedEnvelope): Promise<RunResult> {
      const outcome = new Promise<RunResult>((done) => waiting.set(runId, { opened, done }));
      start();
      return outcome;
    },
    busy: (): boolean => loop !== null,
    /** Resolves when nothing is waiting or running. */
    async idle(): Promise<void> {
      while (loop) await loop;
    },
  };
};
