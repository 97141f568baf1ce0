// The ledger cannot be written (issue 7 item 3): the state dir's disk is full (a 2 MiB tmpfs,
// filled), or its WAL made immutable (chattr +i). The agent logs a clear error naming the ledger
// and the SQLite code and does NOT execute the plan; once the disk is writable again, the next
// envelope runs.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Agent } from "../../agent/agent.ts";
import { createLogger } from "../../shared/log.ts";
import { createNode, createWorld, sealFor, startInProcess, waitFor } from "../helpers/fleet.ts";
import type { World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { markerIds, markerPlan, openRawBucket } from "./support.ts";
import type { RawBucket } from "./support.ts";

const tryRun = (cmd: string, args: string[]): string | null => {
  try {
    execFileSync(cmd, args, { stdio: "pipe" });
    return null;
  } catch (error) {
    return String((error as { stderr?: Buffer }).stderr ?? (error as Error).message).trim() || (error as Error).message;
  }
};

/** Write zeros into `path` until the filesystem refuses (ENOSPC). */
const fillDisk = (path: string): void => {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
  } finally {
    closeSync(fd);
  }
};

interface Breakage {
  /** Set up where the state dir lives; returns a reason to skip, or null. */
  prepare(stateDir: string): string | null;
  /** Make the ledger unwritable; returns a reason to skip, or null. */
  breakIt(stateDir: string): string | null;
  repair(stateDir: string): void;
  cleanup(stateDir: string): void;
  code: RegExp;
}

describe("the ledger cannot be written", { timeout: 60_000 }, () => {
  let nats: NatsServer;
  let world: World;

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-ledger-fail-");
  });

  after(async () => {
    await nats?.stop();
    world?.cleanup();
  });

  const scenario = async (t: TestContext, host: string, b: Breakage) => {
    const stateDir = join(world.dir, `${host}-state`);
    mkdirSync(stateDir, { mode: 0o700 });
    const skip = b.prepare(stateDir);
    if (skip) return t.skip(skip);
    const logs: string[] = [];
    let agent: Agent | null = null;
    let kv: RawBucket | null = null;
    try {
      const node = await createNode(world, host, nats.url, { stateDir, metricsListen: "off" });
      const started = await startInProcess(node, { logger: createLogger({ write: (line) => void logs.push(line) }) });
      agent = started;
      kv = await openRawBucket(nats.url);
      const broken = b.breakIt(stateDir);
      if (broken) return t.skip(broken);
      await kv.put(host, sealFor(world, node, 100, markerPlan(node, "must not run")));
      await waitFor(() => logs.some((l) => l.includes('"ledger_write_failed"')), 10_000, "the ledger error to be logged");
      const error = JSON.parse(logs.find((l) => l.includes('"ledger_write_failed"'))!);
      assert.equal(error.level, "error");
      assert.equal(error.id, 100);
      assert.match(error.error, new RegExp(`^ledger ${join(stateDir, "ledger.db")}: ${b.code.source}`));
      await sleep(500);
      await started.idle();
      assert.deepEqual(markerIds(node), [], "nothing ran without a record");
      assert.ok(!logs.some((l) => l.includes('"envelope_accepted"') || l.includes('"run_started"')));
      assert.equal(started.ledger.highWaterMark().id, 0);

      b.repair(stateDir);
      await kv.put(host, sealFor(world, node, 101, markerPlan(node, "runs")));
      await waitFor(() => started.ledger.lastSuccess()?.id === 101, 10_000, "the next envelope to run");
      assert.deepEqual(markerIds(node), [101]);
      t.diagnostic(JSON.stringify({ fault: host, logged: error.error, next_envelope: "ran" }));
    } finally {
      await kv?.close();
      await agent?.stop();
      b.cleanup(stateDir);
    }
  };

  it("disk full (2 MiB tmpfs): logs SQLITE_FULL, runs nothing, runs the next envelope once space returns", async (t) => {
    await scenario(t, "disk-full", {
      prepare: (dir) => {
        const failed = tryRun("mount", ["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", dir]);
        return failed && `cannot mount a tmpfs (not root, or no CAP_SYS_ADMIN): ${failed}`;
      },
      breakIt: (dir) => {
        fillDisk(join(dir, "filler"));
        return null;
      },
      repair: (dir) => rmSync(join(dir, "filler")),
      cleanup: (dir) => void (tryRun("umount", [dir]) && tryRun("umount", ["-l", dir])),
      code: /SQLITE_FULL/,
    });
  });

  it("ledger read-only (chattr +i on its WAL): logs SQLITE_IOERR, runs nothing, runs the next envelope once writable", async (t) => {
    const wal = (dir: string) => join(dir, "ledger.db-wal");
    await scenario(t, "read-only", {
      prepare: () => null,
      breakIt: (dir) => {
        const failed = tryRun("chattr", ["+i", wal(dir)]);
        return failed && `cannot make the WAL immutable (filesystem or CAP_LINUX_IMMUTABLE): ${failed}`;
      },
      repair: (dir) => void tryRun("chattr", ["-i", wal(dir)]),
      cleanup: (dir) => void tryRun("chattr", ["-i", wal(dir)]),
      code: /SQLITE_IOERR/,
    });
  });
});
