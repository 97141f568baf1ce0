// One push to many in-process agents with a fault injected after the Nth successful put, then
// the operator's remedy for puts that still failed (push those hosts again, new ids), then the
// proof: every agent converged on its last pushed id and executed it exactly once.
import assert from "node:assert/strict";
import type { Agent } from "../../agent/agent.ts";
import type { PushSummary } from "../../coordinator/push.ts";
import { waitFor } from "../helpers/fleet.ts";
import type { Node } from "../helpers/fleet.ts";
import { executedRuns, markerIds, markerPlan } from "./support.ts";
import type { Coordinator } from "./support.ts";

export interface FaultyPush {
  first: PushSummary;
  /** Hosts pushed a second time because their put failed after every retry. */
  repushed: number;
  /** ms from the start of the push until every agent applied its id. */
  convergedMs: number;
  /** Date.now() when the fault finished (the server restarted, or the node died). */
  faultDoneAt: number;
  convergedAt: number;
}

/** Push to every node (2 puts at a time), run `fault` once `afterPuts` puts succeeded, converge, verify. */
export const pushThroughFault = async (
  coordinator: Coordinator,
  nodes: Node[],
  agents: Agent[],
  opts: { afterPuts: number; fault: () => Promise<void>; timeoutMs: number },
): Promise<FaultyPush> => {
  let puts = 0;
  let fault: Promise<void> | null = null;
  let faultDoneAt = 0;
  const started = Date.now();
  const first = await coordinator.push(nodes, (n) => markerPlan(n, "under fault"), {
    concurrency: 2,
    emit: (e) => {
      if (e.event === "put" && ++puts === opts.afterPuts) fault = opts.fault().then(() => void (faultDoneAt = Date.now()));
    },
  });
  assert.ok(fault, "the fault was injected during the push");
  await fault;
  const expected = new Map(first.targets.map((r) => [r.host, r.id!]));
  const failed = nodes.filter((n) => first.targets.find((r) => r.host === n.host)!.outcome !== "pushed");
  if (failed.length > 0) {
    const again = await coordinator.push(failed, (n) => markerPlan(n, "pushed again"));
    assert.ok(again.ok, JSON.stringify(again.counts));
    for (const r of again.targets) expected.set(r.host, r.id!);
  }
  await waitFor(
    () => agents.every((a) => a.ledger.lastSuccess()?.id === expected.get(a.hostname)),
    opts.timeoutMs,
    "every agent to converge",
  );
  const convergedAt = Date.now();
  await Promise.all(agents.map((a) => a.idle()));
  for (const [i, node] of nodes.entries()) {
    assert.deepEqual(
      executedRuns(agents[i]!.ledger).map((r) => [r.id, r.state]),
      [[expected.get(node.host), "succeeded"]],
      node.host,
    );
    assert.deepEqual(markerIds(node), [expected.get(node.host)], `${node.host}: one marker line per run`);
  }
  return { first, repushed: failed.length, convergedMs: convergedAt - started, faultDoneAt, convergedAt };
};
