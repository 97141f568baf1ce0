// The coordinator database: schema migrations, all-or-nothing inventory, monotonic ids, history.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, beforeEach, describe, it } from "node:test";
import Database from "better-sqlite3";
import { openCoordinatorDb } from "../../coordinator/db.ts";
import type { CoordinatorDb, ServerRow } from "../../coordinator/db.ts";
import { migrate, MIGRATIONS } from "../../coordinator/db-schema.ts";
import { FleetplanError } from "../../shared/errors.ts";

const HASH_A = "a".repeat(64);
const HASH_B = "b".repeat(64);
const T0 = new Date("2025-03-07T09:05:01Z");

const server = (host: string, extra: Partial<ServerRow> = {}): ServerRow => ({
  host,
  nodeKey: `fleetplan-node-x25519 ${"A".repeat(43)}= 0011223344556677`,
  nodeKeyId: "0011223344556677",
  metricsUrl: `http://${host}:9464/metrics`,
  ssh: null,
  group: null,
  bootstrapped: true,
  addedAt: 1_700_000_000_000,
  ...extra,
});

const throwsReason = (fn: () => unknown, reason: string, pattern?: RegExp) =>
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FleetplanError, `expected FleetplanError, got ${String(e)}`);
    assert.equal(e.reason, reason);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });

let dir: string;
let path: string;
let db: CoordinatorDb;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "fleetplan-db-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
beforeEach(() => {
  path = join(dir, `c${n++}.db`);
  db = openCoordinatorDb(path);
});
const reopen = () => {
  db.close();
  db = openCoordinatorDb(path);
};

describe("opening", () => {
  it("creates an owner-only WAL database at the newest schema version", () => {
    db.addServers([server("web-1")]);
    db.close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(`${path}-wal`, { throwIfNoEntry: false }) === undefined || (statSync(`${path}-wal`).mode & 0o077) === 0, true);
    const raw = new Database(path, { readonly: true });
    assert.equal(raw.pragma("user_version", { simple: true }), MIGRATIONS.length);
    assert.equal(raw.pragma("journal_mode", { simple: true }), "wal");
    raw.close();
    db = openCoordinatorDb(path);
    assert.deepEqual(
      db.servers().map((s) => s.host),
      ["web-1"],
    );
  });

  it("refuses a database from a newer fleetplan and leaves it alone", () => {
    db.close();
    const raw = new Database(path);
    raw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    raw.close();
    throwsReason(() => openCoordinatorDb(path), "invalid_config", /newer than this fleetplan knows/);
    const check = new Database(path, { readonly: true });
    assert.equal(check.pragma("user_version", { simple: true }), MIGRATIONS.length + 1);
    check.close();
    db = openCoordinatorDb(join(dir, `c${n++}.db`));
  });

  it("refuses a file that is not a database", () => {
    const junk = join(dir, "junk.db");
    writeFileSync(junk, "this is not sqlite, just some text that is long enough to have a header".repeat(10), { mode: 0o600 });
    throwsReason(() => openCoordinatorDb(junk), "ledger_error", /junk\.db/);
  });

  it("tightens a database file others could read", () => {
    db.close();
    const loose = join(dir, "loose.db");
    writeFileSync(loose, "", { mode: 0o644 });
    openCoordinatorDb(loose).close();
    assert.equal(statSync(loose).mode & 0o777, 0o600);
    db = openCoordinatorDb(path);
  });
});

describe("migrate", () => {
  it("applies each step once, and a failing step leaves the previous version intact", () => {
    const raw = new Database(":memory:");
    const steps = [
      (d: Database.Database) => d.exec("CREATE TABLE one (x INTEGER)"),
      (d: Database.Database) => {
        d.exec("CREATE TABLE two (x INTEGER)");
        throw new Error("boom");
      },
    ];
    assert.throws(() => migrate(raw, steps), /boom/);
    assert.equal(raw.pragma("user_version", { simple: true }), 1);
    const tables = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
    assert.deepEqual(tables, ["one"]);
    assert.equal(migrate(raw, steps.slice(0, 1)), 1);
    raw.close();
  });
});

