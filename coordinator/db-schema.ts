import type Database from "better-sqlite3";
import { FleetplanError } from "../shared/errors.ts";
import type { HistoryRow, ServerRow } from "./db.ts";
import { leaseMigration } from "./rollout/lease.ts";
import { rolloutMigration } from "./rollout/schema.ts";
import { stagingMigration } from "./staging-db.ts";
import { trustVersionsMigration } from "./trust-db.ts";

// The coordinator's schema, versioned by PRAGMA user_version: migration N (1-based) brings a
// database from version N-1 to N. Append new migrations; never edit a released one.

/** One schema step, run inside a transaction together with its user_version bump. */
export type Migration = (db: Database.Database) => void;

export const MIGRATIONS: readonly Migration[] = [
  (db) =>
    db.exec(`
      CREATE TABLE servers (
        host         TEXT PRIMARY KEY,
        node_key     TEXT NOT NULL,
        node_key_id  TEXT NOT NULL,
        metrics_url  TEXT,
        ssh          TEXT,
        grp          TEXT,
        bootstrapped INTEGER NOT NULL DEFAULT 1 CHECK (bootstrapped IN (0, 1)),
        added_at     INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX servers_grp ON servers (grp);

      -- The expected state: per target, the last id issued and its plan hash. Deliberately not
      -- tied to servers: removing and re-adding a host must never let its ids go down.
      CREATE TABLE issued (
        host      TEXT PRIMARY KEY,
        last_id   INTEGER NOT NULL CHECK (last_id > 0),
        plan_hash TEXT NOT NULL,
        issued_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE pushes (
        push_id     INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        store       TEXT NOT NULL,
        dry_run     INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
        force       INTEGER NOT NULL CHECK (force IN (0, 1)),
        operator    TEXT NOT NULL,
        summary     TEXT
      ) STRICT;

      CREATE TABLE results (
        result_id INTEGER PRIMARY KEY AUTOINCREMENT,
        push_id   INTEGER NOT NULL REFERENCES pushes (push_id),
        host      TEXT NOT NULL,
        id        INTEGER,
        plan_hash TEXT,
        outcome   TEXT NOT NULL,
        reason    TEXT,
        message   TEXT,
        at        INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX results_host ON results (host, result_id);
      CREATE INDEX results_push ON results (push_id);
    `),
  // The id counter and the expected state part ways: `issued` only reserves ids (a reserved id is
  // never reused, delivered or not), `expected` moves only once an envelope was delivered, so a
  // failed or interrupted put no longer leaves a target "pending" on a plan it never received.
  // Upgrades keep their state: every id issued so far was recorded as expected.
  (db) =>
    db.exec(`
      CREATE TABLE expected (
        host      TEXT PRIMARY KEY,
        id        INTEGER NOT NULL CHECK (id > 0),
        plan_hash TEXT NOT NULL,
        set_at    INTEGER NOT NULL
      ) STRICT;
      INSERT INTO expected (host, id, plan_hash, set_at) SELECT host, last_id, plan_hash, issued_at FROM issued;
      ALTER TABLE issued DROP COLUMN plan_hash;
    `),
  // Rollouts (waves, budget, gates, revert), the plans they push, and server tags.
  rolloutMigration,
  // The store revision of the last envelope this coordinator put per host, and the store instance it
  // was written to (`epoch`): the next put is a compare-and-set on it without reading the key first.
  (db) =>
    db.exec(`
      CREATE TABLE put_revisions (
        host     TEXT PRIMARY KEY,
        epoch    TEXT NOT NULL,
        revision INTEGER NOT NULL CHECK (revision > 0)
      ) STRICT;
    `),
  // Staged changes of the two-person rule (push --stage, approve): envelopes kept unpublished.
  stagingMigration,
  // Rollout leases: one coordinator process drives a rollout at a time (pid, start time, host name).
  leaseMigration,
  // Trust versions published or read (trust rotate, trust show): versions deleted from the store are published again.
  trustVersionsMigration,
];

const schemaVersion = (db: Database.Database): number => db.pragma("user_version", { simple: true }) as number;

/** Bring `db` to the newest schema; each step is all-or-nothing. Returns the final version. */
export const migrate = (db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number => {
  // The version is read inside each write transaction, so two processes opening a fresh file
  // at once cannot both run the same step.
  const step = db.transaction((): boolean => {
    const version = schemaVersion(db);
    if (version > migrations.length) {
      throw new FleetplanError(
        "invalid_config",
        `coordinator database has schema version ${version}, newer than this fleetplan knows (${migrations.length}); upgrade fleetplan`,
      );
    }
    if (version === migrations.length) return false;
    migrations[version]!(db);
    db.pragma(`user_version = ${version + 1}`);
    return true;
  });
  while (step.immediate());
  return schemaVersion(db);
};

/** A `servers` row as SQLite returns it. */
export interface ServerRecord {
  host: string;
  node_key: string;
  node_key_id: string;
  metrics_url: string | null;
  ssh: string | null;
  grp: string | null;
  bootstrapped: number;
  added_at: number;
}

/** A `servers` row as a ServerRow: 0/1 to boolean, grp to group. */
export const toServer = (r: ServerRecord): ServerRow => ({
  host: r.host,
  nodeKey: r.node_key,
  nodeKeyId: r.node_key_id,
  metricsUrl: r.metrics_url,
  ssh: r.ssh,
  group: r.grp,
  bootstrapped: r.bootstrapped === 1,
  addedAt: r.added_at,
});

/** A `results` row joined with its push, as a HistoryRow. */
export const toHistory = (r: Record<string, unknown>): HistoryRow => ({
  pushId: r.push_id as number,
  at: r.at as number,
  host: r.host as string,
  id: r.id as number | null,
  planHash: r.plan_hash as string | null,
  outcome: r.outcome as string,
  reason: r.reason as string | null,
  message: r.message as string | null,
  operator: r.operator as string,
  store: r.store as string,
  dryRun: r.dry_run === 1,
});
