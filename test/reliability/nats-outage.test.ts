// nats-server killed with SIGKILL in the middle of a push to 20 agents and restarted ~2 s later
// (issue 7 item 3): the coordinator's retried puts and the agents' reconnect-and-reread bring
// every agent to its pushed id, and every plan runs exactly once.
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Agent } from "../../agent/agent.ts";
import { createLogger } from "../../shared/log.ts";
import { createNode, createWorld, startInProcess } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { pushThroughFault } from "./push-through-fault.ts";
import { createCoordinator, storeConfig } from "./support.ts";
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
    nodes = await Promise.all(
      Array.from({ length: AGENTS }, (_, i) => createNode(world, `outage-${i}`, nats.url, { metricsListen: "off" })),
    );
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
    const r = await pushThroughFault(coordinator, nodes, agents, {
      afterPuts: KILL_AFTER_PUTS,
      timeoutMs: 60_000,
      fault: async () => {
        await nats.kill9();
        await sleep(DOWN_MS);
        await nats.restart();
      },
    });
    t.diagnostic(
      JSON.stringify({
        fault: "nats_kill9",
        agents: AGENTS,
        down_ms: DOWN_MS,
        put_retries: retries,
        first_push: r.first.counts,
        repushed: r.repushed,
        converged_ms: r.convergedMs,
        converged_after_restart_ms: r.convergedAt - r.faultDoneAt,
      }),
    );
  });
});
