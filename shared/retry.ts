import { setTimeout as sleep } from "node:timers/promises";

export interface BackoffOptions {
  /** First delay, ms. */
  initialMs: number;
  /** Ceiling for one delay, ms. */
  maxMs: number;
  /** Give up after this many attempts (Infinity: never). */
  attempts: number;
  /** Also give up when the next wait would end more than this many ms after the first try. */
  budgetMs?: number;
  signal?: AbortSignal;
  /** Called before each wait, e.g. to log the failure. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** Errors for which another attempt cannot help. */
  isPermanent?: (error: unknown) => boolean;
  random?: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 10_000, attempts: 5 };

/** "Full jitter" exponential backoff: uniform in [0, min(max, initial·2^attempt)], never below 10 ms. */
export const backoffDelay = (attempt: number, options: Pick<BackoffOptions, "initialMs" | "maxMs" | "random">): number => {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(10, Math.round((options.random ?? Math.random)() * ceiling));
};

/** Run `task` until it succeeds, it fails permanently, attempts run out, or the signal aborts. */
export const withRetry = async <T>(task: (attempt: number) => Promise<T>, options: Partial<BackoffOptions> = {}): Promise<T> => {
  const opts = { ...DEFAULT_BACKOFF, ...options };
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await task(attempt);
    } catch (error) {
      if (attempt + 1 >= opts.attempts || opts.isPermanent?.(error) || opts.signal?.aborted) throw error;
      const delay = backoffDelay(attempt, opts);
      if (opts.budgetMs !== undefined && Date.now() - started + delay > opts.budgetMs) throw error;
      opts.onRetry?.(error, attempt + 1, delay);
      await sleep(delay, undefined, { signal: opts.signal });
    }
  }
};

/** Reject with `onTimeout()` if `promise` has not settled within `ms`. */
export const withTimeout = <T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};
