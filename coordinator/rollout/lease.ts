import { processStartTime } from "../../shared/process-start.ts";
import { hostname } from "node:os";
import type Database from "better-sqlite3";
import { FleetplanError } from "../../shared/errors.ts";

// One driver per rollout: `rollout resume 7` in two terminals, or a resume while the original
// push still runs, would push the same waves twice and race on the rollout's rows. The driver
// holds a lease row (pid, process start time, host name), taken in a transaction and released
// at the end; a lease whose process is gone (or whose pid now belongs to a later process) is
// taken over, so a coordinator killed with -9 never blocks a rollout.

/** Who holds (or wants) a rollout: the process, told apart from a later one with the same pid by its start time. */
export interface LeaseHolder {
  pid: number;
  startTime: string;
  host: string;
}

/** Schema step: the rollout leases (appended to MIGRATIONS in db-schema.ts). */
export const leaseMigration = (db: Database.Database): void =>
  void db.exec(`
    CREATE TABLE rollout_leases (
      rollout_id INTEGER PRIMARY KEY REFERENCES rollouts (rollout_id),
      pid        INTEGER NOT NULL,
      start_time TEXT NOT NULL,
      host       TEXT NOT NULL,
      taken_at   INTEGER NOT NULL
    ) STRICT;
  `);

/** This coordinator process as a lease holder. */
export const selfHolder = (): LeaseHolder => ({
  pid: process.pid,
  startTime: processStartTime(process.pid) ?? "unknown",
  host: hostname(),
});

/** May `self` take a lease `held` by another? Pure: `startTimeOf` reads /proc (tests give their own). */
export const leaseDecision = (
  held: LeaseHolder | undefined,
  self: LeaseHolder,
  startTimeOf: (pid: number) => string | null,
): "free" | "own" | "stale" | "busy" => {
  if (held === undefined) return "free";
  if (held.host !== self.host) return "busy";
  if (held.pid === self.pid && held.startTime === self.startTime) return "own";
  return startTimeOf(held.pid) === held.startTime ? "busy" : "stale";
};

/** Refusal for a rollout driven by another live process, naming it and the fix. */
const busyError = (rolloutId: number, held: LeaseHolder & { takenAt: number }, self: LeaseHolder) => {
  const since = new Date(held.takenAt).toISOString();
  const where = held.host === self.host ? "" : ` on host ${held.host} (its liveness cannot be checked from ${self.host})`;
  return new FleetplanError(
    "rollout_busy",
    `rollout ${rolloutId} is being driven by pid ${held.pid}${where} since ${since}: wait for it to finish ` +
      `(\`fleetplan rollout show ${rolloutId}\`), or stop that process (kill ${held.pid}) and run this again`,
  );
};

/**
 * Take rollout `rolloutId`'s lease for `self` (free, own, or held by a gone process) in one
 * immediate transaction; throws `rollout_busy` naming the live holder. Returns the release.
 */
export const takeLease = (
  db: Database.Database,
  rolloutId: number,
  self: LeaseHolder = selfHolder(),
  startTimeOf: (pid: number) => string | null = processStartTime,
): (() => void) => {
  const take = db.transaction(() => {
    const row = db
      .prepare("SELECT pid, start_time AS startTime, host, taken_at AS takenAt FROM rollout_leases WHERE rollout_id = ?")
      .get(rolloutId) as (LeaseHolder & { takenAt: number }) | undefined;
    if (leaseDecision(row, self, startTimeOf) === "busy") throw busyError(rolloutId, row!, self);
    db.prepare(
      `INSERT INTO rollout_leases (rollout_id, pid, start_time, host, taken_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (rollout_id) DO UPDATE SET pid = excluded.pid, start_time = excluded.start_time,
       host = excluded.host, taken_at = excluded.taken_at`,
    ).run(rolloutId, self.pid, self.startTime, self.host, Date.now());
  });
  take.immediate();
  return () =>
    void db
      .prepare("DELETE FROM rollout_leases WHERE rollout_id = ? AND pid = ? AND start_time = ? AND host = ?")
      .run(rolloutId, self.pid, self.startTime, self.host);
};