describe("inventory", () => {
  it("adds, filters by host and group, and sorts by host", () => {
    db.addServers([
      server("web-2", { group: "web" }),
      server("db-1", { group: "db", bootstrapped: false, ssh: "root@db-1:22" }),
      server("web-1", { group: "web" }),
    ]);
    assert.deepEqual(
      db.servers().map((s) => s.host),
      ["db-1", "web-1", "web-2"],
    );
    assert.deepEqual(
      db.servers({ group: "web" }).map((s) => s.host),
      ["web-1", "web-2"],
    );
    assert.deepEqual(
      db.servers({ hosts: ["web-2", "db-1"] }).map((s) => s.host),
      ["db-1", "web-2"],
    );
    assert.deepEqual(db.servers({ hosts: ["db-1"] })[0], server("db-1", { group: "db", bootstrapped: false, ssh: "root@db-1:22" }));
  });

  it("names every unknown host asked for", () => {
    db.addServers([server("web-1")]);
    throwsReason(() => db.servers({ hosts: ["web-1", "nope-1", "nope-2"] }), "not_found", /nope-1, nope-2/);
  });

  it("adds nothing when one host of the batch is already there", () => {
    db.addServers([server("web-1")]);
    throwsReason(() => db.addServers([server("web-0"), server("web-1"), server("web-3")]), "conflict", /web-1/);
    assert.deepEqual(
      db.servers().map((s) => s.host),
      ["web-1"],
    );
  });

  it("adds nothing when the batch names a host twice", () => {
    throwsReason(() => db.addServers([server("web-1"), server("web-2"), server("web-1")]), "conflict", /: web-1$/);
    assert.deepEqual(db.servers(), []);
  });

  it("removes and flips bootstrapped, refusing unknown hosts", () => {
    db.addServers([server("web-1", { bootstrapped: false })]);
    db.setBootstrapped("web-1", true);
    assert.equal(db.servers()[0]!.bootstrapped, true);
    throwsReason(() => db.setBootstrapped("nope", true), "not_found", /nope/);
    assert.equal(db.removeServer("web-1"), true);
    assert.equal(db.removeServer("web-1"), false);
    assert.deepEqual(db.servers(), []);
  });
});

describe("issueId", () => {
  beforeEach(() => db.addServers([server("web-1"), server("web-2")]));

  it("issues the timestamp and keeps targets apart, expecting nothing until setExpected", () => {
    assert.equal(db.lastIssuedId("web-1"), null);
    assert.equal(db.issueId("web-1", T0), 20250307090501);
    assert.equal(db.issueId("web-2", T0), 20250307090501);
    assert.equal(db.lastIssuedId("web-1"), 20250307090501);
    // Reserving an id is not delivering it: a failed put must leave the expected state alone.
    assert.equal(db.expected().size, 0);
    db.setExpected("web-1", 20250307090501, HASH_A, T0.getTime() + 5);
    assert.deepEqual(db.expected("web-1"), new Map([["web-1", { id: 20250307090501, planHash: HASH_A, issuedAt: T0.getTime() + 5 }]]));
    assert.deepEqual([...db.expected().keys()], ["web-1"]);
  });

  it("strictly increases within one second, across reopen, and when the clock goes back", () => {
    const ids = [db.issueId("web-1", T0), db.issueId("web-1", T0)];
    reopen();
    ids.push(db.issueId("web-1", new Date("2020-01-01T00:00:00Z")));
    ids.push(db.issueId("web-1", new Date("2025-03-07T09:05:02Z")));
    assert.deepEqual(ids, [20250307090501, 20250307090502, 20250307090503, 20250307090504]);
  });

  it("never lowers ids for a host removed and added again", () => {
    const first = db.issueId("web-1", T0);
    db.removeServer("web-1");
    db.addServers([server("web-1")]);
    assert.equal(db.issueId("web-1", new Date("2020-01-01T00:00:00Z")), first + 1);
  });

  it("peekNextId computes without writing", () => {
    const issued = db.issueId("web-1", T0);
    assert.equal(db.peekNextId("web-1", T0), issued + 1);
    assert.equal(db.peekNextId("web-1", T0), issued + 1);
    assert.equal(db.lastIssuedId("web-1"), issued);
    assert.equal(db.peekNextId("web-2", T0), 20250307090501);
  });

  it("setExpected only moves forward, so a slower push of an older id cannot move it back", () => {
    const [older, newer] = [db.issueId("web-1", T0), db.issueId("web-1", T0)];
    db.setExpected("web-1", newer, HASH_B, 2);
    db.setExpected("web-1", older, HASH_A, 3);
    assert.deepEqual(db.expected("web-1").get("web-1"), { id: newer, planHash: HASH_B, issuedAt: 2 });
  });

  it("refuses unknown hosts and malformed hashes, recording nothing", () => {
    throwsReason(() => db.issueId("nope", T0), "not_found", /nope/);
    throwsReason(() => db.setExpected("web-1", 1, "ABC", 1), "invalid_argument", /plan hash/);
    assert.equal(db.lastIssuedId("nope"), null);
    assert.equal(db.expected().size, 0);
  });

  it("an upgraded database keeps what version 1 recorded as expected, and its id counter", () => {
    db.close();
    const upgraded = join(dir, `v1-${n++}.db`);
    const raw = new Database(upgraded);
    migrate(raw, MIGRATIONS.slice(0, 1));
    raw.prepare("INSERT INTO issued (host, last_id, plan_hash, issued_at) VALUES (?, ?, ?, ?)").run("web-1", 20250307090501, HASH_A, 1234);
    raw.close();
    db = openCoordinatorDb(upgraded);
    assert.deepEqual(db.expected(), new Map([["web-1", { id: 20250307090501, planHash: HASH_A, issuedAt: 1234 }]]));
    db.addServers([server("web-1")]);
    assert.equal(db.issueId("web-1", T0), 20250307090502);
  });

  it("gives distinct ids to two processes issuing at once for the same host", async () => {
    db.close();
    const run = promisify(execFile);
    const startAt = String(Date.now() + 3000);
    const child = () =>
      run(process.execPath, ["--import", "tsx", join(import.meta.dirname, "issue-ids-child.ts"), path, "web-1", "150", startAt], {
        timeout: 30_000,
      });
    const outs = await Promise.all([child(), child()]);
    const ids = outs.flatMap((o) => JSON.parse(o.stdout) as number[]);
    assert.equal(new Set(ids).size, 300);
    db = openCoordinatorDb(path);
    assert.equal(db.lastIssuedId("web-1"), Math.max(...ids));
    assert.equal(Math.max(...ids), 20250307090501 + 299);
  });
});

