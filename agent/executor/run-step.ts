// One step: `bash -euo pipefail` in its own process group, output drained into the run log,
// timeout and abort both ending the whole group (SIGTERM, then SIGKILL after the grace period).
import { spawn } from "node:child_process";
import { terminateGroup } from "./process-group.ts";
import type { StepResult } from "./types.ts";

// The script travels on stdin and bash reads all of it before running any of it, because
// - as an argument (`-c <run>`) it would be world-readable in /proc/PID/cmdline and limited
//   to 128 KiB (MAX_ARG_STRLEN), and
// - read by bash line by line from stdin, any command that reads stdin would eat the rest of it.
// Commands in the script therefore see an empty stdin. --norc: Debian's bash sources
// /etc/bash.bashrc when stdin is a socket, as it is here.
const BASH_ARGS = ["--norc", "--noprofile", "-euo", "pipefail", "-c", 'eval "$(cat)"'];

// A process that left the group (setsid) but kept our stdout open would hold the step open
// forever: once the group is gone, the output gets this long to finish before it is cut.
const DRAIN_MS = 1_000;
// setTimeout's ceiling (~24.8 days); longer timeouts would fire at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface StepSpec {
  index: number;
  name: string;
  run: string;
  timeoutMs: number;
  graceMs: number;
  cwd: string;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  output: (chunk: Uint8Array) => void;
}

/** How the step's process ended: exit code or signal, or the error that kept it from starting. */
type Ended = { exitCode: number | null; signal: string | null; error?: NodeJS.ErrnoException };

/** Run one step to its end, whatever that is; never throws for the step's own failure. */
export const runStep = async (spec: StepSpec): Promise<StepResult> => {
  const startedAt = Date.now();
  const started = performance.now();
  let timedOut = false;
  // node:child_process itself, not execa: execa cost ~17 MB RSS and its import (0.1-2 s) delayed the first run
  // after a start, and each spawn through it a few ms more of the agent's one thread (bench/agent-path.ts).
  const child = spawn("bash", BASH_ARGS, { cwd: spec.cwd, env: spec.env, detached: true, stdio: ["pipe", "pipe", "pipe"] });
  const ended = new Promise<Ended>((resolve) => {
    child.once("error", (error) => resolve({ exitCode: null, signal: null, error }));
    child.once("close", (exitCode, signal) => resolve({ exitCode, signal }));
  });
  child.stdin.once("error", () => {}); // a script that exits before reading all of its input: EPIPE, not a failure
  child.stdin.end(spec.run);
  const pgid = child.pid;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= pgid === undefined ? Promise.resolve() : terminateGroup(pgid, spec.graceMs));
  const timer = setTimeout(
    () => {
      timedOut = true;
      void stop();
    },
    Math.min(spec.timeoutMs, MAX_TIMER_MS),
  );
  const onAbort = (): void => void stop();
  spec.signal.addEventListener("abort", onAbort, { once: true });
  if (spec.signal.aborted) onAbort();
  let drainTimer: NodeJS.Timeout | undefined;
  let settled = false;
  for (const stream of [child.stdout, child.stderr]) stream.on("data", (chunk: Uint8Array) => spec.output(chunk));
  // What the step left behind in its group ends with it, so it cannot hold the output open.
  child.once("exit", () => {
    clearTimeout(timer);
    void stop().then(() => {
      if (!settled)
        drainTimer = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
        }, DRAIN_MS);
    });
  });
  try {
    const result = await ended;
    await stopping;
    if (result.error) spec.output(Buffer.from(`could not start bash in ${spec.cwd}: ${result.error.code ?? result.error.message}\n`));
    return {
      index: spec.index,
      name: spec.name,
      exitCode: result.exitCode,
      signal: result.signal,
      timedOut,
      durationMs: Math.round(performance.now() - started),
      startedAt,
    };
  } finally {
    settled = true;
    clearTimeout(timer);
    clearTimeout(drainTimer);
    spec.signal.removeEventListener("abort", onAbort);
  }
};

/** How a step ended, for the log footer and the run's error: never content or env values. */
export const describeStep = (r: StepResult): string => {
  if (r.timedOut) return `timed out (${r.signal ? `killed by ${r.signal}` : `exit code ${r.exitCode}`})`;
  if (r.signal) return `killed by ${r.signal}`;
  return r.exitCode === null ? "could not start" : `exit code ${r.exitCode}`;
};
