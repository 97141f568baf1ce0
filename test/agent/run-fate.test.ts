// Every accepted id ends in a recorded outcome with its reason (issue 12 items 5-6): a metrics
// port held by another process does not keep the agent from running plans, the endpoint caps
// its connections, and a run log that cannot be created fails the run as `log_unavailable`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { createAgent } from "../../agent/agent.ts";
import type { Agent } from "../../agent/agent.ts";
import { silentLogger } from "../../shared/log.ts";
import { createNode, createWorld, sealFor } from "../helpers/fleet.ts";
import type { World } from "../helpers/fleet.ts";
import { waitFor } from "../helpers/ports.ts";

const canChattr = process.geteuid?.() === 0 && spawnSync("chattr", ["--help"]).error === undefined;
let world: World;
const agents: Agent[] = [];
before(async () => {
  world = await createWorld("fleetplan-run-fate-");
});
after(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  world?.cleanup();
});

const applied = async (agent: Agent, envelope: Uint8Array) => {
  const r = agent.submit(envelope, { source: "test", revision: null });
  assert.ok(r.accepted, r.accepted ? "" : r.message);
  const outcome = await r.outcome;
  assert.ok(outcome !== "superseded");
  return outcome;
};

const holdPort = (port: number): Promise<Server> =>
  new Promise((resolve, reject) => {
    const server = createServer((s) => s.destroy());
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });

describe("accepted ids never end in limbo", { timeout: 60_000 }, () => {
  it("another process on the metrics port: the agent starts, runs plans, and serves metrics once the port is free", async () => {
    const node = await createNode(world, "port-taken", "nats://127.0.0.1:1");
    const squatter = await holdPort(node.metricsPort);
    const agent = await createAgent(node.config, { feed: null, logger: silentLogger });
    agents.push(agent);
    assert.equal((await applied(agent, sealFor(world, node, 10, "true"))).result, "succeeded");
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
    await waitFor(
      async () => (await fetch(agent.metricsUrl!).catch(() => null))?.ok === true,
      15_000,
      "metrics served after the port was freed",
    );
    const body = await (await fetch(agent.metricsUrl!)).text();
    assert.match(body, /^fleetplan_agent_provisioning_id 10$/m);
  });

  it("idle connections to the metrics endpoint are capped: beyond the cap they are dropped, and plans still run", async () => {
    const node = await createNode(world, "conn-flood", "nats://127.0.0.1:1");
    const agent = await createAgent(node.config, { feed: null, logger: silentLogger });
    agents.push(agent);
    const sockets: Socket[] = [];
    let closed = 0;
    for (let i = 0; i < 200; i++) {
      const s = connect(node.metricsPort, "127.0.0.1");
      s.on("error", () => {});
      s.on("close", () => closed++);
      sockets.push(s);
    }
    try {
      await waitFor(() => closed >= 200 - 32, 10_000, "connections past the cap dropped");
      assert.equal((await applied(agent, sealFor(world, node, 11, "true"))).result, "succeeded");
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it("a run log that cannot be created fails the run as log_unavailable, recorded in the ledger", {
    skip: !canChattr && "needs root and chattr",
  }, async () => {
    const node = await createNode(world, "log-full", "nats://127.0.0.1:1");
    const agent = await createAgent(node.config, { feed: null, logger: silentLogger });
    agents.push(agent);
    spawnSync("chattr", ["+i", node.config.logDir]);
    try {
      const outcome = await applied(agent, sealFor(world, node, 12, "true"));
      assert.deepEqual([outcome.result, outcome.reason], ["failed", "log_unavailable"]);
      const last = agent.ledger.lastFinished();
      assert.equal(last?.id, 12);
      assert.equal(last?.state, "failed");
      assert.match(last?.error ?? "", /cannot open run log/);
    } finally {
      spawnSync("chattr", ["-i", node.config.logDir]);
    }
    assert.equal((await applied(agent, sealFor(world, node, 13, "true"))).result, "succeeded", "runs again once the log dir is writable");
  });
});
