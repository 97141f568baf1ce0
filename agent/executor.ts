// Runs one verified plan: files first (atomically), then steps in order until the first failure.
// One run at a time is the caller's job (the agent's queue); the executor holds no run state.
import type { Plan, PlanStep } from "../shared/types.ts";
import { normalizeExecutorOptions } from "./executor/options.ts";
import { openRunLog, rotateRunLogs, runLogPath } from "./executor/run-log.ts";
import type { RunLog } from "./executor/run-log.ts";
import { describeStep, runStep } from "./executor/run-step.ts";
import type { Executor, ExecutorOptions, NormalizedExecutorOptions, RunContext, RunOutcome, StepResult } from "./executor/types.ts";
import { FileWriteError } from "./executor/file-write-error.ts";
import { writePlanFiles } from "./executor/write-files.ts";

export type { Executor, ExecutorOptions, RunContext, RunOutcome, StepEvent, StepResult } from "./executor/types.ts";

type Ending = Pick<RunOutcome, "result" | "failedStep" | "error" | "reason">;

const stepEnv = (opts: NormalizedExecutorOptions, step: PlanStep, ctx: RunContext): NodeJS.ProcessEnv => ({
  ...opts.env,
  ...step.env,
  FLEETPLAN_PROVISIONING_ID: String(ctx.id),
  FLEETPLAN_PLAN_HASH: ctx.planHash,
  FLEETPLAN_STEP: step.name,
});

const seconds = (ms: number): string => `${(ms / 1000).toFixed(3)} s`;

// Files, then steps; returns how the run ended. `steps` collects every step that ran.
const execute = async (plan: Plan, ctx: RunContext, opts: NormalizedExecutorOptions, log: RunLog, steps: StepResult[]): Promise<Ending> => {
  log.line(
    `fleetplan run ${ctx.runId}: provisioning id ${ctx.id}, plan ${ctx.planHash}, ${plan.files.length} file(s), ${plan.steps.length} step(s)`,
  );
  if (ctx.signal.aborted) return { result: "interrupted", failedStep: null, error: "interrupted before the first file was written" };
  try {
    writePlanFiles(plan.files, opts.fileRoots, (f) => log.line(`wrote ${f.path} (mode ${f.mode.toString(8).padStart(4, "0")})`));
  } catch (error) {
    log.line(`files: ${(error as Error).message}`);
    const reason = error instanceof FileWriteError ? error.reason : "file_write_failed";
    return { result: "failed", failedStep: null, error: (error as Error).message, reason };
  }
  for (const [index, step] of plan.steps.entries()) {
    if (ctx.signal.aborted) return { result: "interrupted", failedStep: null, error: `interrupted before step "${step.name}"` };
    const label = `[${index + 1}/${plan.steps.length}] ${step.name}`;
    ctx.onStep?.({ index, name: step.name, phase: "start" });
    log.line(`==> ${label}: started ${new Date().toISOString()}`);
    const result = await runStep({
      index,
      name: step.name,
      run: step.run,
      timeoutMs: (step.timeout_s ?? opts.defaultStepTimeoutS) * 1000,
      graceMs: opts.graceMs,
      cwd: opts.cwd,
      env: stepEnv(opts, step, ctx),
      signal: ctx.signal,
      output: log.output,
    });
    log.line(`<== ${label}: ${describeStep(result)} after ${seconds(result.durationMs)}`);
    steps.push(result);
    ctx.onStep?.({ index, name: step.name, phase: "end", result });
    if (ctx.signal.aborted) return { result: "interrupted", failedStep: step.name, error: `interrupted during step "${step.name}"` };
    if (result.exitCode !== 0)
      return { result: "failed", failedStep: step.name, error: `step "${step.name}" failed: ${describeStep(result)}` };
  }
  return { result: "succeeded", failedStep: null, error: null };
};

const runPlan = async (plan: Plan, ctx: RunContext, opts: NormalizedExecutorOptions): Promise<RunOutcome> => {
  const started = performance.now();
  const logFile = runLogPath(opts.logDir, ctx.id, ctx.runId);
  const steps: StepResult[] = [];
  let log: RunLog;
  try {
    log = openRunLog(logFile, opts.logDir, opts.maxLogBytes);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return {
      result: "failed",
      steps,
      durationMs: 0,
      failedStep: null,
      error: `cannot open run log ${logFile}: ${code}`,
      reason: "log_unavailable",
      logFile,
    };
  }
  let ending: Ending;
  try {
    ending = await execute(plan, ctx, opts, log, steps);
    log.line(`run ${ending.result} after ${seconds(performance.now() - started)}`);
  } finally {
    log.close();
    rotateRunLogs(opts.logDir, opts.keepRunLogs);
  }
  return { ...ending, steps, durationMs: Math.round(performance.now() - started), logFile };
};

/**
 * An executor over normalised options. A step's output goes to the run log only; an onStep
 * callback that throws (e.g. the ledger cannot record) stops the run and rejects `run`.
 */
export const createExecutor = (options: ExecutorOptions): Executor => {
  const opts = normalizeExecutorOptions(options);
  return { run: (plan, ctx) => runPlan(plan, ctx, opts) };
};
