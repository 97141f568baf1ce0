// The two-person rule end to end: the real CLI, a real nats-server and two real agents whose trust
// file requires 2 of 2 admin signatures. A staged push is invisible to the agents until a second
// admin approves it; the admin who staged cannot approve alone; an overtaken or expired staged
// change is refused with the fix; `staged` lists what waits.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openCoordinatorDb } from "../../coordinator/db.ts";
import { formatTrust } from "../../shared/keys.ts";
import { loadAdminKey, writeNewKey } from "../../shared/key-files.ts";
import type { AdminKeyPair } from "../../shared/types.ts";
import { createCli, initWithServers, jsonLines, lastJson } from "../helpers/cli.ts";
import type { Fleetplan } from "../helpers/cli.ts";
import { createNode, createWorld, startAgentProcess } from "../helpers/fleet.ts";
import type { AgentProcess, Node, World } from "../helpers/fleet.ts";
import { openPlanBucket } from "../helpers/kv.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";

const HOSTS = ["web-1", "web-2"];
type Staged = {
  staged: string;
  state: string;
  signers: string[];
  threshold: number;
  hosts: { host: string; id: number; plan_hash: string; change: string }[];
};

describe("two-person rule: push --stage, staged, approve", { timeout: 180_000 }, () => {
  let nats: NatsServer;
  let world: World;
  let nodes: Node[];
  let agents: AgentProcess[] = [];
  let cli: Fleetplan;
  let bob: AdminKeyPair;
  let bobKey: string;
  let bucket: Awaited<ReturnType<typeof openPlanBucket>>;

  /** A fresh --plans directory: each host writes `label` into its file root. */
  const writePlans = (label: string): string => {
    const dir = join(world.dir, "plans", label);
    mkdirSync(dir, { recursive: true });
    for (const n of nodes) writeFileSync(join(dir, `${n.host}.sh`), `echo ${label} > ${join(n.root, "ran")}\n`);
    return dir;
  };
  const ran = (n: Node): string | null => (existsSync(join(n.root, "ran")) ? readFileSync(join(n.root, "ran"), "utf8").trim() : null);
  const stage = async (label: string, extra: string[] = []): Promise<Staged> =>
    lastJson<Staged>(await cli.expect(["push", "--plans", writePlans(label), "--stage", "--trust", world.trustPath, "--json", ...extra]));
  const waiting = async (): Promise<Staged[]> => JSON.parse((await cli.expect(["staged", "--json"])).stdout) as Staged[];

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-e2e-staged-");
    writeNewKey(join(world.dir, "bob"), "admin");
    bobKey = join(world.dir, "bob", "admin.key");
    bob = loadAdminKey(bobKey);
    // The agents need both admins: threshold 2 of {alice (the world's admin), bob}.
    writeFileSync(world.trustPath, formatTrust([world.admin.publicKey, bob.publicKey], 2));
    nodes = await Promise.all(HOSTS.map((h) => createNode(world, h, nats.url)));
    agents = await Promise.all(nodes.map((n) => startAgentProcess(n)));
    cli = createCli(world, nats.url);
    await initWithServers(cli, nodes);
    bucket = await openPlanBucket(nats.url);
  });
  after(async () => {
    await bucket?.close();
    await Promise.all(agents.map((a) => a.stop()));
    await nats?.stop();
    world?.cleanup();
  });

  it("a staged push is invisible to agents; its stager cannot approve alone; a second admin's approval converges", {
    timeout: 90_000,
  }, async () => {
    const refused = await cli.run(["push", "--plans", writePlans("v0"), "--all", "--stage", "--json"]);
    assert.equal(refused.code, 2);
    assert.match(lastJson<{ message: string }>(refused).message, /--stage needs --trust FILE/);
    const both = await cli.run([
      "push",
      "--plans",
      writePlans("v0"),
      "--stage",
      "--trust",
      world.trustPath,
      "--admin-key",
      world.adminKeyPath,
      "--admin-key",
      bobKey,
    ]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /already meet the threshold 2 .*push without --stage/);

    const s1 = await stage("v1");
    assert.equal(s1.staged, "S-1");
    assert.deepEqual(s1.signers, [world.admin.keyId]);
    assert.deepEqual(
      s1.hosts.map((h) => [h.host, h.change]),
      [
        ["web-1", "new_host"],
        ["web-2", "new_host"],
      ],
    );
    const listed = await waiting();
    assert.deepEqual(
      listed.map((s) => [s.staged, s.state, s.threshold, s.hosts.length]),
      [["S-1", "staged", 2, 2]],
    );
    const text = (await cli.expect(["staged"])).stdout;
    assert.match(text, /S-1 staged: 2 host\(s\), signed by [0-9a-f]{16} \(1 of 2 signatures\)/);
    assert.match(text, /web-1 +\d{14} +[0-9a-f]{12} +new host +store/);

    // Nothing in the store, nothing ran.
    assert.deepEqual(await bucket.revisions(HOSTS), { "web-1": null, "web-2": null });
    const alone = await cli.run(["approve", "S-1", "--json"]);
    assert.equal(alone.code, 2);
    assert.match(lastJson<{ message: string }>(alone).message, /one admin cannot approve alone/);
    assert.deepEqual(await bucket.revisions(HOSTS), { "web-1": null, "web-2": null });
    assert.deepEqual(nodes.map(ran), [null, null]);

    const approved = await cli.expect(["approve", "S-1", "--admin-key", bobKey, "--wait", "--timeout", "30s", "--json"]);
    const summary = lastJson<{ ok: boolean; signers: string[]; targets: { host: string; outcome: string; id: number }[] }>(approved);
    assert.deepEqual(summary.signers, [world.admin.keyId, bob.keyId]);
    assert.deepEqual(
      summary.targets.map((t) => [t.host, t.outcome, t.id]),
      s1.hosts.map((h) => [h.host, "succeeded", h.id]),
    );
    assert.deepEqual(nodes.map(ran), ["v1", "v1"]);
    assert.deepEqual(await waiting(), []);
    const again = await cli.run(["approve", "S-1", "--admin-key", bobKey]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /S-1 is approved; nothing to approve/);
  });

  it("a staged change overtaken by a newer push to the same host is refused; the newer one goes out", { timeout: 60_000 }, async () => {
    const s2 = await stage("v2", ["--servers", "web-1"]);
    const s3 = await stage("v3", ["--servers", "web-1"]);
    assert.deepEqual([s2.staged, s3.staged, s3.hosts[0]!.change], ["S-2", "S-3", "changed"]);
    const overtaken = await cli.run(["approve", "S-2", "--admin-key", bobKey]);
    assert.equal(overtaken.code, 2);
    assert.match(overtaken.stderr, /S-2 was overtaken by a newer push to web-1 .*discard it and stage the push again/);
    await cli.expect(["staged", "discard", "S-2"]);
    assert.deepEqual(
      (await waiting()).map((s) => s.staged),
      ["S-3"],
    );
    await cli.expect(["approve", "S-3", "--admin-key", bobKey, "--wait", "--timeout", "30s"]);
    assert.deepEqual(nodes.map(ran), ["v3", "v1"]);
  });

  it("an expired staged change is refused with the fix; a same-plan change is shown as such", { timeout: 60_000 }, async () => {
    const s4 = await stage("v3", ["--servers", "web-1", "--force"]);
    assert.deepEqual(
      s4.hosts.map((h) => h.change),
      ["same_plan"],
    );
    assert.match((await cli.expect(["staged", "show", s4.staged])).stdout, /web-1 .* same plan/);
    const db = openCoordinatorDb(cli.dbPath);
    db.sqlite.prepare("UPDATE staged SET expires_at = ? WHERE staged_id = 4").run(Date.now() - 1000);
    db.close();
    const expired = await cli.run(["approve", s4.staged, "--admin-key", bobKey]);
    assert.equal(expired.code, 2);
    assert.match(expired.stderr, /S-4 expired at .*stage the push again \(push --stage\)/);
    await cli.expect(["staged", "discard", "S-4"]);
    const discarded = await cli.run(["staged", "discard", "S-4"]);
    assert.match(discarded.stderr, /S-4 is discarded; only a staged change can be discarded/);
  });

  it("a staged rollout waits paused, then runs wave by wave once a second admin approves it", { timeout: 60_000 }, async () => {
    const s5 = await stage("v5", ["--all", "--waves", "1,100%", "--wave-timeout", "30s"]);
    assert.equal(s5.staged, "S-5");
    const rollout = (s5 as unknown as { rollout: number }).rollout;
    assert.ok(rollout > 0);
    assert.match(
      (await cli.expect(["rollout", "show", String(rollout)])).stdout,
      /paused at wave 1\/2: staged as S-5: `fleetplan approve S-5`/,
    );
    assert.deepEqual(nodes.map(ran), ["v3", "v1"]);
    const refused = await cli.run(["approve", "S-5"]);
    assert.match(refused.stderr, /one admin cannot approve alone/);
    const approved = await cli.expect(["approve", "S-5", "--admin-key", bobKey, "--json"]);
    const waves = jsonLines(approved.stdout)
      .filter((l) => l.event === "wave")
      .map((w) => `${w.wave}:${w.state}:${(w.hosts as string[]).join(",")}`);
    assert.deepEqual(waves, ["1:started:web-1", "1:converged:web-1", "2:started:web-2", "2:converged:web-2"]);
    const record = jsonLines(approved.stdout)
      .filter((l) => l.event === "rollout")
      .at(-1) as { state: string; targets: { id: number }[] };
    assert.equal(record.state, "completed");
    assert.deepEqual(
      record.targets.map((t) => t.id),
      s5.hosts.map((h) => h.id),
    );
    assert.deepEqual(nodes.map(ran), ["v5", "v5"]);
  });
});
