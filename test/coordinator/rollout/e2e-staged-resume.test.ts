// `rollout resume` of a rollout staged with `push --waves --stage`, end to end: the real CLI, a real
// nats-server and two real agents whose trust needs 2 of 2 admin signatures. Before approval, resume
// is refused naming `fleetplan approve S-n`; once approved and paused, resume with one admin key is
// refused naming the threshold, and with both keys (the second admin's given first) it completes.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { formatTrust } from "../../../shared/keys.ts";
import { loadAdminKey, writeNewKey } from "../../../shared/key-files.ts";
import { createCli, initWithServers, jsonLines, lastJson } from "../../helpers/cli.ts";
import type { CliResult, Fleetplan } from "../../helpers/cli.ts";
import { createNode, createWorld, startAgentProcess } from "../../helpers/fleet.ts";
import type { AgentProcess, Node, World } from "../../helpers/fleet.ts";
import { startNats } from "../../helpers/nats.ts";
import type { NatsServer } from "../../helpers/nats.ts";

const HOSTS = ["web-1", "web-2"];
const PAUSED = 5;
type Rollout = { id: number; state: string; targets: { host: string; outcome: string }[] };

describe("resuming a staged rollout needs its approval and the threshold of keys", { timeout: 150_000 }, () => {
  let nats: NatsServer;
  let world: World;
  let nodes: Node[];
  let agents: AgentProcess[] = [];
  let cli: Fleetplan;
  let bobKey: string;
  let fixed: string;

  const rolloutOf = (r: CliResult): Rollout =>
    jsonLines(r.stdout)
      .filter((l) => l.event === "rollout")
      .at(-1) as unknown as Rollout;
  const outcomes = (r: Rollout) => Object.fromEntries(r.targets.map((t) => [t.host, t.outcome]));

  before(async () => {
    nats = await startNats();
    world = await createWorld("fleetplan-e2e-staged-resume-");
    writeNewKey(join(world.dir, "bob"), "admin");
    bobKey = join(world.dir, "bob", "admin.key");
    writeFileSync(world.trustPath, formatTrust([world.admin.publicKey, loadAdminKey(bobKey).publicKey], 2));
    nodes = await Promise.all(HOSTS.map((h) => createNode(world, h, nats.url)));
    agents = await Promise.all(nodes.map((n) => startAgentProcess(n)));
    cli = createCli(world, nats.url);
    await initWithServers(cli, nodes);
    fixed = join(world.dir, "fixed");
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await nats?.stop();
    world?.cleanup();
  });

  it("refused before approval (naming approve S-n) and with one key after; two keys complete it", { timeout: 120_000 }, async () => {
    // web-1, the first wave, fails until the operator creates `fixed`.
    const dir = join(world.dir, "plans", "v1");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "web-1.sh"), `test -f ${fixed}\necho v1\n`);
    writeFileSync(join(dir, "web-2.sh"), "echo v1\n");
    const staged = lastJson<{ staged: string; rollout: number }>(
      await cli.expect([
        "push",
        "--plans",
        dir,
        "--all",
        "--waves",
        "1,100%",
        "--wave-timeout",
        "30s",
        "--stage",
        "--trust",
        world.trustPath,
        "--json",
      ]),
    );
    const id = String(staged.rollout);

    const early = await cli.run(["rollout", "resume", id, "--json"]);
    assert.equal(early.code, 2, early.stdout + early.stderr);
    const notApproved = lastJson<{ reason: string; message: string }>(early);
    assert.equal(notApproved.reason, "conflict");
    assert.match(notApproved.message, new RegExp(`staged as ${staged.staged} and not approved yet.*fleetplan approve ${staged.staged}`));
    // Even two keys cannot skip the approval: the staged envelopes are what was reviewed.
    assert.equal((await cli.run(["rollout", "resume", id, "--admin-key", world.adminKeyPath, "--admin-key", bobKey])).code, 2);
    assert.equal(rolloutOf(await cli.expect(["rollout", "show", id, "--json"])).state, "paused");

    const approved = await cli.run(["approve", staged.staged, "--admin-key", bobKey, "--json"]);
    assert.equal(approved.code, PAUSED, approved.stdout + approved.stderr);
    assert.deepEqual(outcomes(rolloutOf(approved)), { "web-1": "failed", "web-2": "pending" });

    writeFileSync(fixed, "");
    const alone = await cli.run(["rollout", "resume", id, "--json"]);
    assert.equal(alone.code, 2, alone.stdout + alone.stderr);
    assert.match(lastJson<{ message: string }>(alone).message, new RegExp(`rollout ${id} \\(${staged.staged}\\) needs 2 signatures`));
    assert.equal(rolloutOf(await cli.expect(["rollout", "show", id, "--json"])).targets[1]!.outcome, "pending", "nothing was pushed");

    const both = await cli.run(["rollout", "resume", id, "--admin-key", bobKey, "--admin-key", world.adminKeyPath, "--json"]);
    assert.equal(both.code, 0, both.stdout + both.stderr);
    const done = rolloutOf(both);
    assert.deepEqual([done.state, outcomes(done)], ["completed", { "web-1": "succeeded", "web-2": "succeeded" }]);
  });
});
