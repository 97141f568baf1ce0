import type { Amount } from "./waves.ts";

// The error budget of a rollout, pure: every host whose latest outcome is not a success counts
// against it — rejected, failed, interrupted, timeout (silence is never success), put failures.

/** Outcomes that are success: the host runs (or already ran) exactly this plan. */
export const GOOD_OUTCOMES: ReadonlySet<string> = new Set(["succeeded", "skipped"]);

/** Outcomes that say nothing yet: the host was not pushed in this rollout, or its push is still in flight. */
export const OPEN_OUTCOMES: ReadonlySet<string> = new Set(["pending", "pushed"]);

/** Does this outcome count against the budget? */
export const isFailure = (outcome: string): boolean => !GOOD_OUTCOMES.has(outcome) && !OPEN_OUTCOMES.has(outcome);

/** Failures allowed over the whole rollout: N, or P% of all its targets rounded down (`--max-failures 10%` of 5 is 0). */
export const budgetLimit = (amount: Amount | null, total: number): number =>
  amount === null ? 0 : "count" in amount ? amount.count : Math.floor((amount.percent * total) / 100 + 1e-9);

export interface BudgetState {
  used: number;
  limit: number;
  exhausted: boolean;
  /** The failed hosts and their outcomes, for the pause reason. */
  failed: { host: string; outcome: string }[];
}

/** Account the budget over every target's latest outcome: exhausted once failures exceed the limit. */
export const accountBudget = (outcomes: readonly { host: string; outcome: string }[], limit: number): BudgetState => {
  const failed = outcomes.filter((o) => isFailure(o.outcome)).map(({ host, outcome }) => ({ host, outcome }));
  return { used: failed.length, limit, exhausted: failed.length > limit, failed };
};

/** Why an exhausted budget paused the rollout, naming the hosts (at most 10) and their outcomes. */
export const budgetReason = (b: BudgetState): string => {
  const named = b.failed
    .slice(0, 10)
    .map((f) => `${f.host} ${f.outcome}`)
    .join(", ");
  const more = b.failed.length > 10 ? ` and ${b.failed.length - 10} more` : "";
  return `error budget exhausted: ${b.used} failed (allowed ${b.limit}): ${named}${more}`;
};
