import { chmodSync, closeSync, openSync, statSync } from "node:fs";
import Database from "better-sqlite3";
import { FleetplanError } from "../shared/errors.ts";
import type { PutResult } from "../shared/types.ts";
import { migrate, toHistory, toServer } from "./db-schema.ts";
import type { ServerRecord } from "./db-schema.ts";
import { nextProvisioningId } from "./ids.ts";

// The coordinator's state: inventory, the id counter (last id issued per target), the expected
// state (last id delivered per target) and an append-only log of pushes and their per-target
// outcomes. One SQLite file, WAL, fsync'd.

/**
 * One inventory entry. `nodeKey` is the normalised public key line: `fleetplan-node <b64> <keyid>` (X25519 ‖ Ed25519
 * identity), or the old `fleetplan-node-x25519 <b64> <keyid>` of a host whose status records can never be evidence.
 */
export interface ServerRow {
  host: string;
  nodeKey: string;
  nodeKeyId: string;
  metricsUrl: string | null;
  /** `user@addr:port`, for day-0 pushes over SSH. */
  ssh: string | null;
  group: string | null;
  /** false until the agent is installed: such targets are pushed over SSH, not the store. */
  bootstrapped: boolean;
  /** unix ms */
  addedAt: number;
}

/** What this coordinator last delivered to a target: the state the target should converge to. */
export interface Expected {
  id: number;
  planHash: string;
  /** unix ms, when it was delivered (setExpected's `at`) */
  issuedAt: number;
}

export interface PushStart {
  store: string;
  dryRun: boolean;
  force: boolean;
  operator: string;
  at: number;
}

export interface ResultInput {
  host: string;
  id: number | null;
  planHash: string | null;
  /** e.g. pushed, skipped, put_failed, succeeded, failed, timeout, wait_interrupted, rejected, ssh_failed (free text: new ones need no migration) */
  outcome: string;
  reason?: string | null;
  message?: string | null;
  at: number;
}

/**
 * One recorded outcome, with the push it belongs to. The log is append-only: a target put into
 * the store has a `pushed` row as soon as the put succeeds and, with --wait, a second row with
 * its final outcome (succeeded, failed, timeout, wait_interrupted, ...).
 */
export interface HistoryRow {
  pushId: number;
  at: number;
  host: string;
  id: number | null;
  planHash: string | null;
  outcome: string;
  reason: string | null;
  message: string | null;
  operator: string;
  store: string;
  dryRun: boolean;
}

/** A delivered envelope: the expected state it moves to. */
export interface Delivered {
  host: string;
  id: number;
  planHash: string;
  at: number;
  /** Where a store put left it: remembered as the base of the host's next compare-and-set put. */
  put?: Required<PutResult>;
}

export interface CoordinatorDb {
  /** All-or-nothing: a host already in the inventory (or twice in `rows`) writes nothing. */
  addServers(rows: ServerRow[]): void;
  removeServer(host: string): boolean;
  /** `server set`: every field but host and addedAt from `row`; false when the host is not in the inventory. */
  updateServer(row: ServerRow): boolean;
  /** Sorted by host; an unknown host in `hosts` is an error naming every unknown one. */
  servers(filter?: { hosts?: string[]; group?: string }): ServerRow[];
  setBootstrapped(host: string, value: boolean): void;
  /** Atomically reserve the next id for host: never returned again, whether or not it is delivered. */
  issueId(host: string, now: Date): number;
  /**
   * issueId for every host in one transaction (one fsync): all reserved durably, or none. A host twice in `hosts`
   * gets the later id; an unknown host is an error naming every unknown one.
   */
  reserveIds(hosts: string[], now: Date): Map<string, number>;
  /** The id issueId would return now, without writing (dry runs). */
  peekNextId(host: string, now: Date): number;
  /** Record a delivered id and its hash as expected; an id not above the current one changes nothing. */
  setExpected(host: string, id: number, planHash: string, at: number): void;
  expected(host?: string): Map<string, Expected>;
  lastIssuedId(host: string): number | null;
  startPush(p: PushStart): number;
  recordResult(pushId: number, r: ResultInput): void;
  finishPush(pushId: number, at: number, summary: unknown): void;
  /** setExpected for each delivered envelope and recordResult for each outcome, in one transaction (one fsync). */
  recordBatch(pushId: number, batch: { delivered: Delivered[]; results: ResultInput[] }): void;
  /** Per host, the store revision of the last envelope put and recorded by recordBatch. */
  putBases(): Map<string, Required<PutResult>>;
  /** Newest first (by recording order, not by clock). */
  history(opts?: { host?: string; limit?: number }): HistoryRow[];
  /** The connection itself, for the rollout and tag tables (coordinator/rollout/db.ts keeps their queries). */
  sqlite: Database.Database;
  close(): void;
}

