import type Database from "better-sqlite3";
import { FleetplanError } from "../shared/errors.ts";
import type { EnvelopeRow, RunRow, RunState, StepRecord } from "./ledger.ts";

// The ledger's SQL: migrations, the statements that read and write that schema, row mappers.

// Ordered migrations: entry i moves the schema from user_version i to i + 1. Never edit an
// applied entry; append a new one.
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE envelopes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         INTEGER,
    plan_hash  TEXT,
    signer_ids TEXT    NOT NULL DEFAULT '[]',
    target     TEXT,
    issued     INTEGER,
    expires    INTEGER,
    revision   INTEGER,
    source     TEXT    NOT NULL,
    result     TEXT    NOT NULL,
    seen_at    INTEGER NOT NULL,
    boot_time  INTEGER NOT NULL
  );
  CREATE INDEX envelopes_seen_at ON envelopes (seen_at);

  -- Totals by result that survive pruning, so envelope counters do not go down after a restart.
  CREATE TABLE envelope_counts (
    result TEXT PRIMARY KEY,
    count  INTEGER NOT NULL
  );

  CREATE TABLE high_water (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    id          INTEGER NOT NULL,
    plan_hash   TEXT    NOT NULL,
    accepted_at INTEGER NOT NULL
  );

  CREATE TABLE runs (
    run_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    envelope_seq INTEGER REFERENCES envelopes (seq),
    id           INTEGER NOT NULL,
    plan_hash    TEXT    NOT NULL,
    state        TEXT    NOT NULL
      CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'interrupted', 'superseded')),
    queued_at    INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    duration_ms  INTEGER,
    boot_time    INTEGER,
    failed_step  TEXT,
    error        TEXT
  );
  CREATE INDEX runs_state ON runs (state);
  CREATE INDEX runs_envelope ON runs (envelope_seq);

  CREATE TABLE steps (
    run_id      INTEGER NOT NULL REFERENCES runs (run_id),
    idx         INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    exit_code   INTEGER,
    signal      TEXT,
    timed_out   INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    PRIMARY KEY (run_id, idx)
  );
  `,
  `
  -- The one process that may accept and run envelopes with this ledger (daemon or apply).
  CREATE TABLE owner (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    pid         INTEGER NOT NULL,
    start_time  TEXT    NOT NULL,
    acquired_at INTEGER NOT NULL
  );
  `,
  `
  -- What the newest successful run wrote, per file, for drift checks (agent/drift.ts); replaced on each success.
  CREATE TABLE applied_files (
    path   TEXT    PRIMARY KEY,
    run_id INTEGER NOT NULL,
    sha256 TEXT    NOT NULL,
    size   INTEGER NOT NULL,
    mode   INTEGER NOT NULL,
    uid    INTEGER,
    gid    INTEGER
  );
  `,
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Bring the schema up to date, one transaction per migration so a crash leaves a known version. */
export const migrateLedger = (db: Database.Database, path: string): void => {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new FleetplanError(
      "ledger_error",
      `ledger ${path} has schema version ${current}, newer than this agent's ${SCHEMA_VERSION}; refusing to use it`,
    );
  }
  MIGRATIONS.slice(current).forEach((sql, i) => {
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${current + i + 1}`);
    }).immediate();
  });
};

/** A row as better-sqlite3 returns it, before mapping. */
export type Row = Record<string, unknown>;

/** Map a steps row. */
export const toStep = (r: Row): StepRecord => ({
  index: r.idx as number,
  name: r.name as string,
  exitCode: r.exit_code as number | null,
  signal: r.signal as string | null,
  timedOut: r.timed_out === 1,
  durationMs: r.duration_ms as number,
  startedAt: r.started_at as number,
});

/** Map an envelopes row. */
export const toEnvelope = (r: Row): EnvelopeRow => ({
  seq: r.seq as number,
  id: r.id as number | null,
  planHash: r.plan_hash as string | null,
  signerIds: JSON.parse(r.signer_ids as string) as string[],
  target: r.target as string | null,
  issued: r.issued as number | null,
  expires: r.expires as number | null,
  revision: r.revision as number | null,
  source: r.source as string,
  result: r.result as string,
  seenAt: r.seen_at as number,
  bootTime: r.boot_time as number,
});

/** Map a runs row, with its steps. */
export const toRun = (r: Row, steps: StepRecord[]): RunRow => ({
  runId: r.run_id as number,
  envelopeSeq: r.envelope_seq as number | null,
  id: r.id as number,
  planHash: r.plan_hash as string,
  state: r.state as RunState,
  queuedAt: r.queued_at as number,
  startedAt: r.started_at as number | null,
  finishedAt: r.finished_at as number | null,
  durationMs: r.duration_ms as number | null,
  bootTime: r.boot_time as number | null,
  failedStep: r.failed_step as string | null,
  error: r.error as string | null,
  steps,
});

const FINAL = "('succeeded', 'failed', 'interrupted')";
// Runs prune may delete: finished, not the newest success, and too old or beyond the newest maxRows.
const PRUNABLE_RUNS = `SELECT run_id FROM runs WHERE state NOT IN ('pending', 'running')
  AND run_id IS NOT (SELECT max(run_id) FROM runs WHERE state = 'succeeded')
  AND (coalesce(finished_at, queued_at) < @cutoff OR run_id NOT IN (SELECT run_id FROM runs ORDER BY run_id DESC LIMIT @maxRows))`;

/** Every statement the ledger runs, prepared once. */
export const prepareStatements = (db: Database.Database) => ({
  hwm: db.prepare("SELECT id, plan_hash FROM high_water WHERE singleton = 1"),
  setHwm: db.prepare(`INSERT INTO high_water (singleton, id, plan_hash, accepted_at) VALUES (1, @id, @planHash, @at)
    ON CONFLICT (singleton) DO UPDATE SET id = excluded.id, plan_hash = excluded.plan_hash, accepted_at = excluded.accepted_at`),
  insertEnvelope:
    db.prepare(`INSERT INTO envelopes (id, plan_hash, signer_ids, target, issued, expires, revision, source, result, seen_at, boot_time)
    VALUES (@id, @planHash, @signerIds, @target, @issued, @expires, @revision, @source, @result, @at, @bootTime)`),
  countEnvelope: db.prepare(`INSERT INTO envelope_counts (result, count) VALUES (?, 1)
    ON CONFLICT (result) DO UPDATE SET count = count + 1`),
  addCounts: db.prepare(`INSERT INTO envelope_counts (result, count) VALUES (?, ?)
    ON CONFLICT (result) DO UPDATE SET count = count + excluded.count`),
  insertRun: db.prepare(`INSERT INTO runs (envelope_seq, id, plan_hash, state, queued_at) VALUES (?, ?, ?, 'pending', ?)`),
  startRun: db.prepare(`UPDATE runs SET state = 'running', started_at = ? WHERE run_id = ? AND state = 'pending'`),
  otherPending: db.prepare(`SELECT run_id FROM runs WHERE state = 'pending' AND run_id != ? ORDER BY run_id`),
  supersede: db.prepare(`UPDATE runs SET state = 'superseded', finished_at = ? WHERE run_id = ?`),
  recordStep: db.prepare(`INSERT OR REPLACE INTO steps (run_id, idx, name, exit_code, signal, timed_out, duration_ms, started_at)
    VALUES (@runId, @index, @name, @exitCode, @signal, @timedOut, @durationMs, @startedAt)`),
  finishRun: db.prepare(`UPDATE runs SET state = @state, finished_at = @at, duration_ms = @durationMs, boot_time = @bootTime,
    failed_step = @failedStep, error = @error WHERE run_id = @runId AND state = 'running'`),
  unfinished: db.prepare(`SELECT * FROM runs WHERE state IN ('pending', 'running') ORDER BY run_id`),
  interrupt: db.prepare(`UPDATE runs SET state = 'interrupted', finished_at = ?, error = 'cut short by a restart' WHERE run_id = ?`),
  pending: db.prepare(`SELECT * FROM runs WHERE state = 'pending' ORDER BY run_id`),
  lastSuccess: db.prepare(`SELECT * FROM runs WHERE state = 'succeeded' ORDER BY run_id DESC LIMIT 1`),
  lastFinished: db.prepare(`SELECT * FROM runs WHERE state IN ${FINAL} ORDER BY finished_at DESC, run_id DESC LIMIT 1`),
  runs: db.prepare(`SELECT * FROM runs ORDER BY run_id DESC LIMIT ?`),
  steps: db.prepare(`SELECT * FROM steps WHERE run_id = ? ORDER BY idx`),
  envelopes: db.prepare(`SELECT * FROM envelopes ORDER BY seq DESC LIMIT ?`),
  counts: db.prepare(`SELECT result, count FROM envelope_counts`),
  owner: db.prepare("SELECT pid, start_time FROM owner WHERE singleton = 1"),
  setOwner: db.prepare(`INSERT INTO owner (singleton, pid, start_time, acquired_at) VALUES (1, @pid, @startTime, @at)
    ON CONFLICT (singleton) DO UPDATE SET pid = excluded.pid, start_time = excluded.start_time, acquired_at = excluded.acquired_at`),
  releaseOwner: db.prepare("DELETE FROM owner WHERE pid = @pid AND start_time = @startTime"),
  clearFiles: db.prepare("DELETE FROM applied_files"),
  insertFile: db.prepare(`INSERT OR REPLACE INTO applied_files (path, run_id, sha256, size, mode, uid, gid)
    VALUES (@path, @runId, @sha256, @size, @mode, @uid, @gid)`),
  files: db.prepare("SELECT path, sha256, size, mode, uid, gid FROM applied_files ORDER BY path"),
  pruneSteps: db.prepare(`DELETE FROM steps WHERE run_id IN (${PRUNABLE_RUNS})`),
  pruneRuns: db.prepare(`DELETE FROM runs WHERE run_id IN (${PRUNABLE_RUNS})`),
  pruneEnvelopes: db.prepare(`DELETE FROM envelopes
    WHERE seq NOT IN (SELECT envelope_seq FROM runs WHERE envelope_seq IS NOT NULL)
    AND (seen_at < @cutoff OR seq NOT IN (SELECT seq FROM envelopes ORDER BY seq DESC LIMIT @maxRows))`),
});
