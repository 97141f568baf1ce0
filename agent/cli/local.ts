import { join } from "node:path";
import { formatTable } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import { loadNodeKey, writeNewKey } from "../../shared/key-files.ts";
import { formatNodePublic } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { AgentConfig } from "../config.ts";
import { openLedger } from "../ledger.ts";
import type { RunRow } from "../ledger.ts";

const iso = (ms: number | null) => (ms ? new Date(ms).toISOString() : null);

/** `keygen --out DIR`: a new X25519 node key, node.key (0600) and node.pub. */
export const nodeKeygen = async (dir: string, json: boolean, io: CliIo): Promise<number> => {
  await sodiumReady();
  const key = writeNewKey(dir, "node");
  io.stdout(
    json
      ? `${JSON.stringify({ ok: true, key_id: key.keyId, private: key.privatePath, public: key.publicPath, public_key: key.publicText })}\n`
      : `node key ${key.keyId}\n  private: ${key.privatePath} (0600, never leaves this node)\n  public:  ${key.publicPath}\n${key.publicText}\n`,
  );
  return 0;
};

/**
 * `pubkey`: this node's public line (X25519 + Ed25519 identity) from its private key file, for
 * `fleetplan server add --node-key`; also how a host registered with the old X25519-only line migrates.
 */
export const nodePubkey = async (config: AgentConfig, json: boolean, io: CliIo): Promise<number> => {
  await sodiumReady();
  const pair = loadNodeKey(config.nodeKeyPath);
  const line = formatNodePublic(pair.publicKey, pair.identity.publicKey);
  io.stdout(json ? `${JSON.stringify({ ok: true, key_id: pair.keyId, node_key: config.nodeKeyPath, public_key: line })}\n` : `${line}\n`);
  return 0;
};

/** `status`: the local ledger's view, no store or daemon needed. */
export const localStatus = (config: AgentConfig, json: boolean, io: CliIo): number => {
  const ledger = openLedger(join(config.stateDir, "ledger.db"));
  try {
    const hwm = ledger.highWaterMark();
    const applied = ledger.lastSuccess();
    const last = ledger.lastFinished();
    const pending = ledger.pendingRuns();
    const report = {
      host: config.hostname,
      accepted_id: hwm.id || null,
      applied_id: applied?.id ?? null,
      applied_hash: applied?.planHash ?? null,
      applied_at: iso(applied?.finishedAt ?? null),
      last_run: last ? { id: last.id, state: last.state, finished_at: iso(last.finishedAt), failed_step: last.failedStep } : null,
      pending: pending.map((r) => ({ id: r.id, state: r.state })),
      envelopes: ledger.counts(),
    };
    if (json) io.stdout(`${JSON.stringify(report)}\n`);
    else {
      io.stdout(
        formatTable(
          ["host", "accepted", "applied", "hash", "applied at", "last run"],
          [
            [
              report.host,
              report.accepted_id,
              report.applied_id,
              report.applied_hash?.slice(0, 12) ?? null,
              report.applied_at,
              last ? `${last.id} ${last.state}` : null,
            ],
          ],
        ),
      );
    }
    return 0;
  } finally {
    ledger.close();
  }
};

/** A run as `history --json` prints it: snake_case, times in ISO 8601, like every other JSON output. */
const runView = (r: RunRow) => ({
  run_id: r.runId,
  envelope_seq: r.envelopeSeq,
  id: r.id,
  plan_hash: r.planHash,
  state: r.state,
  queued_at: iso(r.queuedAt),
  started_at: iso(r.startedAt),
  finished_at: iso(r.finishedAt),
  duration_ms: r.durationMs,
  boot_time: iso(r.bootTime === null ? null : r.bootTime * 1000),
  failed_step: r.failedStep,
  error: r.error,
  steps: r.steps.map((s) => ({
    index: s.index,
    name: s.name,
    exit_code: s.exitCode,
    signal: s.signal,
    timed_out: s.timedOut,
    duration_ms: s.durationMs,
    started_at: iso(s.startedAt),
  })),
});

/** `history`: runs, newest first. */
export const localHistory = (config: AgentConfig, limit: number, json: boolean, io: CliIo): number => {
  const ledger = openLedger(join(config.stateDir, "ledger.db"));
  try {
    const runs = ledger.runs(limit);
    if (json) io.stdout(`${JSON.stringify(runs.map(runView))}\n`);
    else
      io.stdout(
        formatTable(
          ["run", "id", "hash", "state", "queued", "finished", "ms", "failed step"],
          runs.map((r) => [
            r.runId,
            r.id,
            r.planHash.slice(0, 12),
            r.state,
            iso(r.queuedAt),
            iso(r.finishedAt),
            r.durationMs,
            r.failedStep,
          ]),
        ),
      );
    return 0;
  } finally {
    ledger.close();
  }
};
