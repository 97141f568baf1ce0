import type { Amount } from "./waves.ts";

// Types of a rollout as stored in the coordinator database (coordinator/rollout/db.ts).

/** running: a wave is in progress (or the coordinator died in one: resume it); paused: waiting for the operator. */
export type RolloutState = "running" | "paused" | "completed" | "aborted" | "reverted";

/** Everything `resume` needs besides the plans and targets, fixed when the rollout starts. */
export interface RolloutOptions {
  waveTimeoutMs: number;
  expiresInMs: number;
  /** `--max-failures` as given (null: none allowed) and the number of failures it allows. */
  maxFailures: Amount | null;
  budgetLimit: number;
  gates: string[];
  prometheus: string | null;
  maxAgeMs: number;
  revertOnFailure: boolean;
  viaSsh: boolean;
  concurrency: number;
}

/** What the automatic revert did. */
export interface RevertRecord {
  at: number;
  /** Hosts that got their previous plan again, those without one known, and the outcome counts. */
  hosts: string[];
  noPrevious: string[];
  counts: Record<string, number>;
  ok: boolean;
}

export interface Rollout {
  id: number;
  createdAt: number;
  updatedAt: number;
  operator: string;
  state: RolloutState;
  /** Waves completed so far (0-based index of the wave in progress or paused). */
  wave: number;
  /** Cumulative wave ends: targets[0 .. ends[w]) have been pushed by the end of wave w. */
  ends: number[];
  options: RolloutOptions;
  /** Why it paused (or stopped), null while running or completed. */
  reason: string | null;
  revert: RevertRecord | null;
}

export interface RolloutTarget {
  host: string;
  /** 0-based place in the rollout order. */
  position: number;
  bodyHash: string;
  /** What the host was expected to run when the rollout started, and that plan's body if known. */
  prevId: number | null;
  prevHash: string | null;
  prevBody: string | null;
  id: number | null;
  planHash: string | null;
  /** pending until pushed; then push's outcome codes (succeeded, failed, timeout, ...). */
  outcome: string;
  reason: string | null;
  revertId: number | null;
  revertOutcome: string | null;
}
