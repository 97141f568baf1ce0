import { formatTable } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { printableLine } from "../../shared/printable.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { CoordinatorConfig } from "../config.ts";
import type { CoordinatorDb } from "../db.ts";
import { decideAccept, pendingRows } from "../enrollment.ts";
import type { PendingRow } from "../enrollment.ts";
import { refuseSharedKeys, validateServerInput } from "../inventory.ts";
import { openRolloutDb } from "../rollout/db.ts";
import { parseTags } from "../rollout/targets.ts";
import { openEnrollStore } from "../store/enroll-store.ts";
import type { EnrollStore } from "../store/enroll-store.ts";

// `fleetplan server pending | accept HOST | reject HOST`: enrollment like `salt-key -L/-a/-d`.
// Decisions are in ../enrollment.ts; this file reads the store and writes the inventory.

/** The flags `server accept` takes (main.ts checked that no other is given). */
export interface EnrollFlags {
  group?: string;
  tag?: string[];
  fingerprint?: string;
  "allow-shared-key"?: boolean;
}

const age = (s: number | null): string => {
  if (s === null) return "";
  if (s < 120) return `${s}s`;
  return s < 7200 ? `${Math.round(s / 60)}m` : s < 172_800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86_400)}d`;
};

const verdict = (r: PendingRow): string => (r.verified ? (r.state === "pending" ? "verified" : r.state) : `NOT VERIFIED (${r.problem})`);

const printPending = (rows: PendingRow[], json: boolean, io: CliIo): void => {
  if (json) return void io.stdout(`${JSON.stringify(rows)}\n`);
  if (rows.length === 0) return void io.stdout("no announcements (nodes announce with `fleetplan-agent enroll`)\n");
  io.stdout(
    formatTable(
      ["host", "fingerprint", "hostname", "version", "os", "kernel", "arch", "age", "signature"],
      rows.map((r) =>
        [
          r.host,
          r.fingerprint,
          r.hostname,
          r.version,
          r.facts?.os ?? null,
          r.facts?.kernel ?? null,
          r.facts?.arch ?? null,
          age(r.age_s),
          verdict(r),
        ].map((cell) => (cell === null ? null : printableLine(cell))),
      ),
    ),
  );
  for (const r of rows.filter((x) => x.state === "key_conflict")) {
    const announced = r.fingerprint ?? "an unreadable key";
    io.stderr(`warning: ${printableLine(r.host)} is in the inventory with node key ${r.inventory_key_id}, but announces ${announced}\n`);
  }
};

const withStore = async <T>(config: CoordinatorConfig, run: (store: EnrollStore) => Promise<T>): Promise<T> => {
  await sodiumReady();
  const store = await openEnrollStore(config.store);
  try {
    return await run(store);
  } finally {
    await store.close();
  }
};

/** `server accept HOST`: the verified announcement's node key goes into the inventory; then `store credentials` issues its creds. */
const accept = async (host: string, flags: EnrollFlags, db: CoordinatorDb, config: CoordinatorConfig, io: CliIo, store: EnrollStore) => {
  const tags = parseTags("--tag", flags.tag ?? []);
  const stored = (await store.list()).find((s) => s.key === host);
  const row = db.servers().find((s) => s.host === host);
  const decision = decideAccept(host, stored, row, flags.fingerprint);
  if (decision.add) {
    const server = validateServerInput({ host, node_key: decision.nodeKey, group: flags.group }, { now: Date.now() });
    // A node that announces another host's key is a copied image or an impostor, as with `server add`.
    refuseSharedKeys([server], db.servers(), !!flags["allow-shared-key"]);
    db.addServers([server]);
    openRolloutDb(db.sqlite).setTags(host, tags);
  }
  // Only the very announcement accepted is removed: one put since then stays for the operator to see.
  await store.remove(host, stored!.revision);
  const next = "run `fleetplan store credentials --out DIR` to issue its credentials";
  io.stdout(
    config.json
      ? `${JSON.stringify({ ok: true, host, key_id: decision.keyId, added: decision.add })}\n`
      : decision.add
        ? `accepted ${host} (node key ${decision.keyId}); ${next}\n`
        : `${host} is already in the inventory with node key ${decision.keyId}\n`,
  );
  return 0;
};

/** `server reject HOST`: delete its announcement (the inventory is not touched). */
const reject = async (host: string, config: CoordinatorConfig, io: CliIo, store: EnrollStore) => {
  if (!(await store.list()).some((s) => s.key === host)) {
    throw new FleetplanError("not_found", `no announcement for ${host}; see \`fleetplan server pending\``);
  }
  await store.remove(host);
  io.stdout(config.json ? `${JSON.stringify({ ok: true, rejected: host })}\n` : `rejected ${host}: its announcement is deleted\n`);
  return 0;
};

/** `server pending|accept|reject` (main.ts checked flags and arguments). */
export const enrollCommand = (
  sub: string,
  host: string | undefined,
  flags: EnrollFlags,
  db: CoordinatorDb,
  config: CoordinatorConfig,
  io: CliIo,
) =>
  withStore(config, async (store) => {
    if (sub === "pending") {
      printPending(pendingRows(await store.list(), db.servers(), Date.now()), config.json, io);
      return 0;
    }
    if (!host) throw new FleetplanError("invalid_argument", `server ${sub} needs HOST (see fleetplan server pending)`);
    return sub === "accept" ? accept(host, flags, db, config, io, store) : reject(host, config, io, store);
  });
