import { parseAnnouncement } from "../shared/enrollment.ts";
import type { Announcement, EnrollFacts, ParsedAnnouncement } from "../shared/enrollment.ts";
import { FleetplanError } from "../shared/errors.ts";
import { formatNodePublicKey } from "../shared/keys.ts";
import type { NodePublicKey } from "../shared/keys.ts";
import type { ServerRow } from "./db.ts";

// What `server pending` shows and whether `server accept` may add a host: pure decisions over the
// announcements read from the store and the inventory. A valid signature proves only that the
// sender holds the announced key, not that it is the machine it names: the operator compares the
// fingerprint with `fleetplan-agent pubkey` on the node (`accept --fingerprint`).

/** One value read from the enrollment bucket/prefix: its key names the host, `storedAt` is the store's time (unix ms). */
export interface StoredAnnouncement {
  key: string;
  value: Uint8Array;
  revision: number;
  storedAt: number | null;
}

/** `pending`: not in the inventory; `accepted`: in it with this very key; `key_conflict`: in it with another key. */
export type EnrollState = "pending" | "accepted" | "key_conflict";

/** One announcement as `server pending` shows it, decided before anything is printed. */
export interface PendingRow {
  host: string;
  /** The announced node key's id (`fleetplan-agent pubkey` prints it on the node); null when unreadable. */
  fingerprint: string | null;
  hostname: string | null;
  version: string | null;
  facts: EnrollFacts | null;
  issued: number | null;
  age_s: number | null;
  verified: boolean;
  /** Why it is not verified: malformed, bad_signature or wrong_host. */
  problem: string | null;
  state: EnrollState;
  /** The inventory's key id when state is key_conflict. */
  inventory_key_id: string | null;
}

const stateOf = (key: NodePublicKey | null, row: ServerRow | undefined): EnrollState => {
  if (row === undefined) return "pending";
  return key !== null && formatNodePublicKey(key) === row.nodeKey ? "accepted" : "key_conflict";
};

/** One row of `server pending` for a stored announcement (signature verified against its own key). */
const pendingRow = (stored: StoredAnnouncement, inventory: ReadonlyMap<string, ServerRow>, now: number): PendingRow => {
  const parsed = parseAnnouncement(stored.value, stored.key);
  const a: Announcement | null = parsed.announcement;
  const row = inventory.get(stored.key);
  const state = stateOf(parsed.key, row);
  const since = a?.issued ?? stored.storedAt;
  return {
    host: stored.key,
    fingerprint: parsed.key?.keyId ?? null,
    hostname: a?.hostname ?? null,
    version: a?.version ?? null,
    facts: a?.facts ?? null,
    issued: a?.issued ?? null,
    age_s: since === null ? null : Math.max(0, Math.round((now - since) / 1000)),
    verified: parsed.ok,
    problem: parsed.ok ? null : `${parsed.reason}: ${parsed.detail}`,
    state,
    inventory_key_id: state === "key_conflict" ? row!.nodeKeyId : null,
  };
};

/** Every announcement's row, hosts in name order. */
export const pendingRows = (stored: StoredAnnouncement[], inventory: ServerRow[], now: number): PendingRow[] => {
  const byHost = new Map(inventory.map((r) => [r.host, r]));
  return stored.map((s) => pendingRow(s, byHost, now)).sort((a, b) => a.host.localeCompare(b.host, "en", { numeric: true }));
};

const FINGERPRINT = /^[0-9a-f]{16}$/;

/** What `accept` adds, or `already`: the inventory has this host with this very key (nothing to add). */
export type AcceptDecision = { add: true; nodeKey: string; keyId: string } | { add: false; keyId: string };

/**
 * Whether `server accept HOST [--fingerprint KEYID]` may add the announcement read from HOST's key:
 * only a verified announcement naming HOST, with the given fingerprint, for a host not in the inventory with another key.
 */
export const decideAccept = (
  host: string,
  stored: StoredAnnouncement | undefined,
  row: ServerRow | undefined,
  fingerprint: string | undefined,
): AcceptDecision => {
  if (fingerprint !== undefined && !FINGERPRINT.test(fingerprint)) {
    throw new FleetplanError(
      "invalid_argument",
      `--fingerprint: ${JSON.stringify(fingerprint)} is not a key id (16 hex digits, as \`fleetplan-agent pubkey\` prints)`,
    );
  }
  if (stored === undefined) {
    throw new FleetplanError(
      "not_found",
      `no announcement for ${host}; run \`fleetplan-agent enroll\` on the node, then see \`fleetplan server pending\``,
    );
  }
  const parsed: ParsedAnnouncement = parseAnnouncement(stored.value, host);
  if (!parsed.ok) {
    const reason = parsed.reason === "malformed" ? "malformed" : "bad_signature";
    throw new FleetplanError(
      reason,
      `the announcement for ${host} is not verified (${parsed.reason}: ${parsed.detail}); not accepted. ` +
        `Remove it with \`fleetplan server reject ${host}\` and run \`fleetplan-agent enroll\` on the node again`,
    );
  }
  const { key } = parsed;
  if (fingerprint !== undefined && fingerprint !== key.keyId) {
    throw new FleetplanError(
      "bad_key",
      `--fingerprint ${fingerprint} does not match the announced node key ${key.keyId} of ${host}: ` +
        "another machine may have announced this name; check `fleetplan-agent pubkey` on the node, " +
        "and reject the announcement if it is not its key",
    );
  }
  if (row !== undefined) {
    if (row.nodeKey === formatNodePublicKey(key)) return { add: false, keyId: key.keyId };
    throw new FleetplanError(
      "conflict",
      `${host} is already in the inventory with node key ${row.nodeKeyId}; ` +
        `the announcement carries ${key.keyId}. ` +
        `If the node's key really changed, run \`fleetplan server remove ${host}\` first, then accept again`,
    );
  }
  return { add: true, nodeKey: formatNodePublicKey(key), keyId: key.keyId };
};
