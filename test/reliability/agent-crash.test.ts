// The agent process killed with SIGKILL in the middle of a step (issue 7 item 3): on restart the
// run is recorded `interrupted`, the same envelope (redelivered by the store) is not run again,
// and the coordinator's next push converges.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openLedger } from "../../agent/ledger.ts";
import { createNode, createWorld, metricValue, startAgentProcess, waitFor } from "../helpers/fleet.ts";
import type { AgentProcess, Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { allRuns, createCoordinator, markerIds, markerPlan, storeConfig } from "./support.ts";
import type { Coordinator } from "./support.ts";

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("agent kill -9 during a step", { timeout: 90_000 }, () => {
  let nats: NatsServer;
  let world: World;
  let node: Node;
  let agent: AgentProcess | null = null;
  let coordinator: Coordinator;
  let stepGroup = 0;

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-crash-");
    node = await createNode(world, "crash-1", nats.url);
    coordinator = createCoordinator(world, [node], storeConfig(nats.url));
  });

  after(async () => {
    if (stepGroup > 0 && alive(stepGroup)) process.kill(-stepGroup, "SIGKILL");
    await agent?.stop();
    coordinator?.close();
    await nats?.stop();
    world?.cleanup();
  });

  it("records the run interrupted, never re-runs it, and converges on the next push", async (t) => {
    agent = await startAgentProcess(node);
    const pidFile = join(node.root, "step.pid");
    // The step records its process group (bash is its leader), then outlives the test's patience.
    const first = await coordinator.push([node], (n) => markerPlan(n, "slow", `echo $$ > ${pidFile}\nsleep 60`));
    const firstId = first.targets[0]!.id!;
    await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("\n"), 20_000, "the step to start");
    stepGroup = Number(readFileSync(pidFile, "utf8"));
    await agent.kill9();
    agent = null;
    // Nothing was left to record the run: the step's group survives its agent. Under systemd,
    // KillMode=mixed kills what is left of the unit; here the test stands in for it.
    const orphaned = alive(stepGroup);
    if (orphaned) process.kill(-stepGroup, "SIGKILL");
    await waitFor(() => !alive(stepGroup), 5_000, "the orphaned step to die");

    agent = await startAgentProcess(node);
    await waitFor(
      async () => (await metricValue(node, 'fleetplan_agent_envelopes_total{result="duplicate"}')) === 1,
      15_000,
      "the redelivered envelope to be seen",
    );
    assert.equal(await metricValue(node, 'fleetplan_agent_runs_total{result="interrupted"}'), 1);
    assert.equal(
      await metricValue(node, 'fleetplan_agent_envelopes_total{result="accepted"}'),
      0,
      "the same envelope is not accepted again",
    );
    assert.equal(await metricValue(node, "fleetplan_agent_running"), 0);
    assert.deepEqual(markerIds(node), [], "the step never reached its end");

    const second = await coordinator.push([node], (n) => markerPlan(n, "quick"));
    const secondId = second.targets[0]!.id!;
    assert.ok(secondId > firstId);
    await waitFor(
      async () => (await metricValue(node, "fleetplan_agent_provisioning_id")) === secondId,
      20_000,
      "the next push to converge",
    );
    assert.equal(await agent.stop(), 0);
    agent = null;

    const ledger = openLedger(join(node.config.stateDir, "ledger.db"));
    try {
      const runs = allRuns(ledger);
      assert.deepEqual(
        runs.map((r) => [r.id, r.state]),
        [
          [firstId, "interrupted"],
          [secondId, "succeeded"],
        ],
      );
      assert.equal(runs[0]!.error, "cut short by a restart");
      assert.deepEqual(ledger.counts(), { accepted: 2, duplicate: 1 });
    } finally {
      ledger.close();
    }
    assert.deepEqual(markerIds(node), [secondId]);
    t.diagnostic(
      JSON.stringify({
        fault: "agent_kill9_mid_step",
        step_group_outlived_agent: orphaned,
        first: firstId,
        interrupted: true,
        next: secondId,
      }),
    );
  });
});
