// Drift: the pure comparison row by row, then the reading edge against real files (missing,
// edited, chmod, chown, replaced by a symlink, grown, behind an unsafe directory), the ledger's
// record of what a success wrote, and the scheduler's jitter.
import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { checkDrift, compareFile, fileRecords, observeFile } from "../../agent/drift.ts";
import type { FileRecord, Observed } from "../../agent/drift.ts";
import { DRIFT_JITTER, createDriftScheduler, jitteredDelay } from "../../agent/drift-scheduler.ts";
import { openLedger } from "../../agent/ledger.ts";
import { normalizeAgentConfig } from "../../agent/config.ts";
import { tempDirs } from "../helpers/temp.ts";

const tempDir = tempDirs(tmpdir(), "fleetplan-drift-");
const SHA = "a".repeat(64);
const RECORD: FileRecord = { path: "/etc/app.conf", sha256: SHA, size: 5, mode: 0o640, uid: 0, gid: 0 };
const seen = (over: Partial<Extract<Observed, { kind: "file" }>> = {}): Observed => ({
  kind: "file",
  sha256: SHA,
  mode: 0o640,
  uid: 0,
  gid: 0,
  ...over,
});
const b64 = (text: string) => Buffer.from(text).toString("base64");

describe("compareFile (pure)", () => {
  const rows: [string, FileRecord, Observed, string[], RegExp][] = [
    ["as written", RECORD, seen(), [], /as written/],
    ["missing", RECORD, { kind: "missing" }, ["missing"], /missing/],
    ["content changed", RECORD, seen({ sha256: "b".repeat(64) }), ["content"], /content differs/],
    ["grown past what was written", RECORD, { kind: "too_large", size: 9 }, ["content"], /9 bytes, 5 written/],
    ["mode changed", RECORD, seen({ mode: 0o644 }), ["mode"], /mode 0644, 0640 written/],
    ["setuid bit added", RECORD, seen({ mode: 0o4640 }), ["mode"], /mode 4640/],
    ["owner changed", RECORD, seen({ uid: 1000 }), ["owner"], /owner uid 1000, 0 written/],
    ["group changed", RECORD, seen({ gid: 50 }), ["group"], /group gid 50/],
    ["owner not set by the plan is not checked", { ...RECORD, uid: null, gid: null }, seen({ uid: 1000, gid: 1000 }), [], /as written/],
    [
      "everything at once",
      RECORD,
      seen({ sha256: "c".repeat(64), mode: 0o600, uid: 1 }),
      ["content", "mode", "owner"],
      /content differs, mode 0600.*owner uid 1/,
    ],
    ["replaced by a symlink", RECORD, { kind: "not_a_file", what: "a symlink" }, ["not_a_file"], /now a symlink/],
    ["cannot be checked", RECORD, { kind: "unreadable", error: "EACCES" }, ["unreadable"], /cannot be checked: EACCES/],
  ];
  for (const [name, record, observed, problems, detail] of rows) {
    it(name, () => {
      const got = compareFile(record, observed);
      assert.deepEqual(got.problems, problems);
      assert.equal(got.drifted, problems.length > 0);
      assert.equal(got.path, record.path);
      assert.match(got.detail, detail);
    });
  }
});

describe("fileRecords", () => {
  it("hashes the decoded content, keeps the mode bits and resolves owners like the executor", () => {
    const [rec] = fileRecords([{ path: "/x", mode: 0o4755, content: b64("hello"), owner: "root" }]);
    assert.deepEqual(rec, {
      path: "/x",
      sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
      size: 5,
      mode: 0o4755,
      uid: 0,
      gid: null,
    });
    assert.deepEqual(fileRecords([{ path: "/y", mode: 0o644, content: "" }])[0], {
      path: "/y",
      sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      size: 0,
      mode: 0o644,
      uid: null,
      gid: null,
    });
  });
});

