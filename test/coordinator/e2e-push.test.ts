// `fleetplan push` end to end: the real CLI, a real nats-server and three real agent processes.
// Dry runs send nothing and predict the real push; --wait follows the agents to their outcome;
// a failing plan fails only its host; ids keep increasing when the clock goes back, and a
// second coordinator's lower id never replaces the store's newer envelope.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openCoordinatorDb } from "../../coordinator/db.ts";
import type { CoordinatorDb } from "../../coordinator/db.ts";
import { validateServerInput } from "../../coordinator/inventory.ts";
import { loadPlanFile } from "../../coordinator/plan-source.ts";
import { push } from "../../coordinator/push.ts";
import type { PushEvent, PushSummary, TargetResult } from "../../coordinator/push.ts";
import { createNatsStore } from "../../coordinator/store/nats-store.ts";
import { parseEnvelope } from "../../shared/envelope.ts";
import { silentLogger } from "../../shared/log.ts";
import { normalizeStoreConfig } from "../../shared/store-config.ts";
import type { PlanStore } from "../../shared/types.ts";
import { createCli, initWithServers, lastJson } from "../helpers/cli.ts";
import type { Fleetplan } from "../helpers/cli.ts";
import { createNode, createWorld, startAgentProcess } from "../helpers/fleet.ts";
import type { AgentProcess, Node, World } from "../helpers/fleet.ts";
import { openPlanBucket } from "../helpers/kv.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";

const HOSTS = ["web-1", "web-2", "web-3"];
type Summary = PushSummary & { event: "summary" };

