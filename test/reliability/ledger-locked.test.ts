// Another process holds the ledger locked (issue 7 item 3): a child `node -e` keeps BEGIN
// EXCLUSIVE open for ~2 s. The agent's write waits on SQLite's busy timeout instead of failing,
// and the envelope still runs, once.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { Agent } from "../../agent/agent.ts";
import { createLogger } from "../../shared/log.ts";
import { createNode, createWorld, sealFor, startInProcess, waitFor } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { executedRuns, markerIds, markerPlan, openRawBucket } from "./support.ts";

const HOLD_MS = 2_000;
const REPO = fileURLToPath(new URL("../..", import.meta.url));
// Runs from the repository so that require() finds better-sqlite3.
const LOCKER = `const db = new (require("better-sqlite3"))(process.argv[1], { timeout: 5000 });
db.exec("BEGIN EXCLUSIVE");
process.stdout.write("locked\\n");
setTimeout(() => { db.exec("COMMIT"); db.close(); }, Number(process.argv[2]));`;

describe("ledger locked by another process", { timeout: 60_000 }, () => {
  let nats: NatsServer;
  let world: World;
  let node: Node;
  let agent: Agent | null = null;

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-locked-");
    node = await createNode(world, "locked-1", nats.url, { metricsListen: "off" });
  });

  after(async () => {
    await agent?.stop();
    await nats?.stop();
    world?.cleanup();
  });

  it("waits for the lock (busy timeout) and still runs the envelope", async (t) => {
    const logs: string[] = [];
    agent = await startInProcess(node, { logger: createLogger({ write: (line) => void logs.push(line) }) });
    const child = spawn("node", ["-e", LOCKER, join(node.config.stateDir, "ledger.db"), String(HOLD_MS)], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const kv = await openRawBucket(nats.url);
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once("data", () => resolve());
        void exited.then((code) => reject(new Error(`locker exited ${code} before locking`)));
      });
      const lockedAt = Date.now();
      await kv.put(node.host, sealFor(world, node, 7, markerPlan(node, "after the lock")));
      await waitFor(() => markerIds(node).length > 0, 15_000, "the envelope to run");
      assert.equal(await exited, 0, "the locker committed and exited");
      const accepted = JSON.parse(logs.find((l) => l.includes('"envelope_accepted"'))!);
      const waitedMs = Date.parse(accepted.ts) - lockedAt;
      assert.ok(waitedMs >= HOLD_MS - 500, `accepted ${waitedMs} ms after the lock was taken: it waited`);
      await agent.idle();
      assert.deepEqual(markerIds(node), [7]);
      assert.deepEqual(
        executedRuns(agent.ledger).map((r) => [r.id, r.state]),
        [[7, "succeeded"]],
      );
      assert.ok(!logs.some((l) => l.includes('"ledger_write_failed"')), "no write failed");
      t.diagnostic(JSON.stringify({ fault: "ledger_locked", hold_ms: HOLD_MS, accepted_after_ms: waitedMs, ran: true }));
    } finally {
      child.kill("SIGKILL");
      await exited;
      await kv.close();
    }
  });
});
