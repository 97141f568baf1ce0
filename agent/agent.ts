import { join } from "node:path";
import { openEnvelope } from "../shared/envelope.ts";
import { EnvelopeError, FleetplanError } from "../shared/errors.ts";
import { createLogger } from "../shared/log.ts";
import type { Logger } from "../shared/log.ts";
import { sodiumReady } from "../shared/sodium.ts";
import { describeStore } from "../shared/store-config.ts";
import type { AgentStatus, OpenedEnvelope, PlanFeed } from "../shared/types.ts";
import { VERSION } from "../shared/version.ts";
import { readBootTime } from "./boot-time.ts";
import type { AgentConfig } from "./config.ts";
import { createExecutor } from "./executor.ts";
import type { Executor, RunOutcome } from "./executor.ts";
import { startMetricsServer } from "./http.ts";
import type { MetricsServer } from "./http.ts";
import { openLedger } from "./ledger.ts";
import type { Ledger } from "./ledger.ts";
import { createAgentMetrics, setApplied, setLastRun } from "./metrics.ts";
import { createStatusPublisher } from "./status-publisher.ts";
import { loadAgentSecrets } from "./startup.ts";

/** Rejections decided before the signatures were verified (PROTOCOL.md steps 1–3). */
const UNSIGNED_REASONS = new Set(["too_large", "malformed", "unsupported_version", "bad_signature", "untrusted_signer"]);

export interface AgentDeps {
  /** Where envelopes come from; none for one-shot `apply`. */
  feed?: PlanFeed | null;
  logger?: Logger;
  now?: () => number;
  executor?: Executor;
}

export type SubmitResult =
  | { accepted: true; id: number; runId: number; outcome: Promise<RunOutcome | "superseded"> }
  | { accepted: false; reason: string; id: number | null; message: string };

export interface Agent {
  readonly hostname: string;
  readonly nodeKeyId: string;
  readonly metricsUrl: string | null;
  readonly ledger: Ledger;
  /** Verify an envelope and, if accepted, queue it (newest accepted runs next). */
  submit(envelope: Uint8Array, meta: { source: string; revision: number | null }): SubmitResult;
  /** Resolves when nothing is pending or running. */
  idle(): Promise<void>;
  /** Interrupt a running step, record it, stop watching, close everything. */
  stop(): Promise<void>;
}