describe("push end to end, three real agents", { timeout: 90_000 }, () => {
  let nats: NatsServer;
  let world: World;
  let nodes: Node[];
  let agents: AgentProcess[] = [];
  let cli: Fleetplan;
  let bucket: Awaited<ReturnType<typeof openPlanBucket>>;
  let plans: string;

  // One plan file per host in a --plans directory.
  const writePlans = (scripts: Record<string, string>) => {
    for (const [host, script] of Object.entries(scripts)) writeFileSync(join(plans, `${host}.sh`), script);
  };
  const pushJson = async (args: string[], code: number): Promise<Summary> =>
    lastJson<Summary>(await cli.expect(["push", "--plans", plans, "--all", "--json", ...args], code));
  const decisions = (s: PushSummary) =>
    s.targets.map((t) => ({ host: t.host, action: t.action, decision: t.decision, plan_hash: t.plan_hash }));
  const byHost = (s: PushSummary) => new Map<string, TargetResult>(s.targets.map((t) => [t.host, t]));

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-e2e-push-");
    nodes = await Promise.all(HOSTS.map((h) => createNode(world, h, nats.url)));
    agents = await Promise.all(nodes.map((n) => startAgentProcess(n)));
    cli = createCli(world, nats.url);
    await initWithServers(cli, nodes);
    bucket = await openPlanBucket(nats.url);
    plans = join(world.dir, "plans");
    mkdirSync(plans);
  });
  after(async () => {
    await bucket?.close();
    await Promise.all(agents.map((a) => a.stop()));
    await nats?.stop();
    world?.cleanup();
  });

  it("a dry run sends nothing and predicts the push that follows, which converges every agent", async () => {
    writePlans(Object.fromEntries(HOSTS.map((h) => [h, `echo "${h} v1"\n`])));
    const dry = await pushJson(["--dry-run"], 0);
    assert.equal(dry.dry_run, true);
    assert.equal(dry.push_id, null);
    assert.deepEqual(dry.counts, { would_push: 3 });
    // --wait changes nothing in a dry run: there is nothing to wait for, and would_push is a success.
    const dryWait = await pushJson(["--dry-run", "--wait", "--timeout", "30s"], 0);
    assert.deepEqual([dryWait.ok, dryWait.counts, decisions(dryWait)], [true, { would_push: 3 }, decisions(dry)]);
    assert.deepEqual(await bucket.revisions(HOSTS), { "web-1": null, "web-2": null, "web-3": null });

    const real = await pushJson(["--wait", "--timeout", "30s"], 0);
    assert.equal(real.ok, true);
    assert.deepEqual(real.counts, { succeeded: 3 });
    assert.deepEqual(decisions(real), decisions(dry));
    assert.deepEqual(
      decisions(real).map((d) => d.decision),
      ["new", "new", "new"],
    );
    for (const t of real.targets) {
      const predicted = byHost(dry).get(t.host)!.id!;
      // The id comes from the clock: equal unless a second passed between the two commands.
      assert.ok(t.id! >= predicted, `${t.host}: real id ${t.id} < dry-run id ${predicted}`);
    }
    const revisions = await bucket.revisions(HOSTS);
    assert.ok(
      HOSTS.every((h) => typeof revisions[h] === "number"),
      JSON.stringify(revisions),
    );
    // A dry run seals too: its bytes are the size of the envelope the push then stored.
    for (const h of HOSTS) {
      const stored = (await bucket.kv.get(h))!.value.length;
      assert.deepEqual([byHost(dry).get(h)!.bytes, byHost(real).get(h)!.bytes], [stored, stored], h);
    }
  });

  it("a dry run with one changed plan predicts one push and two skips; the real push does exactly that", async () => {
    writePlans({ "web-1": 'echo "web-1 v2"\n' });
    const before = await bucket.revisions(HOSTS);
    const dry = await pushJson(["--dry-run"], 0);
    assert.deepEqual(await bucket.revisions(HOSTS), before, "a dry run must not write to the store");
    assert.deepEqual(
      decisions(dry).map(({ host, action, decision }) => [host, action, decision]),
      [
        ["web-1", "push", "changed"],
        ["web-2", "skip", "converged"],
        ["web-3", "skip", "converged"],
      ],
    );

    const real = await pushJson(["--wait", "--timeout", "30s"], 0);
    assert.deepEqual(decisions(real), decisions(dry));
    assert.deepEqual(real.counts, { succeeded: 1, skipped: 2 });
    const [dryWeb1, realWeb1] = [byHost(dry).get("web-1")!, byHost(real).get("web-1")!];
    assert.ok(realWeb1.id! >= dryWeb1.id!, `real id ${realWeb1.id} < dry-run id ${dryWeb1.id}`);
    // Skipped targets keep their id, seal nothing (no bytes), and their envelopes stay untouched.
    for (const h of ["web-2", "web-3"]) assert.equal(byHost(real).get(h)!.id, byHost(dry).get(h)!.id);
    for (const h of ["web-2", "web-3"]) assert.deepEqual([byHost(dry).get(h)!.bytes, byHost(real).get(h)!.bytes], [null, null]);
    const afterPush = await bucket.revisions(HOSTS);
    assert.ok(afterPush["web-1"]! > before["web-1"]!);
    assert.deepEqual([afterPush["web-2"], afterPush["web-3"]], [before["web-2"], before["web-3"]]);
  });

  it("a plan that fails on one agent fails the push for that host only, and history records it", async () => {
    writePlans({ "web-1": 'echo "web-1 v3"\n', "web-2": 'echo "about to fail" >&2\nexit 7\n', "web-3": 'echo "web-3 v3"\n' });
    const summary = await pushJson(["--wait", "--timeout", "30s"], 1);
    assert.equal(summary.ok, false);
    const outcomes = summary.targets.map((t) => [t.host, t.outcome]);
    assert.deepEqual(outcomes, [
      ["web-1", "succeeded"],
      ["web-2", "failed"],
      ["web-3", "succeeded"],
    ]);

    const history = lastJson<{ push_id: number; host: string; id: number; outcome: string }[]>(
      await cli.expect(["history", "web-2", "--json", "--limit", "1"]),
    );
    assert.equal(history.length, 1);
    assert.deepEqual(
      { push_id: history[0]!.push_id, host: history[0]!.host, id: history[0]!.id, outcome: history[0]!.outcome },
      { push_id: summary.push_id, host: "web-2", id: byHost(summary).get("web-2")!.id, outcome: "failed" },
    );
    // Each target has two rows: pushed as soon as the put succeeded, then its final outcome.
    const all = lastJson<{ push_id: number; host: string; outcome: string }[]>(await cli.expect(["history", "--json"]));
    assert.deepEqual(
      all
        .filter((r) => r.push_id === summary.push_id)
        .map((r) => `${r.host} ${r.outcome}`)
        .sort(),
      ["web-1 pushed", "web-1 succeeded", "web-2 failed", "web-2 pushed", "web-3 pushed", "web-3 succeeded"],
    );
  });
});

