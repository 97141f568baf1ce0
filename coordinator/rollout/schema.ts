import type Database from "better-sqlite3";

// The rollout tables and server tags (appended to MIGRATIONS in db-schema.ts). Plans are kept
// by content (`plan_bodies`, normalised plan JSON) so `rollout resume` needs no plan files, and
// `plan_known` maps a host's bound plan hash (what `expected` holds) back to its plan, so a
// revert can push a host's previous plan again.

/** Schema step: rollouts, their targets, plan bodies, host → plan hash → body, server tags. */
export const rolloutMigration = (db: Database.Database): void =>
  void db.exec(`
    CREATE TABLE plan_bodies (
      body_hash TEXT PRIMARY KEY,
      source    TEXT NOT NULL,
      plan      TEXT NOT NULL
    ) STRICT;
    CREATE TABLE plan_known (
      host      TEXT NOT NULL,
      plan_hash TEXT NOT NULL,
      body_hash TEXT NOT NULL REFERENCES plan_bodies (body_hash),
      at        INTEGER NOT NULL,
      PRIMARY KEY (host, plan_hash)
    ) STRICT;
    CREATE TABLE rollouts (
      rollout_id INTEGER PRIMARY KEY AUTOINCREMENT,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      operator   TEXT NOT NULL,
      state      TEXT NOT NULL CHECK (state IN ('running', 'paused', 'completed', 'aborted', 'reverted')),
      wave       INTEGER NOT NULL DEFAULT 0,
      ends       TEXT NOT NULL,
      options    TEXT NOT NULL,
      reason     TEXT,
      revert     TEXT
    ) STRICT;
    CREATE TABLE rollout_targets (
      rollout_id     INTEGER NOT NULL REFERENCES rollouts (rollout_id),
      host           TEXT NOT NULL,
      position       INTEGER NOT NULL,
      body_hash      TEXT NOT NULL REFERENCES plan_bodies (body_hash),
      prev_id        INTEGER,
      prev_hash      TEXT,
      prev_body      TEXT REFERENCES plan_bodies (body_hash),
      id             INTEGER,
      plan_hash      TEXT,
      outcome        TEXT NOT NULL DEFAULT 'pending',
      reason         TEXT,
      revert_id      INTEGER,
      revert_outcome TEXT,
      PRIMARY KEY (rollout_id, host)
    ) STRICT;
    CREATE TABLE server_tags (
      host  TEXT NOT NULL,
      key   TEXT NOT NULL,
      value TEXT NOT NULL,
      PRIMARY KEY (host, key)
    ) STRICT;
  `);
