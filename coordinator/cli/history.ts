import { formatTable } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import { withTimeout } from "../../shared/retry.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { AgentStatus, StatusRecord } from "../../shared/types.ts";
import type { CoordinatorDb } from "../db.ts";
import { recordLateOutcomes, UNSETTLED } from "../late-outcomes.ts";
import { createStatusVerifier } from "../status-evidence.ts";
import { STORE_READ_MS } from "./status.ts";

/**
 * Hosts whose newest history row is an unsettled wait get their late outcome from the store's
 * signed status first (best effort: a store that does not answer leaves history as it is).
 */
const settleLate = async (db: CoordinatorDb, host: string | undefined, statuses: () => Promise<StatusRecord[]>): Promise<void> => {
  const servers = db.servers(host ? { hosts: [host] } : {});
  const waiting = servers.filter((s) => UNSETTLED.has(db.history({ host: s.host, limit: 1 })[0]?.outcome ?? ""));
  if (waiting.length === 0) return;
  await sodiumReady();
  const records = await withTimeout(statuses(), STORE_READ_MS, () => new Error("store did not answer")).catch(() => []);
  const verify = createStatusVerifier(waiting);
  const valid = new Map<string, AgentStatus>();
  for (const record of records.filter((r) => waiting.some((s) => s.host === r.key))) {
    const checked = verify(record);
    if (checked.ok) valid.set(record.key, checked.status);
  }
  recordLateOutcomes(db, valid, Date.now());
};

/** `history [HOST]`: recorded per-target outcomes, newest first (`limit` already checked); `statuses` settles late reporters. */
export const printHistory = async (
  db: CoordinatorDb,
  host: string | undefined,
  limit: number,
  json: boolean,
  io: CliIo,
  statuses?: () => Promise<StatusRecord[]>,
): Promise<number> => {
  if (statuses) await settleLate(db, host, statuses);
  const rows = db.history({ ...(host && { host }), limit });
  if (json) {
    io.stdout(
      `${JSON.stringify(rows.map((r) => ({ push_id: r.pushId, at: new Date(r.at).toISOString(), host: r.host, id: r.id, plan_hash: r.planHash, outcome: r.outcome, reason: r.reason, message: r.message, operator: r.operator, store: r.store })))}\n`,
    );
  } else {
    io.stdout(
      formatTable(
        ["push", "at", "host", "id", "hash", "outcome", "reason", "detail"],
        rows.map((r) => [
          r.pushId,
          new Date(r.at).toISOString().replace(/\.\d+Z$/, "Z"),
          r.host,
          r.id,
          r.planHash?.slice(0, 12) ?? null,
          r.outcome,
          r.reason,
          r.message,
        ]),
      ),
    );
  }
  return 0;
};
