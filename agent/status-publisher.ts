import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../shared/log.ts";
import { backoffDelay } from "../shared/retry.ts";
import type { AgentStatus } from "../shared/types.ts";

/**
 * Publishes the latest status with retry. Only the newest status matters, so a status that
 * is superseded while a put is failing is dropped rather than queued behind it.
 */
export const createStatusPublisher = (put: (s: AgentStatus) => Promise<void>, log: Logger) => {
  let latest: AgentStatus | null = null;
  let loop: Promise<void> | null = null;
  const stopped = new AbortController();

  const drain = async () => {
    for (let attempt = 0; latest && !stopped.signal.aborted; ) {
      const status = latest;
      try {
        await put(status);
        if (latest === status) latest = null;
        attempt = 0;
      } catch (error) {
        const delay = backoffDelay(attempt++, { initialMs: 250, maxMs: 15_000 });
        log.warn("status_put_failed", { error: (error as Error).message, retry_ms: delay });
        await sleep(delay, undefined, { signal: stopped.signal }).catch(() => {});
      }
    }
    loop = null;
  };

  return {
    publish(status: AgentStatus): void {
      latest = status;
      // Signed and sent on the event loop's next turn: a run's start status goes out after its step is spawned, not before.
      loop ??= new Promise<void>((resolve) => setImmediate(resolve)).then(drain);
    },
    /** Wait until the latest status is stored (or give up after `ms`). */
    async flush(ms: number): Promise<void> {
      const deadline = Date.now() + ms;
      while (loop && Date.now() < deadline) await sleep(20);
    },
    stop(): void {
      stopped.abort();
    },
  };
};
