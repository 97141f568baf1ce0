import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, test } from "node:test";
import Database from "better-sqlite3";
import { openLedger } from "../../agent/ledger.ts";
import type { Ledger, SeenEnvelope } from "../../agent/ledger.ts";
import { SCHEMA_VERSION } from "../../agent/ledger-schema.ts";
import { EnvelopeError, FleetplanError } from "../../shared/errors.ts";

import { tempDirs } from "../helpers/temp.ts";
const ROOT = resolve(import.meta.dirname, "../..");
const tempDir = tempDirs(tmpdir(), "fleetplan-ledger-");

const seen = (id: number, planHash = `h${id}`, at = 1_000 + id): SeenEnvelope => ({
  id,
  planHash,
  signerIds: ["0011223344556677"],
  target: "web1",
  issued: at - 10,
  expires: at + 60_000,
  revision: id,
  source: "nats",
  at,
  bootTime: 1_700_000_000,
});

const rowCounts = (path: string): Record<string, number> => {
  const db = new Database(path, { readonly: true });
  try {
    return Object.fromEntries(
      ["envelopes", "envelope_counts", "high_water", "runs", "steps"].map((t) => [
        t,
        (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n,
      ]),
    );
  } finally {
    db.close();
  }
};

const withLedger = (fn: (ledger: Ledger, path: string) => void, path = join(tempDir(), "ledger.db")): void => {
  const ledger = openLedger(path);
  try {
    fn(ledger, path);
  } finally {
    ledger.close();
  }
};

const assertLedgerError = (fn: () => unknown, path: string, code: string): void =>
  assert.throws(
    fn,
    (e: unknown) => e instanceof FleetplanError && e.reason === "ledger_error" && e.message.includes(path) && e.message.includes(code),
  );

// A second process takes the write lock, reports it, and holds it for holdMs.
const holdWriteLock = async (path: string, holdMs: number): Promise<{ exited: Promise<number | null> }> => {
  const script = `const db = new (require("better-sqlite3"))(process.argv[1]); db.exec("BEGIN IMMEDIATE"); console.log("locked");
    setTimeout(() => { db.exec("COMMIT"); db.close(); }, ${holdMs});`;
  const child = spawn(process.execPath, ["-e", script, path], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<number | null>((done) => child.on("exit", done));
  await new Promise<void>((ready, fail) => {
    child.stdout.on("data", (c: Buffer) => c.toString().includes("locked") && ready());
    child.on("exit", () => fail(new Error("lock holder exited early")));
  });
  return { exited };
};

describe("ledger", () => {
  test("migrates an empty file: WAL, schema version, 0600 file", () => {
    withLedger((ledger, path) => {
      assert.deepEqual(ledger.highWaterMark(), { id: 0, planHash: null });
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const db = new Database(path, { readonly: true });
      assert.equal(db.pragma("user_version", { simple: true }), SCHEMA_VERSION);
      assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
      db.close();
    });
  });

  test("reopening keeps data and user_version", () => {
    const path = join(tempDir(), "ledger.db");
    withLedger((ledger) => {
      ledger.accept(seen(5));
      ledger.recordSeen({ ...seen(3), reason: "stale" });
    }, path);
    withLedger((ledger) => {
      assert.deepEqual(ledger.highWaterMark(), { id: 5, planHash: "h5" });
      assert.deepEqual(ledger.counts(), { accepted: 1, stale: 1 });
      assert.deepEqual(
        ledger.envelopes(10).map((e) => [e.id, e.result, e.signerIds]),
        [
          [3, "stale", ["0011223344556677"]],
          [5, "accepted", ["0011223344556677"]],
        ],
      );
      assert.deepEqual(
        ledger.pendingRuns().map((r) => r.id),
        [5],
      );
    }, path);
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma("user_version", { simple: true }), SCHEMA_VERSION);
    db.close();
  });

  test("a ledger from a newer schema is refused", () => {
    const path = join(tempDir(), "ledger.db");
    const db = new Database(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    assertLedgerError(() => openLedger(path), path, "newer");
  });

  test("accept raises the high-water mark and queues a pending run", () => {
    withLedger((ledger) => {
      const first = ledger.accept(seen(10));
      const second = ledger.accept(seen(11));
      assert.deepEqual(ledger.highWaterMark(), { id: 11, planHash: "h11" });
      assert.deepEqual(
        ledger.pendingRuns().map((r) => [r.runId, r.id, r.state]),
        [
          [first, 10, "pending"],
          [second, 11, "pending"],
        ],
      );
    });
  });

  test("accept of a lower id throws stale and changes nothing", () => {
    withLedger((ledger, path) => {
      ledger.accept(seen(10));
      const before = rowCounts(path);
      assert.throws(
        () => ledger.accept(seen(9)),
        (e: unknown) => e instanceof EnvelopeError && e.reason === "stale" && e.id === 9,
      );
      assert.throws(
        () => ledger.accept(seen(10, "other")),
        (e: unknown) => e instanceof EnvelopeError && e.reason === "stale",
      );
      assert.deepEqual(rowCounts(path), before);
      assert.deepEqual(ledger.highWaterMark(), { id: 10, planHash: "h10" });
    });
  });

  test("accept of the same id and hash throws duplicate and changes nothing", () => {
    withLedger((ledger, path) => {
      ledger.accept(seen(10));
      const before = rowCounts(path);
      assert.throws(
        () => ledger.accept(seen(10)),
        (e: unknown) => e instanceof EnvelopeError && e.reason === "duplicate",
      );
      assert.deepEqual(rowCounts(path), before);
    });
  });

  test("recordSeen never touches the high-water mark", () => {
    withLedger((ledger) => {
      ledger.recordSeen({ ...seen(99), reason: "bad_signature" });
      assert.deepEqual(ledger.highWaterMark(), { id: 0, planHash: null });
      assert.deepEqual(ledger.pendingRuns(), []);
    });
  });

  test("startRun supersedes the other pending runs; finishRun and recordStep are kept", () => {
    withLedger((ledger) => {
      const older = [ledger.accept(seen(1)), ledger.accept(seen(2))];
      const newest = ledger.accept(seen(3));
      assert.deepEqual(ledger.startRun(newest, 2_000), older);
      ledger.recordStep(newest, { index: 0, name: "setup", exitCode: 0, signal: null, timedOut: false, durationMs: 12, startedAt: 2_001 });
      ledger.finishRun(newest, { state: "succeeded", at: 2_100, durationMs: 100, bootTime: 1_700_000_000 });
      assert.deepEqual(
        ledger.runs(10).map((r) => [r.id, r.state]),
        [
          [3, "succeeded"],
          [2, "superseded"],
          [1, "superseded"],
        ],
      );
      assert.deepEqual(ledger.lastSuccess()?.steps, [
        { index: 0, name: "setup", exitCode: 0, signal: null, timedOut: false, durationMs: 12, startedAt: 2_001 },
      ]);
      assert.equal(ledger.lastFinished()?.runId, newest);
      assert.throws(
        () => ledger.startRun(older[0] as number, 2_200),
        (e: unknown) => e instanceof FleetplanError && e.reason === "conflict",
      );
    });
  });

  test("a run cut short by a crash is recovered as interrupted, hwm unchanged", () => {
    const path = join(tempDir(), "ledger.db");
    const crashed = openLedger(path);
    const runId = crashed.accept(seen(7));
    crashed.startRun(runId, 2_000);
    crashed.close();
    withLedger((ledger) => {
      const recovered = ledger.recoverInterrupted(3_000);
      assert.deepEqual(
        recovered.map((r) => [r.runId, r.state, r.finishedAt]),
        [[runId, "interrupted", 3_000]],
      );
      assert.equal(ledger.runs(1)[0]?.state, "interrupted");
      assert.deepEqual(ledger.highWaterMark(), { id: 7, planHash: "h7" });
      assert.deepEqual(ledger.pendingRuns(), []);
      assert.throws(
        () => ledger.accept(seen(7)),
        (e: unknown) => e instanceof EnvelopeError && e.reason === "duplicate",
      );
    }, path);
  });

  test("prune keeps the high-water mark, the newest success and unfinished runs", () => {
    withLedger((ledger, path) => {
      const success = ledger.accept(seen(1));
      ledger.startRun(success, 1_010);
      ledger.recordStep(success, { index: 0, name: "s", exitCode: 0, signal: null, timedOut: false, durationMs: 1, startedAt: 1_010 });
      ledger.finishRun(success, { state: "succeeded", at: 1_020, durationMs: 10, bootTime: 1 });
      for (let id = 2; id <= 5; id++) {
        const run = ledger.accept(seen(id));
        ledger.startRun(run, 1_000 + id);
        ledger.finishRun(run, { state: "failed", at: 1_000 + id, durationMs: 1, bootTime: 1, failedStep: "s", error: "exit 1" });
      }
      for (let i = 0; i < 5; i++) ledger.recordSeen({ ...seen(1), reason: "duplicate" });
      const pending = ledger.accept(seen(6));
      const removed = ledger.prune({ maxAgeMs: 1, maxRows: 0, now: 1_000_000 });
      assert.equal(removed, 4 + 4 + 5);
      assert.deepEqual(
        ledger.runs(10).map((r) => [r.runId, r.state]),
        [
          [pending, "pending"],
          [success, "succeeded"],
        ],
      );
      assert.equal(ledger.lastSuccess()?.steps.length, 1);
      assert.deepEqual(
        ledger.envelopes(10).map((e) => e.id),
        [6, 1],
      );
      assert.deepEqual(ledger.highWaterMark(), { id: 6, planHash: "h6" });
      assert.deepEqual(ledger.counts(), { accepted: 6, duplicate: 5 });
      assert.equal(rowCounts(path).high_water, 1);
    });
  });

  test("prune by count keeps the newest rows", () => {
    withLedger((ledger) => {
      for (let i = 0; i < 6; i++) ledger.recordSeen({ ...seen(i + 1), reason: "expired" });
      assert.equal(ledger.prune({ maxAgeMs: 1e12, maxRows: 2, now: 10_000 }), 4);
      assert.deepEqual(
        ledger.envelopes(10).map((e) => e.id),
        [6, 5],
      );
    });
  });

  test("accept waits for another process's write lock (busy timeout)", async () => {
    const path = join(tempDir(), "ledger.db");
    const ledger = openLedger(path);
    try {
      const { exited } = await holdWriteLock(path, 1_000);
      const started = Date.now();
      ledger.accept(seen(1));
      assert.ok(Date.now() - started >= 500, "accept returned before the lock was released");
      assert.deepEqual(ledger.highWaterMark(), { id: 1, planHash: "h1" });
      assert.equal(await exited, 0);
    } finally {
      ledger.close();
    }
  });

  test("a lock held beyond the busy timeout is a ledger_error and changes nothing", async () => {
    const path = join(tempDir(), "ledger.db");
    const ledger = openLedger(path, { busyTimeoutMs: 50 });
    try {
      const { exited } = await holdWriteLock(path, 1_000);
      assertLedgerError(() => ledger.accept(seen(1)), path, "SQLITE_BUSY");
      assert.equal(await exited, 0);
      assert.deepEqual(ledger.highWaterMark(), { id: 0, planHash: null });
      assert.equal(rowCounts(path).envelopes, 0);
    } finally {
      ledger.close();
    }
  });

  test("a missing state directory is a ledger_error", () => {
    const path = join(tempDir(), "missing", "ledger.db");
    assertLedgerError(() => openLedger(path), path, "ENOENT");
  });

  test("a read-only ledger file and directory is a ledger_error, not a crash", async () => {
    const dir = tempDir();
    const path = join(dir, "ledger.db");
    withLedger((ledger) => void ledger.accept(seen(1)), path);
    // root ignores permission bits, so the attempt runs as nobody when the tests run as root.
    const probe = join(dir, "probe.mts");
    writeFileSync(
      probe,
      `import { openLedger } from ${JSON.stringify(join(ROOT, "agent/ledger.ts"))};
      try { openLedger(process.argv[2]); console.log(JSON.stringify({ opened: true })); }
      catch (e) { console.log(JSON.stringify({ name: e.name, reason: e.reason, message: e.message })); }`,
    );
    chmodSync(path, 0o444);
    chmodSync(dir, 0o555);
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const child = spawn(process.execPath, ["--import", "tsx", probe, path], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, HOME: dir },
      ...asNobody,
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((done) => child.on("exit", done));
    chmodSync(dir, 0o755);
    assert.equal(code, 0);
    const result = JSON.parse(out) as { name: string; reason: string; message: string };
    assert.equal(result.reason, "ledger_error");
    assert.ok(result.message.includes(path) && result.message.includes("SQLITE_READONLY"), result.message);
    withLedger((ledger) => assert.deepEqual(ledger.highWaterMark(), { id: 1, planHash: "h1" }), path);
  });
});
