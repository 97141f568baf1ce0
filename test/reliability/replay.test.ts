// Replay (issue 7 item 2): everything ever published to the plan bucket, put back after the
// fleet converged (and again after the agents restart), executes nothing: each copy is counted
// `stale` or `duplicate`, marker files and ledger runs stay as they were.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Agent } from "../../agent/agent.ts";
import { createNode, createWorld, metricValue, startInProcess, waitFor } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { STORE_DEFAULTS } from "../../shared/store-config.ts";
import { allRuns, createCoordinator, markerIds, markerPlan, openRawBucket, storeConfig } from "./support.ts";
import type { Coordinator, RawBucket } from "./support.ts";

const HOSTS = ["replay-a", "replay-b", "replay-c"];
const PUSHES = 4;

describe("replay of every published envelope", { timeout: 90_000 }, () => {
  let nats: NatsServer;
  let world: World;
  let nodes: Node[];
  let agents: Agent[] = [];
  let coordinator: Coordinator;
  let kv: RawBucket;
  const recorded: { host: string; bytes: Uint8Array }[] = [];
  const pushed = new Map<string, number[]>();

  const rejected = async (node: Node) =>
    ((await metricValue(node, 'fleetplan_agent_envelopes_total{result="stale"}')) ?? 0) +
    ((await metricValue(node, 'fleetplan_agent_envelopes_total{result="duplicate"}')) ?? 0);
  const snapshot = () =>
    nodes.map((n, i) => ({
      markers: markerIds(n),
      runs: JSON.stringify(allRuns(agents[i]!.ledger)),
      hwm: agents[i]!.ledger.highWaterMark(),
    }));
  // The agent reads only the latest value of its key, so copies put back faster than it reads are
  // never judged at all: put each one back once the previous was counted, so each is judged.
  const replayAll = async (counted: (host: string) => number | Promise<number>) => {
    for (const r of recorded) {
      const base = await counted(r.host);
      await kv.put(r.host, r.bytes);
      await waitFor(async () => (await counted(r.host)) === base + 1, 15_000, `the replay to ${r.host} to be counted`);
    }
  };
  const nodeOf = (host: string) => nodes.find((n) => n.host === host)!;

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-replay-");
    nodes = await Promise.all(HOSTS.map((h) => createNode(world, h, nats.url)));
    agents = await Promise.all(nodes.map((n) => startInProcess(n)));
    kv = await openRawBucket(nats.url);
    // A wiretap on the bucket's subjects sees every put, whoever makes it, as an attacker would.
    const tap = kv.nc.subscribe(`$KV.${STORE_DEFAULTS.planBucket}.>`, {
      callback: (_e, m) => void recorded.push({ host: m.subject.split(".").pop()!, bytes: Uint8Array.from(m.data) }),
    });
    await kv.nc.flush();
    coordinator = createCoordinator(world, nodes, storeConfig(nats.url));
    for (let p = 1; p <= PUSHES; p++) {
      const summary = await coordinator.push(nodes, (n) => markerPlan(n, `push ${p}`));
      assert.ok(summary.ok, JSON.stringify(summary.counts));
      for (const t of summary.targets) pushed.set(t.host, [...(pushed.get(t.host) ?? []), t.id!]);
      await waitFor(
        () => agents.every((a, i) => a.ledger.lastSuccess()?.id === pushed.get(nodes[i]!.host)!.at(-1)),
        20_000,
        `push ${p} to converge`,
      );
    }
    await kv.nc.flush();
    tap.unsubscribe();
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await kv?.close();
    coordinator?.close();
    await nats?.stop();
    world?.cleanup();
  });

  it("converged once per push before the replay", () => {
    for (const [i, node] of nodes.entries()) {
      assert.deepEqual(markerIds(node), pushed.get(node.host));
      assert.deepEqual(
        allRuns(agents[i]!.ledger).map((r) => [r.id, r.state]),
        pushed.get(node.host)!.map((id) => [id, "succeeded"]),
      );
    }
    assert.equal(recorded.length, HOSTS.length * PUSHES, "the tap saw every put");
  });

  it("every recorded envelope put back: zero executions, each counted stale or duplicate", async () => {
    const before = snapshot();
    await replayAll((host) => rejected(nodeOf(host)));
    await Promise.all(agents.map((a) => a.idle()));
    for (const [i, node] of nodes.entries()) {
      assert.equal(
        await metricValue(node, 'fleetplan_agent_envelopes_total{result="duplicate"}'),
        1,
        "only the current envelope is a duplicate",
      );
      assert.equal(await metricValue(node, 'fleetplan_agent_envelopes_total{result="accepted"}'), PUSHES);
      assert.equal(await metricValue(node, 'fleetplan_agent_runs_total{result="succeeded"}'), PUSHES);
      assert.equal(agents[i]!.ledger.counts().stale, PUSHES - 1);
    }
    assert.deepEqual(snapshot(), before);
  });

  it("after a restart of every agent, the ledger alone refuses the same replay", async () => {
    await Promise.all(agents.map((a) => a.stop()));
    agents = await Promise.all(nodes.map((n) => startInProcess(n)));
    const refused = (host: string) => {
      const counts = agents[nodes.indexOf(nodeOf(host))]!.ledger.counts();
      return (counts.stale ?? 0) + (counts.duplicate ?? 0);
    };
    // The restarted feed first reads the latest value: the current envelope, a duplicate.
    await waitFor(() => agents.every((a) => a.ledger.counts().duplicate === 2), 15_000, "redelivery on start");
    const before = snapshot();
    await replayAll(refused);
    await Promise.all(agents.map((a) => a.idle()));
    assert.deepEqual(snapshot(), before);
    for (const node of nodes) assert.deepEqual(markerIds(node), pushed.get(node.host));
  });
});
