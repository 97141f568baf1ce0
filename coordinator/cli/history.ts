import { formatTable } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import type { CoordinatorDb } from "../db.ts";

/** `history [HOST]`: recorded per-target outcomes, newest first (`limit` already checked). */
export const printHistory = (db: CoordinatorDb, host: string | undefined, limit: number, json: boolean, io: CliIo): number => {
  const rows = db.history({ ...(host && { host }), limit });
  if (json) {
    io.stdout(`${JSON.stringify(rows.map((r) => ({ push_id: r.pushId, at: new Date(r.at).toISOString(), host: r.host, id: r.id, plan_hash: r.planHash, outcome: r.outcome, reason: r.reason, message: r.message, operator: r.operator, store: r.store })))}\n`);
  } else {
    io.stdout(formatTable(["push", "at", "host", "id", "hash", "outcome", "reason"], rows.map((r) => [
      r.pushId, new Date(r.at).toISOString().replace(/\.\d+Z$/, "Z"), r.host, r.id, r.planHash?.slice(0, 12) ?? null, r.outcome, r.reason,
    ])));
  }
  return 0;
};
