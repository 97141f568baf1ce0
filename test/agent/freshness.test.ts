// Freeze detection against a real nats-server: `fleetplan heartbeat` signs a freshness record per
// host, the agent verifies it and exports its expiry and whether it names an id the agent never
// received (a withheld push); a delivered push clears it, an expired record shows as expired, and a
// replayed older record or one signed by an untrusted key changes nothing.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { main } from "../../coordinator/cli/main.ts";
import { openCoordinatorDb } from "../../coordinator/db.ts";
import { signFreshness } from "../../shared/freshness.ts";
import { generateAdminKey } from "../../shared/keys.ts";
import { freshKey } from "../../shared/trust-layout.ts";
import { startKvScope, waitMetric } from "../helpers/agent-scope.ts";
import type { Node } from "../helpers/fleet.ts";
import { metricValue, sealFor } from "../helpers/fleet.ts";
import { waitFor } from "../helpers/ports.ts";

const EXPIRES = "fleetplan_agent_freshness_expires_timestamp_seconds";
const MISSING = "fleetplan_agent_missing_update";

describe("freshness records and missing updates (real nats-server)", { timeout: 90_000 }, () => {
  let scope: Awaited<ReturnType<typeof startKvScope>>;
  let nc: NatsConnection;
  let plans: KV;
  let node: Node;
  let db: string;
  let cli: (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

  before(async () => {
    scope = await startKvScope();
    nc = await connect({ servers: scope.nats.url });
    plans = await new Kvm(nc).open("fleetplan-plans");
    db = join(scope.world.dir, "coord", "fleetplan.db");
    cli = async (args) => {
      let stdout = "";
      let stderr = "";
      const common = ["--db", db, "--store", scope.nats.url, "--admin-key", scope.world.adminKeyPath, "--json"];
      const code = await main([...args, ...common], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
      return { code, stdout, stderr };
    };
    node = await scope.node("web-1");
    assert.equal((await cli(["init"])).code, 0);
    const added = await cli(["server", "add", "web-1", "--node-key", node.nodePubPath]);
    assert.equal(added.code, 0, added.stderr);
  });

  after(async () => {
    await nc?.close();
    await scope?.cleanup();
  });

  it("the inventory refuses a host name that would collide with the trust and freshness keys", { timeout: 10_000 }, async () => {
    const reserved = await cli(["server", "add", "_fresh.web-1", "--node-key", node.nodePubPath]);
    assert.equal(reserved.code, 2);
    assert.match(reserved.stdout + reserved.stderr, /reserved/);
  });

  it("an id issued but never delivered shows as a missing update until the push arrives", { timeout: 30_000 }, async () => {
    const agent = await scope.agent(node);
    assert.equal(await metricValue(node, MISSING), 0);
    assert.equal(await metricValue(node, EXPIRES), 0);
    // A push whose envelope the store withheld: the id is issued, nothing reaches the agent.
    const coordinatorDb = openCoordinatorDb(db);
    const id = coordinatorDb.issueId("web-1", new Date());
    coordinatorDb.close();
    const before = Date.now();
    const beat = await cli(["heartbeat", "--all", "--expires", "1h"]);
    assert.equal(beat.code, 0, beat.stderr);
    assert.equal(JSON.parse(beat.stdout).hosts, 1);
    await waitMetric(node, MISSING, (v) => v === 1);
    const expires = (await metricValue(node, EXPIRES))!;
    assert.ok(expires >= before / 1000 + 3600 && expires <= Date.now() / 1000 + 3600, `expires ${expires}`);

    await scope.kv.put(node.host, sealFor(scope.world, node, id, "true"));
    await waitFor(() => agent.ledger.highWaterMark().id === id, 10_000, "the push delivered");
    assert.equal(await metricValue(node, MISSING), 0);
    await agent.stop();
  });

  it("an expired record shows its past expiry; a replayed older one and an untrusted one change nothing", { timeout: 30_000 }, async () => {
    const agent = await scope.agent(node);
    await waitMetric(node, EXPIRES, (v) => v !== null && v > 0);
    const older = (await plans.get(freshKey("web-1")))!.value;
    await sleep(5); // the next record's `issued` must be later
    assert.equal((await cli(["heartbeat", "--servers", "web-1", "--expires", "1s"])).code, 0);
    await waitMetric(node, EXPIRES, (v) => v !== null && v < Date.now() / 1000 + 2);
    await sleep(1_100);
    const expired = (await metricValue(node, EXPIRES))!;
    assert.ok(expired < Date.now() / 1000, "the record has expired: FleetplanFreshnessExpired's condition holds");

    await plans.put(freshKey("web-1"), older);
    const forged = { host: "web-1", latest_id: 99_999_999_999_999, issued: Date.now(), expires: Date.now() + 86_400_000 };
    await sleep(500);
    await plans.put(freshKey("web-1"), signFreshness(forged, [generateAdminKey()]));
    await sleep(1_000);
    assert.equal(await metricValue(node, EXPIRES), expired);
    assert.equal(await metricValue(node, MISSING), 0);
    await agent.stop();
  });
});
