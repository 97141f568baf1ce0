// nats-server killed with SIGKILL in the middle of a push to 20 agents and restarted ~2 s later
// (issue 7 item 3): the coordinator's retried puts and the agents' reconnect-and-reread bring
// every agent to its pushed id, and every plan runs exactly once.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Agent } from "../../agent/agent.ts";
import { createLogger } from "../../shared/log.ts";
import { createNode, createWorld, startInProcess, waitFor } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { createCoordinator, executedRuns, markerIds, markerPlan, storeConfig } from "./support.ts";
import type { Coordinator } from "./support.ts";

const AGENTS = 20;
const KILL_AFTER_PUTS = 6;
const DOWN_MS = 2_000;

describe("nats-server kill -9 during a push to 20 agents", { timeout: 120_000 }, () => {
  let nats: NatsServer;
  let world: World;
  let nodes: Node[];
  let agents: Agent[] = [];
  let coordinator: Coordinator;

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-outage-");
    nodes = await Promise.all(Array.from({ length: AGENTS }, (_, i) => createNode(world, `outage-${i}`, nats.url, { metricsListen: "off" })));
    agents = await Promise.all(nodes.map((n) => startInProcess(n)));
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    coordinator?.close();
    await nats?.stop();
    world?.cleanup();
  });

  it("every agent converges on its pushed id and runs it exactly once", async (t) => {
    let retries = 0;
    const logger = createLogger({ write: (line) => void (line.includes('"store_retry"') && retries++) });
    coordinator = createCoordinator(world, nodes, storeConfig(nats.url), logger);
    let puts = 0;
    let outage: Promise<void> | null = null;
    let restartedAt = 0;
    const started = Date.now();
    const summary = await coordinator.push(nodes, (n) => markerPlan(n, "outage"), {
      concurrency: 2,
      emit: (e) => {
        if (e.event === "put" && ++puts === KILL_AFTER_PUTS) {
          outage = (async () => {
            await nats.kill9();
            await sleep(DOWN_MS);
            await nats.restart();
            restartedAt = Date.now();
          })();
        }
      },
    });
    assert.ok(outage, "the server was killed during the push");
    await outage;
    const expected = new Map(summary.targets.map((r) => [r.host, r.id!]));
    // A put that still failed after its retries is pushed again, as an operator would (new id).
    const failed = summary.targets.filter((r) => r.outcome !== "pushed").map((r) => nodes.find((n) => n.host === r.host)!);
    if (failed.length > 0) {
      const again = await coordinator.push(failed, (n) => markerPlan(n, "outage, again"));
      assert.ok(again.ok, JSON.stringify(again.counts));
      for (const r of again.targets) expected.set(r.host, r.id!);
    }
    await waitFor(() => agents.every((a) => a.ledger.lastSuccess()?.id === expected.get(a.hostname)), 60_000, "every agent to converge");
    const converged = Date.now();
    await Promise.all(agents.map((a) => a.idle()));
    for (const [i, node] of nodes.entries()) {
      const runs = executedRuns(agents[i]!.ledger);
      assert.deepEqual(runs.map((r) => [r.id, r.state]), [[expected.get(node.host), "succeeded"]], node.host);
      assert.deepEqual(markerIds(node), [expected.get(node.host)], `${node.host}: one marker line per run`);
    }
    t.diagnostic(JSON.stringify({
      fault: "nats_kill9", agents: AGENTS, down_ms: DOWN_MS, put_retries: retries, first_push: summary.counts, repushed: failed.length,
      converged_ms: converged - started, converged_after_restart_ms: converged - restartedAt,
    }));
  });
});
