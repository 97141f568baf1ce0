// When periodic drift checks run: every interval ±20 %, so a fleet does not read its disks in
// step. On-demand checks (SIGUSR1, `fleetplan-agent drift`) do not wait for it.

/** The spread around the interval: ±20 %. */
export const DRIFT_JITTER = 0.2;

// The wait before the next check, uniformly within ±DRIFT_JITTER of the interval.
export const jitteredDelay = (intervalMs: number, random: () => number = Math.random): number =>
  Math.round(intervalMs * (1 - DRIFT_JITTER + 2 * DRIFT_JITTER * random()));

// A timer that calls `check` on the jittered interval; never when the interval is 0.
export const createDriftScheduler = (intervalMs: number, check: () => void, random: () => number = Math.random) => {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const arm = (): void => {
    if (stopped || intervalMs <= 0) return;
    timer = setTimeout(fire, jitteredDelay(intervalMs, random)).unref();
  };
  const fire = (): void => {
    timer = null;
    try {
      check();
    } finally {
      arm();
    }
  };
  return {
    start: arm,
    stop(): void {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
};