describe("observeFile and checkDrift (real files)", { timeout: 20_000 }, () => {
  const setup = () => {
    const root = tempDir();
    const path = join(root, "etc", "app.conf");
    mkdirSync(join(root, "etc"), { mode: 0o755 });
    writeFileSync(path, "hello");
    chmodSync(path, 0o640);
    const [record] = fileRecords([{ path, mode: 0o640, content: b64("hello"), owner: "0", group: "0" }]);
    return { root, path, record: record! };
  };

  it("finds a file as written unchanged", () => {
    const { root, record } = setup();
    assert.deepEqual(
      checkDrift([record], [root], 5).files.map((f) => f.problems),
      [[]],
    );
  });

  it("reports missing, edited, chmod'ed and chown'ed files, each by path", () => {
    const { root, path, record } = setup();
    rmSync(path);
    assert.equal(observeFile(record, [root]).kind, "missing");
    writeFileSync(path, "HELLO", { mode: 0o640 });
    chmodSync(path, 0o640);
    assert.deepEqual(compareFile(record, observeFile(record, [root])).problems, ["content"]);
    writeFileSync(path, "hello");
    chmodSync(path, 0o666);
    assert.deepEqual(compareFile(record, observeFile(record, [root])).problems, ["mode"]);
    chmodSync(path, 0o640);
    chownSync(path, 1234, 0);
    const report = checkDrift([record], [root], 0);
    assert.equal(report.drifted, 1);
    assert.deepEqual(report.files[0]!.problems, ["owner"]);
    assert.equal(report.files[0]!.path, path);
  });

  it("a missing directory means a missing file", () => {
    const { root, record } = setup();
    rmSync(join(root, "etc"), { recursive: true });
    assert.equal(observeFile(record, [root]).kind, "missing");
  });

  it("never follows a symlink put in the file's place (it points at a secret)", () => {
    const { root, path, record } = setup();
    const secret = join(tempDir(), "secret");
    writeFileSync(secret, "hello");
    rmSync(path);
    symlinkSync(secret, path);
    const observed = observeFile(record, [root]);
    assert.deepEqual(observed, { kind: "not_a_file", what: "a symlink" });
  });

  it("reads no more than was written: a grown file differs without being read whole", () => {
    const { root, path, record } = setup();
    writeFileSync(path, Buffer.alloc(64 * 1024 * 1024));
    const observed = observeFile(record, [root]);
    assert.deepEqual(observed, { kind: "too_large", size: 64 * 1024 * 1024 });
  });

  it("does not look through a directory others can write, nor outside the roots", () => {
    const { root, record } = setup();
    chmodSync(join(root, "etc"), 0o777);
    const observed = observeFile(record, [root]);
    assert.equal(observed.kind, "unreadable");
    assert.match((observed as { error: string }).error, /directory .*etc is owned by uid 0 with mode 0777/);
    chmodSync(join(root, "etc"), 0o755);
    const other = tempDir();
    assert.deepEqual(observeFile(record, [other]), { kind: "unreadable", error: `outside the allowed roots (${other})` });
  });

  it("a directory in the file's place is not a file", () => {
    const { root, path, record } = setup();
    rmSync(path);
    mkdirSync(path);
    assert.deepEqual(observeFile(record, [root]), { kind: "not_a_file", what: "a directory" });
  });
});

describe("ledger: the files of the newest success", { timeout: 10_000 }, () => {
  it("starts empty, and each success replaces the whole set", () => {
    const ledger = openLedger(join(tempDir(), "ledger.db"));
    try {
      assert.deepEqual(ledger.appliedFiles(), []);
      const a: FileRecord = { path: "/a", sha256: SHA, size: 1, mode: 0o644, uid: null, gid: null };
      const b: FileRecord = { path: "/b", sha256: SHA, size: 2, mode: 0o600, uid: 0, gid: 5 };
      ledger.recordFiles(1, [b, a]);
      assert.deepEqual(ledger.appliedFiles(), [a, b]);
      ledger.recordFiles(2, [{ ...a, size: 9 }]);
      assert.deepEqual(ledger.appliedFiles(), [{ ...a, size: 9 }]);
    } finally {
      ledger.close();
    }
  });
});

describe("drift scheduling", { timeout: 10_000 }, () => {
  it("spreads checks within ±20 % of the interval", () => {
    assert.equal(DRIFT_JITTER, 0.2);
    assert.equal(
      jitteredDelay(600_000, () => 0),
      480_000,
    );
    assert.equal(
      jitteredDelay(600_000, () => 0.5),
      600_000,
    );
    assert.equal(
      jitteredDelay(600_000, () => 0.999999),
      720_000,
    );
  });

  it("checks repeatedly on the interval, never when it is 0, and not after stop", async () => {
    let n = 0;
    const s = createDriftScheduler(20, () => n++);
    s.start();
    // A loaded machine delays timers: wait for three checks (about 60 ms), at most 5 s.
    for (const deadline = Date.now() + 5_000; n < 3 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    s.stop();
    const seenChecks = n;
    assert.ok(seenChecks >= 3, `${seenChecks} checks at a 20 ms interval`);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(n, seenChecks);
    let m = 0;
    const off = createDriftScheduler(0, () => m++);
    off.start();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(m, 0);
  });

  it("driftInterval: default 10m, 0 turns it off, below a second is refused", () => {
    assert.equal(normalizeAgentConfig([{ hostname: "h" }], {}).driftIntervalMs, 600_000);
    assert.equal(normalizeAgentConfig([{ hostname: "h", driftInterval: "0" }], {}).driftIntervalMs, 0);
    assert.throws(
      () => normalizeAgentConfig([{ hostname: "h", driftInterval: "10ms" }], {}),
      /driftInterval: "10ms" must be 0 \(checks on demand only\) or at least 1s/,
    );
    assert.throws(() => normalizeAgentConfig([{ hostname: "h", driftInterval: "soon" }], {}), /driftInterval: "soon" is not a duration/);
  });
});