describe("pushes and history", () => {
  it("records pushes and lists outcomes newest first, by host and with a limit", () => {
    const p1 = db.startPush({ store: "nats://127.0.0.1:4222", dryRun: false, force: false, operator: "alice", at: 1000 });
    db.recordResult(p1, { host: "web-1", id: 11, planHash: HASH_A, outcome: "pushed", at: 1001 });
    db.recordResult(p1, {
      host: "web-2",
      id: null,
      planHash: null,
      outcome: "put_failed",
      reason: "store_timeout",
      message: "timed out",
      at: 1002,
    });
    db.finishPush(p1, 1003, { ok: false });
    const p2 = db.startPush({ store: "ssh", dryRun: false, force: true, operator: "bob", at: 500 });
    // The clock went back: order still follows recording order.
    db.recordResult(p2, { host: "web-1", id: 12, planHash: HASH_B, outcome: "succeeded", at: 501 });
    assert.ok(p2 > p1);
    const all = db.history();
    assert.deepEqual(
      all.map((r) => [r.pushId, r.host, r.outcome]),
      [
        [p2, "web-1", "succeeded"],
        [p1, "web-2", "put_failed"],
        [p1, "web-1", "pushed"],
      ],
    );
    assert.deepEqual(all[1], {
      pushId: p1,
      at: 1002,
      host: "web-2",
      id: null,
      planHash: null,
      outcome: "put_failed",
      reason: "store_timeout",
      message: "timed out",
      operator: "alice",
      store: "nats://127.0.0.1:4222",
      dryRun: false,
    });
    assert.deepEqual(
      db.history({ host: "web-1" }).map((r) => r.id),
      [12, 11],
    );
    assert.deepEqual(
      db.history({ limit: 1 }).map((r) => r.id),
      [12],
    );
    assert.deepEqual(db.history({ host: "web-9" }), []);
  });

  it("refuses results for a push that does not exist, and finishing one", () => {
    assert.throws(() => db.recordResult(999, { host: "web-1", id: 1, planHash: HASH_A, outcome: "pushed", at: 1 }), /FOREIGN KEY/);
    throwsReason(() => db.finishPush(999, 1, {}), "not_found", /999/);
  });

  it("stores the push summary as JSON", () => {
    const p = db.startPush({ store: "nats", dryRun: true, force: false, operator: "ci", at: 1 });
    db.finishPush(p, 2, { counts: { pushed: 3 } });
    db.close();
    const raw = new Database(path, { readonly: true });
    const row = raw.prepare("SELECT finished_at, summary, dry_run FROM pushes WHERE push_id = ?").get(p);
    raw.close();
    assert.deepEqual(row, { finished_at: 2, summary: '{"counts":{"pushed":3}}', dry_run: 1 });
    db = openCoordinatorDb(path);
  });
});

after(() => db.close());
