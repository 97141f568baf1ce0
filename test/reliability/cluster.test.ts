// A 3-node nats-server cluster with the KV buckets replicated 3 times (issue 7 item 3): the
// node leading the plan bucket is killed with SIGKILL in the middle of a push to 20 agents, the
// other two elect a new leader, and every agent converges, each plan run exactly once.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { Agent } from "../../agent/agent.ts";
import { createFeed } from "../../agent/store/select.ts";
import { createNatsStore } from "../../coordinator/store/nats-store.ts";
import { createLogger, silentLogger } from "../../shared/log.ts";
import { STORE_DEFAULTS } from "../../shared/store-config.ts";
import { createNode, createWorld, startInProcess, waitFor } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { freePort } from "../helpers/ports.ts";
import { pushThroughFault } from "./push-through-fault.ts";
import { createCoordinator, storeConfig } from "./support.ts";
import type { Coordinator } from "./support.ts";

const AGENTS = 20;
const KILL_AFTER_PUTS = 6;
const NAMES = ["fp-1", "fp-2", "fp-3"];

/** Three routed nats-servers (cluster `fp`), JetStream on each with its own storage dir. */
const startCluster = async (): Promise<{ servers: Map<string, NatsServer>; url: string }> => {
  const routePorts = await Promise.all(NAMES.map(() => freePort()));
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
  const settled = await Promise.allSettled(
    NAMES.map((name, i) =>
      startNats({ name, extraArgs: ["--cluster_name", "fp", "--cluster", `nats://127.0.0.1:${routePorts[i]}`, "--routes", routes] }),
    ),
  );
  const started = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  if (started.length < NAMES.length) {
    await Promise.all(started.map((s) => s.stop()));
    throw (settled.find((s) => s.status === "rejected") as PromiseRejectedResult).reason;
  }
  return { servers: new Map(NAMES.map((n, i) => [n, started[i]!])), url: started.map((s) => s.url).join(",") };
};

/** The name of the server leading the plan bucket's stream (its RAFT group leader). */
const planLeader = async (url: string): Promise<string> => {
  const nc = await connect({ servers: url.split(",") });
  try {
    const info = await (await jetstreamManager(nc)).streams.info(`KV_${STORE_DEFAULTS.planBucket}`);
    assert.equal(info.config.num_replicas, 3);
    return info.cluster!.leader!;
  } finally {
    await nc.close();
  }
};

describe("3-node NATS cluster, KV replicas 3: the bucket's leader killed during a push to 20 agents", { timeout: 150_000 }, () => {
  let cluster: { servers: Map<string, NatsServer>; url: string } | null = null;
  let world: World;
  let nodes: Node[];
  let agents: Agent[] = [];
  let coordinator: Coordinator;
  let missed = 0;
  let retries = 0;

  before(async () => {
    cluster = await startCluster();
    world = await createWorld("fleetplan-cluster-");
    const config = storeConfig(cluster.url, 3);
    // The buckets (R3) can be created once the cluster has elected its JetStream meta leader;
    // before that the store falls back to opening them, which succeeds without a stream.
    await waitFor(
      async () => {
        const store = await createNatsStore(config, { logger: silentLogger, attempts: 1 }).catch(() => null);
        await store?.close();
        return store !== null && (await planLeader(cluster!.url).catch(() => null)) !== null;
      },
      30_000,
      "the cluster to create the R3 buckets",
    );
    nodes = await Promise.all(
      Array.from({ length: AGENTS }, (_, i) =>
        createNode(world, `cluster-${i}`, cluster!.url, { metricsListen: "off", storeOptions: { replicas: 3 } }),
      ),
    );
    // Feeds log to a counter: how many notices were lost with the killed node (caught by the safety-net read, see nats-feed.ts).
    const logger = createLogger({ level: "warn", write: (line) => void (line.includes('"store_notice_missed"') && missed++) });
    agents = await Promise.all(nodes.map((n) => startInProcess(n, { feed: createFeed(n.config.store, logger) })));
    coordinator = createCoordinator(
      world,
      nodes,
      config,
      createLogger({ write: (line) => void (line.includes('"store_retry"') && retries++) }),
    );
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    coordinator?.close();
    await Promise.all([...(cluster?.servers.values() ?? [])].map((s) => s.stop()));
    world?.cleanup();
  });

  it("every agent converges, each plan ran exactly once", async (t) => {
    const leader = await planLeader(cluster!.url);
    const r = await pushThroughFault(coordinator, nodes, agents, {
      afterPuts: KILL_AFTER_PUTS,
      timeoutMs: 45_000,
      fault: () => cluster!.servers.get(leader)!.kill9(),
    });
    const survivor = await planLeader(cluster!.servers.get(NAMES.find((n) => n !== leader)!)!.url);
    assert.notEqual(survivor, leader);
    t.diagnostic(
      JSON.stringify({
        fault: "cluster_leader_kill9",
        agents: AGENTS,
        killed: leader,
        new_leader: survivor,
        put_retries: retries,
        first_push: r.first.counts,
        repushed: r.repushed,
        notices_missed: missed,
        converged_ms: r.convergedMs,
        converged_after_kill_ms: r.convergedAt - r.faultDoneAt,
      }),
    );
  });
});
