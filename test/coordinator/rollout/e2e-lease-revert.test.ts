// One driver per rollout, and `rollout abort` reverting, end to end: the real CLI as separate
// processes, a real nats-server and two real agents. While a `push --waves --revert-on-failure`
// drives its rollout, a second process's `rollout resume` and `rollout abort` are refused
// (rollout_busy, naming the driver's pid); once that driver is killed with -9 mid-wave, `rollout
// abort` takes its lease over and reverts: every host that moved gets its previous plan again under
// a higher id and converges on it, and the rollout ends `reverted`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openCoordinatorDb } from "../../../coordinator/db.ts";
import type { Expected } from "../../../coordinator/db.ts";
import { CLI_BIN, createCli, initWithServers, jsonLines, lastJson } from "../../helpers/cli.ts";
import type { Fleetplan } from "../../helpers/cli.ts";
import { createNode, createWorld, startAgentProcess, waitFor } from "../../helpers/fleet.ts";
import type { AgentProcess, Node, World } from "../../helpers/fleet.ts";
import { startNats } from "../../helpers/nats.ts";
import type { NatsServer } from "../../helpers/nats.ts";

const HOSTS = ["web-1", "web-2"];
type Rollout = {
  id: number;
  state: string;
  targets: { host: string; outcome: string; id: number | null; revertId: number | null; revertOutcome: string | null }[];
};

describe("rollout lease and abort with revert, two real agents", { timeout: 180_000 }, () => {
  let nats: NatsServer;
  let world: World;
  let nodes: Node[];
  let agents: AgentProcess[] = [];
  let cli: Fleetplan;
  let driver: ChildProcessWithoutNullStreams | null = null;

  /** A --plans directory: web-2's plan takes `slow` seconds, long enough to act while its wave runs. */
  const writePlans = (label: string, slow = 0): string => {
    const dir = join(world.dir, "plans", label);
    mkdirSync(dir, { recursive: true });
    for (const h of HOSTS) writeFileSync(join(dir, `${h}.sh`), `${h === "web-2" && slow > 0 ? `sleep ${slow}\n` : ""}echo ${label}\n`);
    return dir;
  };
  const expected = (): Map<string, Expected> => {
    const db = openCoordinatorDb(cli.dbPath);
    try {
      return db.expected();
    } finally {
      db.close();
    }
  };

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-e2e-lease-");
    nodes = await Promise.all(HOSTS.map((h) => createNode(world, h, nats.url)));
    agents = await Promise.all(nodes.map((n) => startAgentProcess(n)));
    cli = createCli(world, nats.url);
    await initWithServers(cli, nodes);
  });
  after(async () => {
    if (driver && driver.exitCode === null && driver.signalCode === null) driver.kill("SIGKILL");
    await Promise.all(agents.map((a) => a.stop()));
    await nats?.stop();
    world?.cleanup();
  });

  it("a second driver is refused naming the pid; a killed driver's lease is taken over by abort, which reverts", {
    timeout: 150_000,
  }, async () => {
    await cli.expect(["push", "--plans", writePlans("v1"), "--all", "--wait", "--timeout", "30s", "--json"]);
    const before = expected();

    const args = ["push", "--plans", writePlans("v2", 15), "--all", "--waves", "1,100%", "--wave-timeout", "60s"];
    const child = spawn("node", [CLI_BIN, ...args, "--revert-on-failure", "--json"], { env: { ...process.env, ...cli.env } });
    driver = child;
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
    // Wave 2 is under way once web-2's new id is the expected one (its put answered): web-1 moved in wave 1.
    await waitFor(() => expected().get("web-2")!.id !== before.get("web-2")!.id, 60_000, `web-2 pushed in wave 2 (${out}${err})`);
    const rollout = jsonLines(out).find((l) => l.event === "wave")!.rollout as number;

    for (const command of ["resume", "abort"]) {
      const busy = await cli.run(["rollout", command, String(rollout), "--json"]);
      assert.equal(busy.code, 2, `${command}: ${busy.stdout}${busy.stderr}`);
      const refusal = lastJson<{ reason: string; message: string }>(busy);
      assert.equal(refusal.reason, "rollout_busy");
      assert.match(refusal.message, new RegExp(`rollout ${rollout} is being driven by pid ${child.pid} since .*kill ${child.pid}`));
    }

    child.kill("SIGKILL");
    await exited;
    const crashed = lastJson<Rollout>(await cli.expect(["rollout", "show", String(rollout), "--json"]));
    assert.equal(crashed.state, "running", "a driver killed mid-wave leaves the rollout running");
    const moved = expected();

    // The dead driver's lease is taken over: abort reverts by default (the rollout has --revert-on-failure).
    const aborted = await cli.run(["rollout", "abort", String(rollout), "--json"], { timeoutMs: 120_000 });
    assert.equal(aborted.code, 0, `${aborted.stdout}${aborted.stderr}`);
    const record = jsonLines(aborted.stdout)
      .filter((l) => l.event === "rollout")
      .at(-1) as unknown as Rollout;
    assert.equal(record.state, "reverted");
    const now = expected();
    for (const host of HOSTS) {
      const t = record.targets.find((x) => x.host === host)!;
      assert.equal(t.revertOutcome, "succeeded", `${host}: ${aborted.stdout}`);
      assert.ok(t.revertId! > moved.get(host)!.id, `${host}: revert id ${t.revertId} above the rollout's ${moved.get(host)!.id}`);
      assert.deepEqual([now.get(host)!.id, now.get(host)!.planHash], [t.revertId, before.get(host)!.planHash], host);
    }
    // Both converged on their previous plan, by their own metrics; the lease was released.
    await cli.expect(["status", "--servers", "web-1,web-2"]);
    const db = openCoordinatorDb(cli.dbPath);
    try {
      assert.equal(db.sqlite.prepare("SELECT count(*) FROM rollout_leases").pluck().get(), 0);
    } finally {
      db.close();
    }
  });
});