describe("push() ids: against the clock, and against another coordinator", { timeout: 30_000 }, () => {
  let nats: NatsServer;
  let world: World;
  let store: PlanStore;
  let bucket: Awaited<ReturnType<typeof openPlanBucket>>;

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-e2e-ids-");
    store = await createNatsStore(normalizeStoreConfig({ url: nats.url }, []), { logger: silentLogger, attempts: 1 });
    bucket = await openPlanBucket(nats.url);
  });
  after(async () => {
    await bucket?.close();
    await store?.close();
    await nats?.stop();
    world?.cleanup();
  });

  /** push() of one script to `node` from the coordinator database `db`, its clock at `iso`. */
  const pushScript = (db: CoordinatorDb, node: Node, iso: string, script: string, emit: (e: PushEvent) => void = () => {}) => {
    if (!db.servers().some((s) => s.host === node.host))
      db.addServers([validateServerInput({ host: node.host, node_key: node.nodePubPath })]);
    const file = join(world.dir, `${node.host}-${iso.replace(/:/g, "")}.sh`);
    writeFileSync(file, script);
    return push(
      {
        targets: db.servers(),
        plans: new Map([[node.host, loadPlanFile(file)]]),
        dryRun: false,
        force: false,
        wait: false,
        waitTimeoutMs: 1000,
        expiresInMs: 3_600_000,
        concurrency: 1,
        viaSsh: false,
      },
      {
        db,
        store: async () => store,
        storeName: nats.url,
        signers: [world.admin],
        now: () => new Date(iso),
        converged: async () => new Set(),
        emit,
        operator: "test",
      },
    );
  };
  const storedId = async (host: string) => parseEnvelope((await bucket.kv.get(host))!.value).header.id;

  it("a second push an hour earlier by the clock still gets a larger id, in the database and in the envelope", async () => {
    const node = await createNode(world, "clock-1", nats.url);
    const db = openCoordinatorDb(join(world.dir, "ids.db"));
    try {
      const pushAt = async (iso: string, script: string) => {
        const events: PushEvent[] = [];
        const summary = await pushScript(db, node, iso, script, (e) => events.push(e));
        assert.deepEqual(summary.counts, { pushed: 1 }, JSON.stringify(events));
        return { id: summary.targets[0]!.id!, envelopeId: await storedId(node.host) };
      };
      const first = await pushAt("2031-05-06T12:00:00Z", "echo one\n");
      const second = await pushAt("2031-05-06T11:00:00Z", "echo two\n");
      assert.equal(first.id, 20310506120000);
      assert.equal(second.id, first.id + 1);
      assert.deepEqual([first.envelopeId, second.envelopeId], [first.id, second.id]);
      assert.equal(db.expected().get(node.host)!.id, second.id);
    } finally {
      db.close();
    }
  });

  it("a second coordinator whose id is lower than the store's gets `superseded` and replaces nothing", async () => {
    const node = await createNode(world, "race-1", nats.url);
    const [a, b] = ["coordinator-a.db", "coordinator-b.db"].map((f) => openCoordinatorDb(join(world.dir, f))) as [
      CoordinatorDb,
      CoordinatorDb,
    ];
    try {
      const first = await pushScript(a, node, "2032-01-01T12:00:00Z", "echo a\n");
      assert.deepEqual(first.counts, { pushed: 1 });
      // Its own database knows nothing of the first push: its id, an hour earlier, is lower.
      const second = await pushScript(b, node, "2032-01-01T11:00:00Z", "echo b\n");
      assert.equal(second.ok, false);
      assert.deepEqual(second.counts, { superseded: 1 });
      assert.equal(second.targets[0]!.reason, "superseded");
      assert.match(second.targets[0]!.message ?? "", new RegExp(`holds id ${first.targets[0]!.id}`));
      assert.equal(await storedId(node.host), first.targets[0]!.id);
      assert.equal(b.expected().get(node.host), undefined, "a refused put moves no expectation");
    } finally {
      a.close();
      b.close();
    }
  });
});
