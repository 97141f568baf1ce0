// Clock skew between coordinator and agent (issue 7 item 3): an envelope issued beyond the
// allowed skew is `from_future`, one already past its expiry is `expired`, and neither changes
// anything; within the allowance (or with a larger configured one) it is accepted and runs.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Agent } from "../../agent/agent.ts";
import { createNode, createWorld, metricValue, sealFor, startInProcess } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";
import { markerIds, markerPlan } from "./support.ts";

const MIN = 60_000;

describe("clock skew", { timeout: 30_000 }, () => {
  let world: World;
  let node: Node;
  let agent: Agent;
  let wide: Node;
  let wideAgent: Agent;

  before(async () => {
    world = await createWorld("fleetplan-skew-");
    node = await createNode(world, "skew-1", "nats://127.0.0.1:1");
    wide = await createNode(world, "skew-2", "nats://127.0.0.1:1", { clockSkew: "15m" });
    agent = await startInProcess(node, { feed: null });
    wideAgent = await startInProcess(wide, { feed: null });
    assert.equal(node.config.limits.clockSkewMs, 5 * MIN, "the default allowance");
  });

  after(async () => {
    await agent?.stop();
    await wideAgent?.stop();
    world?.cleanup();
  });

  const submit = (a: Agent, n: Node, id: number, opts: { issued?: number; expires?: number }) =>
    a.submit(sealFor(world, n, id, markerPlan(n, `id ${id}`), opts), { source: "test", revision: null });
  const counted = (n: Node, result: string) => metricValue(n, `fleetplan_agent_envelopes_total{result="${result}"}`);

  it("issued 10 min ahead with 5 min allowed: from_future, nothing changes", async () => {
    const result = submit(agent, node, 10, { issued: Date.now() + 10 * MIN });
    assert.deepEqual([result.accepted, !result.accepted && result.reason], [false, "from_future"]);
    assert.equal(await counted(node, "from_future"), 1);
    assert.equal(agent.ledger.highWaterMark().id, 0);
    assert.deepEqual(markerIds(node), []);
  });

  it("expired a second ago: expired, nothing changes", async () => {
    const result = submit(agent, node, 11, { issued: Date.now() - 2 * MIN, expires: Date.now() - 1_000 });
    assert.deepEqual([result.accepted, !result.accepted && result.reason], [false, "expired"]);
    assert.equal(await counted(node, "expired"), 1);
    assert.equal(agent.ledger.highWaterMark().id, 0);
    assert.deepEqual(
      agent.ledger.envelopes(10).map((e) => [e.id, e.result]),
      [
        [11, "expired"],
        [10, "from_future"],
      ],
    );
  });

  it("issued 4 min ahead (within the allowance): accepted and run", async () => {
    const result = submit(agent, node, 12, { issued: Date.now() + 4 * MIN });
    assert.ok(result.accepted);
    assert.notEqual(await result.outcome, "superseded");
    assert.equal(await counted(node, "accepted"), 1);
    assert.deepEqual(markerIds(node), [12]);
  });

  it("an agent configured with clockSkew 15m accepts the envelope issued 10 min ahead", async () => {
    const result = submit(wideAgent, wide, 10, { issued: Date.now() + 10 * MIN });
    assert.ok(result.accepted);
    await result.outcome;
    assert.deepEqual(markerIds(wide), [10]);
  });
});
