// The rollout lease, against a real coordinator database: taken in a transaction, refused with
// rollout_busy naming a live holder's pid, taken over from a gone process (pid not alive, or its
// start time differs: a later process with the same pid), released only by its own holder.
// Two real coordinator processes: e2e-lease-revert.test.ts.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openCoordinatorDb } from "../../../coordinator/db.ts";
import type { CoordinatorDb } from "../../../coordinator/db.ts";
import { leaseDecision, selfHolder, takeLease } from "../../../coordinator/rollout/lease.ts";
import { processStartTime } from "../../../shared/process-start.ts";
import type { LeaseHolder } from "../../../coordinator/rollout/lease.ts";

const GONE_PID = 99_999_999;

describe("rollout lease", { timeout: 10_000 }, () => {
  let dir: string;
  let db: CoordinatorDb;
  const parent = (): LeaseHolder => ({ pid: process.ppid, startTime: processStartTime(process.ppid)!, host: hostname() });
  const holder = (): LeaseHolder | undefined =>
    db.sqlite.prepare("SELECT pid, start_time AS startTime, host FROM rollout_leases WHERE rollout_id = 1").get() as
      | LeaseHolder
      | undefined;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "fleetplan-lease-"));
    db = openCoordinatorDb(join(dir, "fleetplan.db"));
    db.sqlite
      .prepare(
        "INSERT INTO rollouts (created_at, updated_at, operator, state, wave, ends, options) VALUES (0, 0, 'ops', 'running', 0, '[1]', '{}')",
      )
      .run();
  });
  after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("decides free, own, stale (gone or pid reused) and busy (alive, or on another machine)", () => {
    const self = selfHolder();
    const alive = (pid: number) => (pid === 42 ? "100" : null);
    assert.equal(leaseDecision(undefined, self, alive), "free");
    assert.equal(leaseDecision(self, self, alive), "own");
    assert.equal(leaseDecision({ pid: 42, startTime: "100", host: self.host }, self, alive), "busy");
    assert.equal(leaseDecision({ pid: 42, startTime: "99", host: self.host }, self, alive), "stale");
    assert.equal(leaseDecision({ pid: 43, startTime: "100", host: self.host }, self, alive), "stale");
    assert.equal(leaseDecision({ pid: 43, startTime: "100", host: "elsewhere" }, self, alive), "busy");
  });

  it("a live holder refuses with rollout_busy naming its pid, and keeps the lease", () => {
    const release = takeLease(db.sqlite, 1, parent());
    assert.throws(
      () => takeLease(db.sqlite, 1),
      (e: Error & { reason?: string }) =>
        e.reason === "rollout_busy" &&
        new RegExp(`rollout 1 is being driven by pid ${process.ppid} since .*kill ${process.ppid}`).test(e.message),
    );
    assert.equal(holder()!.pid, process.ppid);
    release();
    assert.equal(holder(), undefined);
  });

  it("a lease of a gone process, or of a pid now used by a later process, is taken over", () => {
    takeLease(db.sqlite, 1, { pid: GONE_PID, startTime: "1", host: hostname() });
    const mine = takeLease(db.sqlite, 1);
    assert.deepEqual(holder(), selfHolder());
    mine();
    takeLease(db.sqlite, 1, { ...selfHolder(), pid: process.ppid, startTime: "not-its-start-time" });
    takeLease(db.sqlite, 1)();
    assert.equal(holder(), undefined);
  });

  it("the release of a holder whose lease was taken over leaves the new holder's lease in place", () => {
    const gone = takeLease(db.sqlite, 1, { pid: GONE_PID, startTime: "1", host: hostname() });
    const mine = takeLease(db.sqlite, 1);
    gone();
    assert.deepEqual(holder(), selfHolder());
    mine();
    assert.equal(holder(), undefined);
  });
});
