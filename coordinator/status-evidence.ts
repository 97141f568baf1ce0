import { parseNodePublic } from "../shared/keys.ts";
import { parseStatusRecord, statusSignatureValid } from "../shared/status.ts";
import type { AgentStatus, StatusRecord } from "../shared/types.ts";
import type { ServerRow } from "./db.ts";

// Which status records from the store count as evidence (docs/protocol.md, status records), pure: only a
// record signed by the identity key the inventory holds for the host whose store key it was read
// from, naming that host. Callers count and report everything else; they never believe it.

/** Why a record is not evidence: stable codes shown in push events, status rows and logs. */
export const RefusedReason = {
  Malformed: "malformed",
  Unsigned: "unsigned",
  BadSignature: "bad_signature",
  WrongHost: "wrong_host",
  UnknownHost: "unknown_host",
  NoIdentityKey: "no_identity_key",
} as const;
export type RefusedReason = (typeof RefusedReason)[keyof typeof RefusedReason];

/** A believed status, or the refusal; `claimedHost` (the host the record names) is for reporting only. */
export type StatusEvidence = { ok: true; status: AgentStatus } | { ok: false; reason: RefusedReason; claimedHost: string | null };

/** The inventory's view of one host, as the verifier needs it: null identity for the old key form. */
export interface StatusSigner {
  host: string;
  identityKey: Uint8Array | null;
}

/** Verify one record read under `record.key` against that host's inventory entry (null: not in the inventory). */
export const verifyStatusRecord = (record: StatusRecord, server: StatusSigner | null): StatusEvidence => {
  const parsed = parseStatusRecord(record.value);
  if (!parsed.ok) return parsed;
  const claimedHost = parsed.status.host;
  if (server === null || server.host !== record.key) return { ok: false, reason: RefusedReason.UnknownHost, claimedHost };
  if (claimedHost !== record.key) return { ok: false, reason: RefusedReason.WrongHost, claimedHost };
  if (server.identityKey === null) return { ok: false, reason: RefusedReason.NoIdentityKey, claimedHost };
  if (!statusSignatureValid(parsed.status, parsed.sig, server.identityKey)) {
    return { ok: false, reason: RefusedReason.BadSignature, claimedHost };
  }
  return { ok: true, status: parsed.status };
};

/** The identity key an inventory row holds; null for the old X25519-only key line (or an unreadable one). */
export const identityKeyOf = (row: Pick<ServerRow, "host" | "nodeKey">): Uint8Array | null => {
  try {
    return parseNodePublic(row.nodeKey, row.host).identityKey;
  } catch {
    return null;
  }
};

/** A verifier over an inventory: each row's key line is parsed once. */
export const createStatusVerifier = (servers: Pick<ServerRow, "host" | "nodeKey">[]) => {
  const signers = new Map(servers.map((s): [string, StatusSigner] => [s.host, { host: s.host, identityKey: identityKeyOf(s) }]));
  return (record: StatusRecord): StatusEvidence => verifyStatusRecord(record, signers.get(record.key) ?? null);
};

/** The migration message for a host registered with the old key form (server add/import, status). */
export const noIdentityWarning = (host: string): string =>
  `${host}: no node identity key, so its status records are never evidence; on the node run \`fleetplan-agent pubkey\` ` +
  `and re-add it with the printed key (\`fleetplan server remove ${host}\`, then \`fleetplan server add ${host} --node-key '<line>' ...\`)`;

/** Counts of refused records by reason, e.g. {bad_signature: 2}. */
export const countRefused = (counts: Record<string, number>, reason: string): Record<string, number> => ({
  ...counts,
  [reason]: (counts[reason] ?? 0) + 1,
});

/**
 * A believed failed status as outcome detail (pure): the agent's stable reason and where it failed,
 * e.g. {reason: "step_failed", message: "step 2/3 exit code 3"}; null for any other state.
 */
export const failureOf = (status: AgentStatus): { reason: string; message: string } | null => {
  if (status.state !== "failed") return null;
  const where =
    status.failed_step === null || status.failed_step === undefined
      ? "before any step"
      : `step ${status.failed_step + 1}${status.steps !== null ? `/${status.steps}` : ""}`;
  const exit = status.exit_code === null || status.exit_code === undefined ? "" : ` exit code ${status.exit_code}`;
  return {
    reason: status.failure_reason ?? status.result ?? "failed",
    message: `${where}${exit} (fleetplan logs ${status.host} --id ${status.id})`,
  };
};
