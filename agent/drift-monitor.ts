// The agent's drift state: files recorded at each success, checked on demand or on a timer, the
// count exported as a metric and, when it changes, republished in the signed status.
import type { Logger } from "../shared/log.ts";
import type { PlanFile } from "../shared/types.ts";
import { checkDrift, fileRecords } from "./drift.ts";
import type { DriftReport } from "./drift.ts";
import type { Ledger } from "./ledger.ts";
import type { AgentMetrics } from "./metrics.ts";

/** What the drift monitor reads and reports to, passed in so tests can supply their own. */
export interface DriftMonitorDeps {
  ledger: Ledger;
  metrics: AgentMetrics;
  log: Logger;
  now: () => number;
  fileRoots: string[];
  /** A run in progress is writing files: a check then would report its half-written plan. */
  busy: () => boolean;
  /** The drifted count changed (not called for the check that follows a success: its status carries it). */
  onChange: (drifted: number) => void;
}

const LOGGED_PATHS = 20;

// Drift bookkeeping for one agent; `current()` is null until the first check.
export const createDriftMonitor = (deps: DriftMonitorDeps) => {
  const { ledger, metrics, log, now } = deps;
  let drifted: number | null = null;

  const update = (report: DriftReport): boolean => {
    metrics.driftedFiles.set(report.drifted);
    metrics.driftCheckTimestamp.set(Math.floor(report.checkedAt / 1000));
    if (report.drifted === drifted) return false;
    const files = report.files
      .filter((f) => f.drifted)
      .slice(0, LOGGED_PATHS)
      .map((f) => `${f.path}: ${f.detail}`);
    if (report.drifted > 0) log.warn("drift_detected", { drifted: report.drifted, checked: report.files.length, files });
    else if (drifted !== null && drifted > 0) log.info("drift_cleared", { checked: report.files.length });
    drifted = report.drifted;
    return true;
  };
  const run = (): DriftReport | null => {
    try {
      return checkDrift(ledger.appliedFiles(), deps.fileRoots, now());
    } catch (error) {
      log.warn("drift_check_failed", { error: (error as Error).message });
      return null;
    }
  };

  return {
    current: (): number | null => drifted,
    /** Check the applied plan's files now; null while a run is in progress or when the ledger cannot be read. */
    check(): DriftReport | null {
      if (deps.busy()) return null;
      const report = run();
      if (report && update(report)) deps.onChange(report.drifted);
      return report;
    },
    /** After a successful run: what it wrote replaces what was recorded, then it is checked at once. */
    recordApplied(runId: number, files: readonly PlanFile[]): void {
      try {
        ledger.recordFiles(runId, fileRecords(files));
      } catch (error) {
        log.warn("drift_record_failed", { run_id: runId, error: (error as Error).message });
        return;
      }
      const report = run();
      if (report) update(report);
    },
  };
};
