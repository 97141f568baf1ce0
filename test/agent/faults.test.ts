// The agent through faults: the NATS server killed and restarted under it, and a real agent
// process stopped with SIGTERM in the middle of a step.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { openLedger } from "../../agent/ledger.ts";
import { sealFor, waitFor } from "../helpers/fleet.ts";
import { appendMarker, markerLines, startKvScope, waitMetric } from "../helpers/agent-scope.ts";

const scope = await startKvScope();
after(() => scope.cleanup());
const { kv, nats, world } = scope;

describe("agent faults", () => {
  test("nats-server killed and restarted: the agent reconnects and runs plans put during and after the outage", async () => {
    const node = await scope.node("outage-1");
    const agent = await scope.agent(node);
    await kv.put(node.host, sealFor(world, node, 11, appendMarker(node, "11")));
    await waitFor(() => agent.ledger.lastSuccess()?.id === 11, 10_000, "run 11 to succeed");
    await waitMetric(node, "fleetplan_agent_store_connected", (v) => v === 1);

    await nats.kill9();
    await waitMetric(node, "fleetplan_agent_store_connected", (v) => v === 0);
    // Put while the server is down: it goes through, by retry, once the server is back.
    const during = kv.put(node.host, sealFor(world, node, 12, appendMarker(node, "12")), 20_000);
    await nats.restart();
    await during;
    await waitMetric(node, "fleetplan_agent_store_connected", (v) => v === 1, 15_000);
    await waitFor(() => agent.ledger.lastSuccess()?.id === 12, 15_000, "run 12 (put during the outage) to succeed");

    await kv.put(node.host, sealFor(world, node, 13, appendMarker(node, "13")));
    await waitFor(() => agent.ledger.lastSuccess()?.id === 13, 10_000, "run 13 (put after the restart) to succeed");
    await agent.idle();
    assert.deepEqual(markerLines(node), ["11", "12", "13"]);
  });

  test("SIGTERM mid-step: the process exits 0 within the grace period, the run is interrupted and never re-run", async () => {
    const node = await scope.node("sigterm-1");
    const proc = await scope.process(node);
    await kv.put(node.host, sealFor(world, node, 21, `${appendMarker(node, "21-started")}\nsleep 30\n${appendMarker(node, "21-done")}`));
    await waitFor(() => markerLines(node).length === 1, 10_000, "the step to start");

    const stopping = Date.now();
    const code = await proc.stop();
    const took = Date.now() - stopping;
    assert.equal(code, 0, proc.log());
    assert.ok(took < node.config.stopGraceMs, `exited after ${took} ms (grace ${node.config.stopGraceMs} ms)`);
    const ledger = openLedger(join(node.config.stateDir, "ledger.db"));
    try {
      assert.deepEqual(
        ledger.runs(10).map((r) => [r.id, r.state]),
        [[21, "interrupted"]],
      );
    } finally {
      ledger.close();
    }

    const again = await scope.process(node);
    await waitMetric(node, 'fleetplan_agent_envelopes_total{result="duplicate"}', (v) => (v ?? 0) >= 1);
    assert.equal(await again.stop(), 0);
    assert.deepEqual(markerLines(node), ["21-started"]);
    assert.match(proc.log(), /"event":"run_finished".*"result":"interrupted"/);
  });
});
