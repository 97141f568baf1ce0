// Staged changes (two-person rule) in the coordinator database, on the same connection as
// CoordinatorDb: each change is one transaction. Tables: the `staged` migration in db-schema.ts.
import type Database from "better-sqlite3";
import { FleetplanError } from "../shared/errors.ts";
import { stagedName } from "./staging.ts";
import type { StagedChange, StagedEnvelope, StagedState } from "./staging.ts";

/** Schema step (appended to MIGRATIONS): staged changes and their sealed envelopes, one per host. */
export const stagingMigration = (db: Database.Database): void =>
  void db.exec(`
    CREATE TABLE staged (
      staged_id  INTEGER PRIMARY KEY AUTOINCREMENT,
      created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      operator   TEXT NOT NULL,
      trust      TEXT NOT NULL,
      signers    TEXT NOT NULL,
      state      TEXT NOT NULL CHECK (state IN ('staged', 'approved', 'discarded')),
      closed_at  INTEGER,
      rollout_id INTEGER REFERENCES rollouts (rollout_id)
    ) STRICT;
    CREATE TABLE staged_envelopes (
      staged_id INTEGER NOT NULL REFERENCES staged (staged_id),
      host      TEXT NOT NULL,
      id        INTEGER NOT NULL CHECK (id > 0),
      plan_hash TEXT NOT NULL,
      prev_id   INTEGER,
      prev_hash TEXT,
      via       TEXT NOT NULL CHECK (via IN ('store', 'ssh')),
      envelope  BLOB NOT NULL,
      PRIMARY KEY (staged_id, host)
    ) STRICT;
  `);

/** A new staged change as the stage step hands it over. */
export type NewStaged = Omit<StagedChange, "id" | "state" | "closedAt"> & { envelopes: StagedEnvelope[] };

const toChange = (r: Record<string, unknown>): StagedChange => ({
  id: r.staged_id as number,
  createdAt: r.created_at as number,
  expiresAt: r.expires_at as number,
  operator: r.operator as string,
  trust: r.trust as string,
  signers: JSON.parse(r.signers as string) as string[],
  state: r.state as StagedState,
  closedAt: r.closed_at as number | null,
  rolloutId: r.rollout_id as number | null,
});

const toEnvelope = (r: Record<string, unknown>): StagedEnvelope => ({
  host: r.host as string,
  id: r.id as number,
  planHash: r.plan_hash as string,
  prevId: r.prev_id as number | null,
  prevHash: r.prev_hash as string | null,
  via: r.via as "store" | "ssh",
  envelope: new Uint8Array(r.envelope as Buffer),
});

/** Staged-change queries over an open coordinator database (migrated by openCoordinatorDb). */
export const openStagingDb = (db: Database.Database) => {
  const q = {
    create: db.prepare(
      "INSERT INTO staged (created_at, expires_at, operator, trust, signers, rollout_id, state) VALUES (?, ?, ?, ?, ?, ?, 'staged')",
    ),
    addEnvelope: db.prepare(
      `INSERT INTO staged_envelopes (staged_id, host, id, plan_hash, prev_id, prev_hash, via, envelope)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    get: db.prepare("SELECT * FROM staged WHERE staged_id = ?"),
    list: db.prepare("SELECT * FROM staged WHERE state = 'staged' OR @all ORDER BY staged_id"),
    envelopes: db.prepare("SELECT * FROM staged_envelopes WHERE staged_id = ? ORDER BY host"),
    setEnvelope: db.prepare("UPDATE staged_envelopes SET envelope = ? WHERE staged_id = ? AND host = ?"),
    setSigners: db.prepare("UPDATE staged SET signers = ? WHERE staged_id = ?"),
    close: db.prepare("UPDATE staged SET state = ?, closed_at = ? WHERE staged_id = ? AND state = 'staged'"),
    discardRollout: db.prepare("UPDATE staged SET state = 'discarded', closed_at = ? WHERE rollout_id = ? AND state = 'staged'"),
  };

  const get = (id: number): StagedChange => {
    const row = q.get.get(id) as Record<string, unknown> | undefined;
    if (row === undefined) throw new FleetplanError("not_found", `no staged change ${stagedName(id)}; see \`fleetplan staged\``);
    return toChange(row);
  };

  const create = db.transaction((s: NewStaged): number => {
    const id = Number(q.create.run(s.createdAt, s.expiresAt, s.operator, s.trust, JSON.stringify(s.signers), s.rolloutId).lastInsertRowid);
    for (const e of s.envelopes) q.addEnvelope.run(id, e.host, e.id, e.planHash, e.prevId, e.prevHash, e.via, e.envelope);
    return id;
  });

  const cosign = db.transaction((id: number, envelopes: { host: string; envelope: Uint8Array }[], signers: string[]) => {
    for (const e of envelopes) q.setEnvelope.run(e.envelope, id, e.host);
    q.setSigners.run(JSON.stringify(signers), id);
  });

  return {
    create: (s: NewStaged): number => create.immediate(s),
    get,
    /** Changes still waiting (every one with `all`), oldest first. */
    list: (all = false): StagedChange[] => (q.list.all({ all: all ? 1 : 0 }) as Record<string, unknown>[]).map(toChange),
    envelopes: (id: number): StagedEnvelope[] => (q.envelopes.all(id) as Record<string, unknown>[]).map(toEnvelope),
    /** Keep envelopes with added signatures and the signers they now carry, in one transaction. */
    cosign: (id: number, envelopes: { host: string; envelope: Uint8Array }[], signers: string[]): void =>
      cosign.immediate(id, envelopes, signers),
    /** approved or discarded; false when it was no longer staged (another approver or discard came first). */
    close: (id: number, state: Exclude<StagedState, "staged">, at: number): boolean => q.close.run(state, at, id).changes > 0,
    /** An aborted rollout's change that still waits for approval is discarded with it. */
    discardRollout: (rolloutId: number, at: number): number => q.discardRollout.run(at, rolloutId).changes,
  };
};
