import { join } from "node:path";
import { openEnvelope } from "../shared/envelope.ts";
import { EnvelopeError, FleetplanError } from "../shared/errors.ts";
import { createLogger } from "../shared/log.ts";
import type { Logger } from "../shared/log.ts";
import { sodiumReady } from "../shared/sodium.ts";
import { signStatusRecord } from "../shared/status.ts";
import { describeStore } from "../shared/store-config.ts";
import type { AgentStatus, PlanFeed } from "../shared/types.ts";
import { VERSION } from "../shared/version.ts";
import { readBootTime } from "./boot-time.ts";
import type { AgentConfig } from "./config.ts";
import type { DriftReport } from "./drift.ts";
import { createDriftMonitor } from "./drift-monitor.ts";
import { createDriftScheduler } from "./drift-scheduler.ts";
import { createExecutor } from "./executor.ts";
import type { Executor } from "./executor.ts";
import { serveMetrics } from "./http.ts";
import type { MetricsServer } from "./http.ts";
import { openLedger } from "./ledger.ts";
import type { Ledger, RunRow } from "./ledger.ts";
import { createAgentMetrics, setApplied, setLastRun } from "./metrics.ts";
import { isAlive, selfIdentity } from "./process-identity.ts";
import { createRejectionReporter } from "./rejections.ts";
import { createOutputReporter } from "./report-output.ts";
import { createRunner } from "./runner.ts";
import type { RunResult } from "./runner.ts";
import { loadAgentSecrets } from "./startup.ts";
import { createStatusPublisher } from "./status-publisher.ts";
import { createFreshnessWatch } from "./freshness-watch.ts";
import { createTrustKeeper, namesUnknownSigner } from "./trust-chain.ts";

export interface AgentDeps {
  /** Where envelopes come from; none for one-shot `apply`. */
  feed?: PlanFeed | null;
  logger?: Logger;
  now?: () => number;
  executor?: Executor;
}

