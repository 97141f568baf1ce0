import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { RejectReason } from "../shared/errors.ts";

/** Results counted in fleetplan_agent_envelopes_total: accepted, or a reject reason. */
export const ENVELOPE_RESULTS = ["accepted", ...Object.values(RejectReason)] as const;
export const RUN_RESULTS = ["succeeded", "failed", "interrupted", "superseded"] as const;

/**
 * The agent's metrics in a registry of its own (tests host many agents per process).
 * No default Node metrics: three of them fail `promtool check metrics`.
 */
export const createAgentMetrics = (labels: { version: string; store: string; host: string; node_key_id: string }) => {
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [registry] });
  const m = {
    registry,
    provisioningId: gauge("fleetplan_agent_provisioning_id", "Provisioning id of the last successfully applied plan."),
    acceptedId: gauge("fleetplan_agent_accepted_provisioning_id", "Highest provisioning id ever accepted (high-water mark)."),
    planInfo: gauge("fleetplan_agent_plan_info", "1 for the last successfully applied plan.", ["plan_hash", "provisioning_id"]),
    bootTime: gauge("fleetplan_agent_boot_time_seconds", "Boot time of this machine (btime), unix seconds."),
    appliedBootTime: gauge("fleetplan_agent_applied_boot_time_seconds", "Boot time at which the last successful plan was applied."),
    lastRunSuccess: gauge("fleetplan_agent_last_run_success", "1 if the last finished run succeeded, else 0."),
    lastRunTimestamp: gauge("fleetplan_agent_last_run_timestamp_seconds", "When the last run finished, unix seconds."),
    lastRunDuration: gauge("fleetplan_agent_last_run_duration_seconds", "Duration of the last finished run."),
    running: gauge("fleetplan_agent_running", "1 while a plan is running."),
    storeConnected: gauge("fleetplan_agent_store_connected", "1 while connected to the plan store."),
    // Freeze detection (agent/freshness-watch.ts) and trust rotation (agent/trust-chain.ts).
    freshnessExpires: gauge(
      "fleetplan_agent_freshness_expires_timestamp_seconds",
      "When the last verified freshness record expires, unix seconds (0: none yet).",
    ),
    missingUpdate: gauge(
      "fleetplan_agent_missing_update",
      "1 when the freshness record names an id above the highest this agent accepted.",
    ),
    trustVersion: gauge("fleetplan_agent_trust_version", "Version of the trust set in force (1: the trust file)."),
    // Drift (agent/drift.ts): 0 until a check finds a file of the applied plan changed.
    driftedFiles: gauge(
      "fleetplan_agent_drifted_files",
      "Files of the last successful plan now missing or changed (content, mode, owner).",
    ),
    driftCheckTimestamp: gauge(
      "fleetplan_agent_drift_check_timestamp_seconds",
      "When files were last checked for drift, unix seconds (0: never).",
    ),
    // host and node key id let the coordinator tell whose metrics a URL really serves.
    info: gauge("fleetplan_agent_info", "Agent version, store, hostname and node key id.", ["version", "store", "host", "node_key_id"]),
    envelopes: new Counter({
      name: "fleetplan_agent_envelopes_total",
      help: "Envelopes seen, by result (accepted or reject reason).",
      labelNames: ["result"],
      registers: [registry],
    }),
    runs: new Counter({
      name: "fleetplan_agent_runs_total",
      help: "Runs finished, by result.",
      labelNames: ["result"],
      registers: [registry],
    }),
    stepDuration: new Histogram({
      name: "fleetplan_agent_step_duration_seconds",
      help: "Duration of plan steps.",
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
      registers: [registry],
    }),
  };
  m.info.set(labels, 1);
  m.storeConnected.set(0);
  m.running.set(0);
  m.freshnessExpires.set(0);
  m.missingUpdate.set(0);
  m.driftedFiles.set(0);
  m.driftCheckTimestamp.set(0);
  // Every result series exists from the start, so rate() and alerts see zeros, not gaps.
  for (const result of ENVELOPE_RESULTS) m.envelopes.inc({ result }, 0);
  for (const result of RUN_RESULTS) m.runs.inc({ result }, 0);
  return m;
};

export type AgentMetrics = ReturnType<typeof createAgentMetrics>;

/** Publish the last successful plan; plan_info carries exactly one series. */
export const setApplied = (m: AgentMetrics, applied: { id: number; planHash: string; bootTime: number }): void => {
  m.provisioningId.set(applied.id);
  m.planInfo.reset();
  m.planInfo.set({ plan_hash: applied.planHash, provisioning_id: String(applied.id) }, 1);
  m.appliedBootTime.set(applied.bootTime);
};

/** Publish the last finished run. */
export const setLastRun = (m: AgentMetrics, run: { success: boolean; finishedAt: number; durationMs: number }): void => {
  m.lastRunSuccess.set(run.success ? 1 : 0);
  m.lastRunTimestamp.set(Math.floor(run.finishedAt / 1000));
  m.lastRunDuration.set(run.durationMs / 1000);
};