/** Start an agent in this process: its own keys, ledger, metrics endpoint and store watch. */
export const createAgent = async (config: AgentConfig, deps: AgentDeps = {}): Promise<Agent> => {
  await sodiumReady();
  const now = deps.now ?? Date.now;
  const log = (deps.logger ?? createLogger({ level: config.logLevel })).child({ host: config.hostname });
  const { nodeKeys, trust } = loadAgentSecrets(config);
  const bootTime = readBootTime(config.procStat);
  const ledger = openLedger(join(config.stateDir, "ledger.db"));
  const executor = deps.executor ?? createExecutor({
    logDir: config.logDir, maxLogBytes: config.runLogMaxBytes, keepRunLogs: config.runLogsKept,
    graceMs: config.stopGraceMs, fileRoots: config.fileRoots, defaultStepTimeoutS: config.stepTimeoutS,
  });
  const feed = deps.feed ?? null;
  const metrics = createAgentMetrics({ version: VERSION, store: feed ? describeStore(config.store) : "none" });
  const stopping = new AbortController();
  const plans = new Map<number, { opened: OpenedEnvelope; done: (o: RunOutcome | "superseded") => void }>();
  let runner: Promise<void> | null = null;

  for (const run of ledger.recoverInterrupted(now())) {
    metrics.runs.inc({ result: "interrupted" });
    log.warn("run_interrupted", { id: run.id, run_id: run.runId, detail: "cut short by a restart; not re-run" });
  }
  let applied = ledger.lastSuccess();
  metrics.bootTime.set(bootTime);
  metrics.acceptedId.set(ledger.highWaterMark().id);
  if (applied) setApplied(metrics, { id: applied.id, planHash: applied.planHash, bootTime: applied.bootTime ?? 0 });
  const last = ledger.lastFinished();
  if (last) setLastRun(metrics, { success: last.state === "succeeded", finishedAt: last.finishedAt ?? 0, durationMs: last.durationMs ?? 0 });

  const publisher = createStatusPublisher(async (s) => feed?.putStatus(s), log);
  const publish = (state: AgentStatus["state"], fields: Partial<AgentStatus> = {}) => {
    if (!feed) return;
    publisher.publish({
      host: config.hostname, state, id: null, plan_hash: null, step: null, step_index: null, steps: null,
      since: now(), boot_time: bootTime, result: null,
      applied_id: applied?.id ?? null, applied_hash: applied?.planHash ?? null, applied_boot_time: applied?.bootTime ?? null,
      version: VERSION, ...fields,
    });
  };

  const reject = (error: EnvelopeError, meta: { source: string; revision: number | null }, header?: OpenedEnvelope["header"]) => {
    metrics.envelopes.inc({ result: error.reason });
    const fields = { reason: error.reason, id: error.id ?? null, revision: meta.revision, source: meta.source, message: error.message };
    if (error.reason === "duplicate") log.info("envelope_duplicate", fields);
    else {
      log.warn("envelope_rejected", fields);
      // Before step 3 passed, the header's id is the sender's claim: never report it as ours.
      const signed = !UNSIGNED_REASONS.has(error.reason);
      publish("rejected", { id: signed ? error.id ?? null : null, plan_hash: signed ? header?.plan_hash ?? null : null, result: error.reason });
    }
    try {
      ledger.recordSeen({ id: error.id ?? null, planHash: null, signerIds: [], target: null, issued: null, expires: null, revision: meta.revision, source: meta.source, at: now(), bootTime, reason: error.reason });
    } catch (e) {
      log.error("ledger_write_failed", { error: (e as Error).message });
    }
  };

  const runOne = async (runId: number) => {
    const entry = plans.get(runId)!;
    const { header, plan } = entry.opened;
    for (const superseded of ledger.startRun(runId, now())) {
      metrics.runs.inc({ result: "superseded" });
      log.info("run_superseded", { run_id: superseded, by: header.id });
      plans.get(superseded)?.done("superseded");
      plans.delete(superseded);
    }
    plans.delete(runId);
    const base = { id: header.id, plan_hash: header.plan_hash, steps: plan.steps.length };
    log.info("run_started", { id: header.id, plan_hash: header.plan_hash, run_id: runId, steps: plan.steps.length });
    metrics.running.set(1);
    publish("running", { ...base, step_index: 0, step: plan.steps[0]?.name ?? null });
    const outcome = await executor.run(plan, {
      id: header.id, planHash: header.plan_hash, runId, signal: stopping.signal,
      onStep: (e) => {
        if (e.phase === "start") publish("running", { ...base, step: e.name, step_index: e.index });
        else if (e.result) {
          metrics.stepDuration.observe(e.result.durationMs / 1000);
          ledger.recordStep(runId, e.result);
        }
      },
    });
    const finishedAt = now();
    ledger.finishRun(runId, { state: outcome.result, at: finishedAt, durationMs: outcome.durationMs, bootTime, failedStep: outcome.failedStep, error: outcome.error });
    metrics.running.set(0);
    metrics.runs.inc({ result: outcome.result });
    setLastRun(metrics, { success: outcome.result === "succeeded", finishedAt, durationMs: outcome.durationMs });
    if (outcome.result === "succeeded") {
      applied = ledger.lastSuccess();
      setApplied(metrics, { id: header.id, planHash: header.plan_hash, bootTime });
    }
    const failed = outcome.steps.find((s) => s.exitCode !== 0);
    log[outcome.result === "succeeded" ? "info" : "warn"]("run_finished", {
      id: header.id, run_id: runId, result: outcome.result, duration_ms: outcome.durationMs,
      failed_step: outcome.failedStep, exit_code: failed?.exitCode ?? null, timed_out: failed?.timedOut ?? false, error: outcome.error, log_file: outcome.logFile,
    });
    publish(outcome.result, { ...base, result: outcome.result, step: outcome.failedStep, step_index: failed?.index ?? null });
    entry.done(outcome);
  };

  const kick = () => {
    runner ??= (async () => {
      while (plans.size > 0 && !stopping.signal.aborted) {
        const newest = Math.max(...plans.keys());
        try {
          await runOne(newest);
        } catch (error) {
          // Ledger could not record: never execute without a record. The run stays pending
          // in the ledger and is recorded `interrupted` at the next start.
          metrics.running.set(0);
          log.error("run_not_recorded", { run_id: newest, reason: (error as FleetplanError).reason ?? "internal", error: (error as Error).message });
          plans.get(newest)?.done({ result: "failed", steps: [], durationMs: 0, failedStep: null, error: (error as Error).message, logFile: "" });
          plans.delete(newest);
        }
      }
      runner = null;
    })();
  };

  const submit: Agent["submit"] = (envelope, meta) => {
    let opened: ReturnType<typeof openEnvelope>;
    try {
      opened = openEnvelope(envelope, { hostname: config.hostname, nodeKeys, trust, highWaterMark: ledger.highWaterMark(), now: now(), limits: config.limits });
    } catch (error) {
      if (!(error instanceof EnvelopeError)) throw error;
      reject(error, meta);
      return { accepted: false, reason: error.reason, id: error.id ?? null, message: error.message };
    }
    const { header, signerIds } = opened;
    let runId: number;
    try {
      runId = ledger.accept({ id: header.id, planHash: header.plan_hash, signerIds, target: header.target, issued: header.issued, expires: header.expires, revision: meta.revision, source: meta.source, at: now(), bootTime });
    } catch (error) {
      if (error instanceof EnvelopeError) {
        reject(error, meta, header);
        return { accepted: false, reason: error.reason, id: header.id, message: error.message };
      }
      log.error("ledger_write_failed", { id: header.id, error: (error as Error).message });
      return { accepted: false, reason: "ledger_error", id: header.id, message: (error as Error).message };
    }
    metrics.envelopes.inc({ result: "accepted" });
    metrics.acceptedId.set(header.id);
    log.info("envelope_accepted", { id: header.id, plan_hash: header.plan_hash, signer_ids: signerIds, revision: meta.revision, source: meta.source });
    let done!: (o: RunOutcome | "superseded") => void;
    const outcome = new Promise<RunOutcome | "superseded">((resolve) => (done = resolve));
    plans.set(runId, { opened, done });
    kick();
    return { accepted: true, id: header.id, runId, outcome };
  };

  let connected = false;
  let server: MetricsServer | null = null;
  if (config.metricsListen) {
    server = await startMetricsServer(config.metricsListen, metrics.registry, () => {
      try {
        return { ok: true, detail: { host: config.hostname, accepted_id: ledger.highWaterMark().id, running: runner !== null, store_connected: connected } };
      } catch (error) {
        return { ok: false, detail: { host: config.hostname, error: (error as Error).message } };
      }
    });
  }
  publish(last?.state === "interrupted" ? "interrupted" : "idle", last ? { id: last.id, plan_hash: last.planHash, result: last.state } : {});
  void feed?.follow(config.hostname, {
    onEnvelope: async (bytes, revision) => void submit(bytes, { source: feed.kind, revision }),
    onConnection: (up) => {
      connected = up;
      metrics.storeConnected.set(up ? 1 : 0);
    },
  });
  const prune = () => {
    try {
      const removed = ledger.prune({ maxAgeMs: config.ledgerMaxAgeMs, maxRows: config.ledgerMaxRows, now: now() });
      if (removed > 0) log.info("ledger_pruned", { rows: removed });
    } catch (error) {
      log.warn("ledger_prune_failed", { error: (error as Error).message });
    }
  };
  prune();
  const pruneTimer = setInterval(prune, 3_600_000).unref();
  log.info("agent_started", { version: VERSION, node_key_id: nodeKeys.keyId, trust_ids: [...trust.keys.keys()], threshold: trust.threshold, store: describeStore(config.store), metrics: server?.url ?? null, boot_time: bootTime });

  return {
    hostname: config.hostname,
    nodeKeyId: nodeKeys.keyId,
    metricsUrl: server?.url ?? null,
    ledger,
    submit,
    idle: async () => {
      while (runner) await runner;
    },
    stop: async () => {
      clearInterval(pruneTimer);
      stopping.abort();
      while (runner) await runner;
      await publisher.flush(2_000);
      publisher.stop();
      await feed?.close();
      await server?.close();
      ledger.close();
      log.info("agent_stopped", {});
    },
  };
};