export type SubmitResult =
  | { accepted: true; id: number; runId: number; outcome: Promise<RunResult> }
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
  /** Check the applied plan's files for drift now (SIGUSR1); null while a run is in progress. */
  checkDrift(): DriftReport | null;
  /** Stop watching, interrupt a running step and record it, close everything. */
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
  // One process runs envelopes per ledger: the daemon, or a one-shot apply, never both.
  const self = selfIdentity();
  try {
    ledger.claim(self, now(), isAlive);
  } catch (error) {
    ledger.close();
    throw error;
  }
  const feed = deps.feed ?? null;
  const metrics = createAgentMetrics({
    version: VERSION,
    store: feed ? describeStore(config.store) : "none",
    host: config.hostname,
    node_key_id: nodeKeys.keyId,
  });
  const stopping = new AbortController();
  // Trust rotations and freshness records come from the store beside the plans (agent/trust-chain.ts).
  const keeper = createTrustKeeper({
    root: trust,
    stateDir: config.stateDir,
    store: config.store,
    feed,
    log,
    now,
    onChange: (v) => metrics.trustVersion.set(v),
  });
  const freshness = createFreshnessWatch({
    host: config.hostname,
    store: config.store,
    feed,
    trust: keeper.current,
    acceptedId: () => ledger.highWaterMark().id,
    metrics,
    log,
    now,
    skewMs: config.limits.clockSkewMs,
  });
  const refreshSide = (): void => void keeper.refresh().then(() => freshness.refresh());

  for (const run of ledger.recoverInterrupted(now())) {
    metrics.runs.inc({ result: "interrupted" });
    log.warn("run_interrupted", { id: run.id, run_id: run.runId, detail: "cut short by a restart; not re-run" });
  }
  let applied: RunRow | null = ledger.lastSuccess();
  metrics.bootTime.set(bootTime);
  metrics.acceptedId.set(ledger.highWaterMark().id);
  if (applied) setApplied(metrics, { id: applied.id, planHash: applied.planHash, bootTime: applied.bootTime ?? 0 });
  const last = ledger.lastFinished();
  if (last)
    setLastRun(metrics, { success: last.state === "succeeded", finishedAt: last.finishedAt ?? 0, durationMs: last.durationMs ?? 0 });

  // Signed with the node identity: the coordinator believes only records this node's key signed.
  const publisher = createStatusPublisher(
    async (s) => feed?.putStatus(config.hostname, signStatusRecord(s, nodeKeys.identity.privateKey)),
    log,
  );
  let lastStatus: AgentStatus | null = null;
  // A changed drift count goes out with the last status as it was (same state and since).
  const drift = createDriftMonitor({
    ledger,
    metrics,
    log,
    now,
    fileRoots: config.fileRoots,
    busy: () => runner.busy(),
    onChange: (drifted) => {
      if (lastStatus === null) return;
      lastStatus = { ...lastStatus, drifted_files: drifted };
      publisher.publish(lastStatus);
    },
  });
  const publish = (state: AgentStatus["state"], fields: Partial<AgentStatus> = {}) => {
    if (!feed) return;
    lastStatus = {
      host: config.hostname,
      state,
      id: null,
      plan_hash: null,
      step_index: null,
      steps: null,
      since: now(),
      boot_time: bootTime,
      result: null,
      applied_id: applied?.id ?? null,
      applied_hash: applied?.planHash ?? null,
      applied_boot_time: applied?.bootTime ?? null,
      version: VERSION,
      drifted_files: drift.current(),
      ...fields,
    };
    publisher.publish(lastStatus);
  };
  const runner = createRunner({
    ledger,
    metrics,
    log,
    now,
    bootTime,
    publish,
    signal: stopping.signal,
    executor:
      deps.executor ??
      createExecutor({
        logDir: config.logDir,
        maxLogBytes: config.runLogMaxBytes,
        keepRunLogs: config.runLogsKept,
        graceMs: config.stopGraceMs,
        fileRoots: config.fileRoots,
        defaultStepTimeoutS: config.stepTimeoutS,
      }),
    onApplied: (run, plan) => {
      applied = run;
      if (run) drift.recordApplied(run.runId, plan.files);
    },
    onFailed: createOutputReporter({ feed, host: config.hostname, nodeKeys, trust: keeper.current, log }),
  });
  const reject = createRejectionReporter({ ledger, metrics, log, now, bootTime, publish, running: runner.busy });
  const driftTimer = createDriftScheduler(config.driftIntervalMs, () => void drift.check());
  if (config.driftIntervalMs > 0) drift.check();
  driftTimer.start();

  const submit: Agent["submit"] = (envelope, meta) => {
    if (stopping.signal.aborted) return { accepted: false, reason: "stopping", id: null, message: "the agent is stopping" };
    let opened: ReturnType<typeof openEnvelope>;
    try {
      opened = openEnvelope(envelope, {
        hostname: config.hostname,
        nodeKeys,
        trust: keeper.current(),
        highWaterMark: ledger.highWaterMark(),
        now: now(),
        limits: config.limits,
      });
    } catch (error) {
      if (!(error instanceof EnvelopeError)) throw error;
      reject(error, meta);
      return { accepted: false, reason: error.reason, id: error.id ?? null, message: error.message };
    }
    const { header, signerIds } = opened;
    let runId: number;
    try {
      runId = ledger.accept({
        id: header.id,
        planHash: header.plan_hash,
        signerIds,
        target: header.target,
        issued: header.issued,
        expires: header.expires,
        revision: meta.revision,
        source: meta.source,
        at: now(),
        bootTime,
      });
    } catch (error) {
      if (error instanceof EnvelopeError) {
        reject(error, meta, header.plan_hash);
        return { accepted: false, reason: error.reason, id: header.id, message: error.message };
      }
      log.error("ledger_write_failed", { id: header.id, error: (error as Error).message });
      return { accepted: false, reason: "ledger_error", id: header.id, message: (error as Error).message };
    }
    metrics.envelopes.inc({ result: "accepted" });
    metrics.acceptedId.set(header.id);
    freshness.update();
    log.info("envelope_accepted", {
      id: header.id,
      plan_hash: header.plan_hash,
      signer_ids: signerIds,
      revision: meta.revision,
      source: meta.source,
    });
    return { accepted: true, id: header.id, runId, outcome: runner.enqueue(runId, opened) };
  };

  let connected = false;
  let server: MetricsServer | null = null;
  if (config.metricsListen) {
    server = await serveMetrics(
      config.metricsListen,
      metrics.registry,
      () => {
        try {
          return {
            ok: true,
            detail: { host: config.hostname, accepted_id: ledger.highWaterMark().id, running: runner.busy(), store_connected: connected },
          };
        } catch (error) {
          return { ok: false, detail: { host: config.hostname, error: (error as Error).message } };
        }
      },
      log,
    );
  }
  publish(
    last?.state === "interrupted" ? "interrupted" : "idle",
    last ? { id: last.id, plan_hash: last.planHash, result: last.state } : {},
  );
  void feed?.follow(config.hostname, {
    // An envelope the ledger could not record is handed back: the feed delivers it again.
    onEnvelope: async (bytes, revision) => {
      if (namesUnknownSigner(bytes, keeper.current())) await keeper.refresh();
      const result = submit(bytes, { source: feed.kind, revision });
      if (!result.accepted && result.reason === "ledger_error") throw new FleetplanError("ledger_error", result.message);
    },
    onConnection: (up) => {
      connected = up;
      metrics.storeConnected.set(up ? 1 : 0);
      if (up) refreshSide();
    },
    onSideNotice: (kind) => (kind === "trust" ? refreshSide() : void freshness.refresh()),
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
  // Consul sends no notices, and a NATS notice can be lost: re-read trust and freshness about once a
  // minute, jittered so agents started together do not read together.
  let sideTimer: NodeJS.Timeout;
  const scheduleSide = (): void => {
    const next = () => {
      refreshSide();
      scheduleSide();
    };
    sideTimer = setTimeout(next, Math.round(60_000 * (0.5 + Math.random()))).unref();
  };
  scheduleSide();
  log.info("agent_started", {
    version: VERSION,
    node_key_id: nodeKeys.keyId,
    trust_version: keeper.version(),
    trust_ids: [...keeper.current().keys.keys()],
    threshold: keeper.current().threshold,
    store: describeStore(config.store),
    metrics: server?.url ?? null,
    boot_time: bootTime,
  });

  let stopped: Promise<void> | null = null;
  return {
    hostname: config.hostname,
    nodeKeyId: nodeKeys.keyId,
    metricsUrl: server?.url ?? null,
    ledger,
    submit,
    idle: () => runner.idle(),
    checkDrift: () => drift.check(),
    stop: () =>
      (stopped ??= (async () => {
        clearInterval(pruneTimer);
        clearTimeout(sideTimer);
        driftTimer.stop();
        stopping.abort();
        await runner.idle();
        await publisher.flush(2_000);
        publisher.stop();
        await feed?.close();
        await server?.close();
        ledger.release(self);
        ledger.close();
        log.info("agent_stopped", {});
      })()),
  };
};
