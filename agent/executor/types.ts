// Types only. The executor turns a verified plan into files on disk and finished steps.
import type { Plan } from "../../shared/types.ts";
import type { StepRecord } from "../ledger.ts";

export interface ExecutorOptions {
  /** Where per-run logs go (created 0700 if missing). */
  logDir: string;
  /** Cap on step output kept per run, default 10 MiB. Step headers and footers are always kept. */
  maxLogBytes?: number;
  /** Run logs kept after each run, newest first, default 50. */
  keepRunLogs?: number;
  /** SIGTERM → SIGKILL delay for a step's process group, default 10 s. */
  graceMs?: number;
  /** Allowed path prefixes for plan files, default ["/"]. */
  fileRoots?: string[];
  /** Steps' working directory, default "/". */
  cwd?: string;
  /** Base environment of every step, default PATH, HOME, LANG (and LC_ALL, TZ, USER, LOGNAME when set) from process.env. */
  env?: NodeJS.ProcessEnv;
  /** Timeout for a step without timeout_s, default 3600 s. */
  defaultStepTimeoutS?: number;
}

/** ExecutorOptions with every default filled in. */
export interface NormalizedExecutorOptions {
  logDir: string;
  maxLogBytes: number;
  keepRunLogs: number;
  graceMs: number;
  fileRoots: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  defaultStepTimeoutS: number;
}

/** Every step reports this shape, whatever happened to it; the ledger stores it as is. */
export type StepResult = StepRecord;

export interface StepEvent {
  index: number;
  name: string;
  phase: "start" | "end";
  /** Only on `end`. */
  result?: StepResult;
}

export interface RunContext {
  id: number;
  planHash: string;
  runId: number;
  /** Aborting stops the current step (whole process group) and ends the run `interrupted`. */
  signal: AbortSignal;
  onStep?: (e: StepEvent) => void;
}

export interface RunOutcome {
  result: "succeeded" | "failed" | "interrupted";
  steps: StepResult[];
  durationMs: number;
  /** The step that failed or was cut short. */
  failedStep: string | null;
  /** Why the run did not succeed: names paths and steps, never file content or env values. */
  error: string | null;
  /** Stable code for a run that failed before any step could run (e.g. `log_unavailable`). */
  reason?: string;
  logFile: string;
}

export interface Executor {
  run(plan: Plan, ctx: RunContext): Promise<RunOutcome>;
}