const PLAN_HASH = /^[0-9a-f]{64}$/;
const BUSY_TIMEOUT_MS = 10_000;

/** Create the file owner-only before SQLite does (its -wal/-shm files copy this mode). */
const createPrivate = (path: string): void => {
  closeSync(openSync(path, "a", 0o600));
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
};

const connect = (path: string): Database.Database => {
  try {
    createPrivate(path);
    const db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      db.pragma("foreign_keys = ON");
      migrate(db);
      return db;
    } catch (error) {
      db.close();
      throw error;
    }
  } catch (error) {
    if (error instanceof FleetplanError) throw error;
    throw new FleetplanError("ledger_error", `cannot open coordinator database ${path}: ${(error as Error).message}`, { cause: error });
  }
};

/** Open (creating and migrating as needed) the coordinator database at `path`. */
export const openCoordinatorDb = (path: string): CoordinatorDb => {
  const db = connect(path);
  const q = {
    insertServer: db.prepare(
      `INSERT INTO servers (host, node_key, node_key_id, metrics_url, ssh, grp, bootstrapped, added_at)
       VALUES (@host, @nodeKey, @nodeKeyId, @metricsUrl, @ssh, @group, @bootstrapped, @addedAt)`,
    ),
    hostExists: db.prepare("SELECT 1 FROM servers WHERE host = ?").pluck(),
    removeServer: db.prepare("DELETE FROM servers WHERE host = ?"),
    updateServer: db.prepare(
      `UPDATE servers SET node_key = @nodeKey, node_key_id = @nodeKeyId, metrics_url = @metricsUrl, ssh = @ssh, grp = @group,
       bootstrapped = @bootstrapped WHERE host = @host`,
    ),
    allServers: db.prepare("SELECT * FROM servers ORDER BY host"),
    setBootstrapped: db.prepare("UPDATE servers SET bootstrapped = ? WHERE host = ?"),
    lastId: db.prepare("SELECT last_id FROM issued WHERE host = ?").pluck(),
    upsertIssued: db.prepare(
      `INSERT INTO issued (host, last_id, issued_at) VALUES (?, ?, ?)
       ON CONFLICT (host) DO UPDATE SET last_id = excluded.last_id, issued_at = excluded.issued_at`,
    ),
    // Forward only: a slower concurrent push of an older id must not move the expectation back.
    upsertExpected: db.prepare(
      `INSERT INTO expected (host, id, plan_hash, set_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (host) DO UPDATE SET id = excluded.id, plan_hash = excluded.plan_hash, set_at = excluded.set_at
       WHERE excluded.id > expected.id`,
    ),
    expected: db.prepare("SELECT host, id, plan_hash, set_at FROM expected WHERE @host IS NULL OR host = @host ORDER BY host"),
    startPush: db.prepare("INSERT INTO pushes (started_at, store, dry_run, force, operator) VALUES (?, ?, ?, ?, ?)"),
    recordResult: db.prepare(
      `INSERT INTO results (push_id, host, id, plan_hash, outcome, reason, message, at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    finishPush: db.prepare("UPDATE pushes SET finished_at = ?, summary = ? WHERE push_id = ?"),
    upsertPutBase: db.prepare(
      `INSERT INTO put_revisions (host, epoch, revision) VALUES (?, ?, ?)
       ON CONFLICT (host) DO UPDATE SET epoch = excluded.epoch, revision = excluded.revision`,
    ),
    putBases: db.prepare("SELECT host, epoch, revision FROM put_revisions"),
    history: db.prepare(
      `SELECT r.push_id, r.at, r.host, r.id, r.plan_hash, r.outcome, r.reason, r.message, p.operator, p.store, p.dry_run
       FROM results r JOIN pushes p USING (push_id)
       WHERE @host IS NULL OR r.host = @host ORDER BY r.result_id DESC LIMIT @limit`,
    ),
  };

  const requireServer = (host: string): void => {
    if (q.hostExists.get(host) === undefined) throw new FleetplanError("not_found", `server ${host} is not in the inventory`);
  };

  const lastIssuedId = (host: string): number | null => (q.lastId.get(host) as number | undefined) ?? null;

  const addServers = db.transaction((rows: ServerRow[]) => {
    const seen = new Set<string>();
    const conflicts = new Set<string>();
    for (const r of rows) {
      if (seen.has(r.host) || q.hostExists.get(r.host) !== undefined) conflicts.add(r.host);
      seen.add(r.host);
    }
    if (conflicts.size > 0) {
      throw new FleetplanError("conflict", `already in the inventory (nothing added): ${[...conflicts].join(", ")}`);
    }
    for (const r of rows) q.insertServer.run({ ...r, bootstrapped: r.bootstrapped ? 1 : 0 });
  });

  const issueId = db.transaction((host: string, now: Date): number => {
    requireServer(host);
    const id = nextProvisioningId(now, lastIssuedId(host));
    q.upsertIssued.run(host, id, now.getTime());
    return id;
  });

  const reserveIds = db.transaction((hosts: string[], now: Date): Map<string, number> => {
    const unknown = hosts.filter((h) => q.hostExists.get(h) === undefined);
    if (unknown.length > 0) throw new FleetplanError("not_found", `not in the inventory: ${[...new Set(unknown)].join(", ")}`);
    const ids = new Map<string, number>();
    for (const host of hosts) {
      const id = nextProvisioningId(now, ids.get(host) ?? lastIssuedId(host));
      q.upsertIssued.run(host, id, now.getTime());
      ids.set(host, id);
    }
    return ids;
  });

  const checkHash = (planHash: string): void => {
    if (!PLAN_HASH.test(planHash)) throw new FleetplanError("invalid_argument", "plan hash must be 64 lowercase hex digits");
  };
  const insertResult = (pushId: number, r: ResultInput) =>
    q.recordResult.run(pushId, r.host, r.id, r.planHash, r.outcome, r.reason ?? null, r.message ?? null, r.at);

  const recordBatch = db.transaction((pushId: number, batch: { delivered: Delivered[]; results: ResultInput[] }) => {
    for (const d of batch.delivered) {
      checkHash(d.planHash);
      q.upsertExpected.run(d.host, d.id, d.planHash, d.at);
      if (d.put) q.upsertPutBase.run(d.host, d.put.epoch, d.put.revision);
    }
    for (const r of batch.results) insertResult(pushId, r);
  });

  return {
    addServers: (rows) => addServers.immediate(rows),
    removeServer: (host) => q.removeServer.run(host).changes > 0,
    updateServer: (row) => q.updateServer.run({ ...row, bootstrapped: row.bootstrapped ? 1 : 0 }).changes > 0,
    servers: (filter = {}) => {
      const rows = (q.allServers.all() as ServerRecord[]).map(toServer);
      if (filter.hosts !== undefined) {
        const known = new Set(rows.map((r) => r.host));
        const unknown = filter.hosts.filter((h) => !known.has(h));
        if (unknown.length > 0) throw new FleetplanError("not_found", `not in the inventory: ${[...new Set(unknown)].join(", ")}`);
      }
      const wanted = filter.hosts === undefined ? null : new Set(filter.hosts);
      return rows.filter((r) => (wanted === null || wanted.has(r.host)) && (filter.group === undefined || r.group === filter.group));
    },
    setBootstrapped: (host, value) => {
      if (q.setBootstrapped.run(value ? 1 : 0, host).changes === 0) requireServer(host);
    },
    // IMMEDIATE takes the write lock before reading last_id, so two coordinators never pick the same id.
    issueId: (host, now) => issueId.immediate(host, now),
    reserveIds: (hosts, now) => reserveIds.immediate(hosts, now),
    peekNextId: (host, now) => nextProvisioningId(now, lastIssuedId(host)),
    setExpected: (host, id, planHash, at) => {
      checkHash(planHash);
      q.upsertExpected.run(host, id, planHash, at);
    },
    expected: (host) =>
      new Map(
        (q.expected.all({ host: host ?? null }) as { host: string; id: number; plan_hash: string; set_at: number }[]).map((r) => [
          r.host,
          { id: r.id, planHash: r.plan_hash, issuedAt: r.set_at },
        ]),
      ),
    lastIssuedId,
    startPush: (p) => Number(q.startPush.run(p.at, p.store, p.dryRun ? 1 : 0, p.force ? 1 : 0, p.operator).lastInsertRowid),
    recordResult: (pushId, r) => void insertResult(pushId, r),
    finishPush: (pushId, at, summary) => {
      if (q.finishPush.run(at, JSON.stringify(summary ?? null), pushId).changes === 0) {
        throw new FleetplanError("not_found", `push ${pushId} does not exist`);
      }
    },
    recordBatch: (pushId, batch) => recordBatch.immediate(pushId, batch),
    putBases: () =>
      new Map(
        (q.putBases.all() as { host: string; epoch: string; revision: number }[]).map((r) => [
          r.host,
          { epoch: r.epoch, revision: r.revision },
        ]),
      ),
    history: (opts = {}) =>
      (q.history.all({ host: opts.host ?? null, limit: opts.limit ?? -1 }) as Record<string, unknown>[]).map(toHistory),
    sqlite: db,
    close: () => db.close(),
  };
};
