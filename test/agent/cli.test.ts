// `fleetplan-agent` as a real process: apply (file and stdin) through the daemon's checks and
// ledger, status/history/inspect, and the refusals of bad config and unsafe permissions.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { execa } from "execa";
import { openLedger } from "../../agent/ledger.ts";
import { interpretApply } from "../../coordinator/store/ssh.ts";
import type { Plan } from "../../shared/types.ts";
import { AGENT_BIN, createNode, createWorld, sealFor } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";
import { appendMarker, markerLines } from "../helpers/agent-scope.ts";

// Nothing in these tests connects to a store: apply, status, history and inspect work offline,
// and the refusals happen before any connection.
const NO_STORE = "nats://127.0.0.1:1";

const agentCli = async (args: string[], input?: Uint8Array) => {
  const r = await execa("node", [AGENT_BIN, ...args], { reject: false, timeout: 30_000, ...(input ? { input } : { stdin: "ignore" }) });
  assert.equal(r.timedOut, false, `fleetplan-agent ${args.join(" ")} timed out`);
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
};
const json = (stdout: string) => JSON.parse(stdout.trim()) as Record<string, unknown> & { header: Record<string, unknown> };

let world: World;
before(async () => {
  world = await createWorld();
});
after(() => world.cleanup());

describe("fleetplan-agent apply, status, history, inspect", () => {
  let node: Node;
  let config: string[];
  const fileContent = `FILE-${randomBytes(16).toString("hex")}`;
  const file = (name: string, bytes: Uint8Array) => {
    const path = join(world.dir, name);
    writeFileSync(path, bytes);
    return path;
  };
  before(async () => {
    node = await createNode(world, "cli-1", NO_STORE);
    config = ["--config", node.configPath, "--json"];
  });
  const ledgerState = () => {
    const ledger = openLedger(join(node.config.stateDir, "ledger.db"));
    try {
      return { hwm: ledger.highWaterMark(), runs: ledger.runs(100).map((r) => [r.id, r.state]) };
    } finally {
      ledger.close();
    }
  };

  test("apply FILE runs it; applying it again is a benign duplicate (exit 0), not a rerun", async () => {
    const env = file("10.fpe", sealFor(world, node, 10, appendMarker(node, "10")));
    const first = await agentCli(["apply", env, ...config]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(
      { ...json(first.stdout), duration_ms: 0, log_file: "" },
      {
        ok: true,
        host: "cli-1",
        id: 10,
        result: "succeeded",
        failed_step: null,
        duration_ms: 0,
        log_file: "",
        error: null,
      },
    );
    const again = await agentCli(["apply", env, ...config]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(json(again.stdout).ok, true);
    assert.equal(json(again.stdout).reason, "duplicate");
    assert.deepEqual(markerLines(node), ["10"]);
  });

  test("apply - reads the envelope from stdin, with the same ledger", async () => {
    const plan: Plan = {
      kind: "fleetplan/plan",
      v: 1,
      files: [{ path: join(node.root, "app.conf"), mode: 0o600, content: Buffer.from(fileContent).toString("base64") }],
      steps: [{ name: "mark", run: appendMarker(node, "11") }],
    };
    const bytes = sealFor(world, node, 11, plan);
    file("11.fpe", bytes);
    const r = await agentCli(["apply", "-", ...config], bytes);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json(r.stdout).result, "succeeded");
    const older = await agentCli(["apply", join(world.dir, "10.fpe"), ...config]);
    assert.equal(older.code, 3);
    assert.equal(json(older.stdout).reason, "stale");
    assert.deepEqual(markerLines(node), ["10", "11"]);
  });

  test("a tampered envelope exits 3 with reason bad_signature and changes nothing", async () => {
    const before = ledgerState();
    const bytes = sealFor(world, node, 12, appendMarker(node, "12"));
    bytes[bytes.length - 80]! ^= 0x01;
    const r = await agentCli(["apply", file("12-tampered.fpe", bytes), ...config]);
    assert.equal(r.code, 3, r.stderr);
    assert.deepEqual({ ok: json(r.stdout).ok, reason: json(r.stdout).reason }, { ok: false, reason: "bad_signature" });
    assert.deepEqual(ledgerState(), before);
    assert.deepEqual(markerLines(node), ["10", "11"]);
  });

  test("a duplicate of a failed run is reported as that run (exit 1, result failed), and a failed apply says why", async () => {
    const dup = await createNode(world, "cli-dup", NO_STORE);
    const dupConfig = ["--config", dup.configPath];
    const env = file("dup-20.fpe", sealFor(world, dup, 20, "exit 3"));
    const first = await agentCli(["apply", env, ...dupConfig]);
    assert.equal(first.code, 1, first.stderr);
    assert.equal(first.stdout, 'cli-dup: provisioning id 20 failed: step "script" failed: exit code 3');
    const again = await agentCli(["apply", env, ...dupConfig, "--json"]);
    assert.equal(again.code, 1, again.stderr);
    const reply = json(again.stdout);
    assert.deepEqual(
      { ...reply, message: "" },
      {
        ok: false,
        host: "cli-dup",
        id: 20,
        reason: "duplicate",
        result: "failed",
        message: "",
        failed_step: "script",
        error: 'step "script" failed: exit code 3',
      },
    );
    const text = await agentCli(["apply", env, ...dupConfig]);
    assert.equal(text.code, 1);
    assert.match(
      text.stdout,
      /^cli-dup: provisioning id 20 was already accepted and its run failed: step "script" failed: exit code 3 \(duplicate\)$/m,
    );
    // The coordinator's SSH delivery reads that reply as a failure, not a success.
    assert.equal(interpretApply("cli-dup", again.code, again.stdout, again.stderr).outcome, "failed");
  });

  test("apply and inspect of a missing file: not_found naming the path (exit 2)", async () => {
    const missing = join(world.dir, "no-such.fpe");
    for (const args of [
      ["apply", missing, ...config],
      ["inspect", missing, "--json"],
    ]) {
      const r = await agentCli(args);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.deepEqual({ ...json(r.stdout), message: "" }, { ok: false, reason: "not_found", message: "" });
      assert.equal(json(r.stdout).message, `cannot read envelope ${missing}: ENOENT`);
    }
  });

  test("status --json and history --json show what was applied", async () => {
    const status = await agentCli(["status", ...config]);
    assert.equal(status.code, 0, status.stderr);
    const s = json(status.stdout);
    assert.equal(s.accepted_id, 11);
    assert.equal(s.applied_id, 11);
    assert.equal(s.applied_hash, ledgerState().hwm.planHash);
    assert.equal((s.last_run as { state: string }).state, "succeeded");
    const history = await agentCli(["history", ...config]);
    assert.equal(history.code, 0, history.stderr);
    const runs = JSON.parse(history.stdout) as Record<string, unknown>[];
    assert.deepEqual(
      runs.map((r) => [r.id, r.state]),
      [
        [11, "succeeded"],
        [10, "succeeded"],
      ],
    );
    // snake_case with ISO 8601 times, like every other JSON output.
    const keys = [...Object.keys(runs[0]!), ...Object.keys((runs[0]!.steps as Record<string, unknown>[])[0] ?? {})];
    assert.deepEqual(
      keys.filter((k) => /[A-Z]/.test(k)),
      [],
    );
    for (const k of ["queued_at", "started_at", "finished_at", "boot_time"])
      assert.match(String(runs[0]![k]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, k);
    assert.equal(typeof runs[0]!.plan_hash, "string");
  });

  test("inspect shows header and signers; with --key it lists file paths but never their content", async () => {
    const envelope = join(world.dir, "11.fpe");
    const plain = await agentCli(["inspect", envelope, "--trust", world.trustPath, "--json"]);
    assert.equal(plain.code, 0, plain.stderr);
    const p = json(plain.stdout);
    assert.equal(p.header.id, 11);
    assert.equal(p.header.target, "cli-1");
    assert.deepEqual(p.signer_ids, [world.admin.keyId]);
    assert.deepEqual(p.verified_signers, [world.admin.keyId]);
    assert.equal(p.plan, undefined);

    const opened = await agentCli(["inspect", envelope, "--trust", world.trustPath, "--key", node.nodeKeyPath, "--json"]);
    assert.equal(opened.code, 0, opened.stderr);
    const o = json(opened.stdout) as unknown as { plan: { files: { path: string; bytes: number }[]; steps: { name: string }[] } };
    assert.deepEqual(
      o.plan.files.map((f) => [f.path, f.bytes]),
      [[join(node.root, "app.conf"), fileContent.length]],
    );
    assert.deepEqual(
      o.plan.steps.map((st) => st.name),
      ["mark"],
    );
    for (const out of [opened.stdout, opened.stderr]) {
      assert.ok(!out.includes(fileContent) && !out.includes(Buffer.from(fileContent).toString("base64")), "file content shown");
    }
  });
});

describe("fleetplan-agent refuses bad config and unsafe permissions", { concurrency: true }, () => {
  test("invalid config: exit 2 with one error listing every problem", async () => {
    const node = await createNode(world, "cli-config", NO_STORE);
    const r = await agentCli(["run", "--config", node.configPath, "--metrics-listen", "nonsense", "--state-dir", "relative"]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.match(/error:/g)?.length, 1, r.stderr);
    assert.match(r.stderr, /metrics-listen: "nonsense"/);
    assert.match(r.stderr, /state-dir: "relative" must be an absolute path/);
    assert.match(r.stderr, /\(invalid_config\)/);
  });

  test("a node key readable by others: exit 2 naming the file and chmod 600", async () => {
    const node = await createNode(world, "cli-key", NO_STORE);
    chmodSync(node.nodeKeyPath, 0o644);
    const r = await agentCli(["run", "--config", node.configPath]);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(node.nodeKeyPath), r.stderr);
    assert.ok(r.stderr.includes(`chmod 600 ${node.nodeKeyPath}`), r.stderr);
  });

  test("a state dir writable by others: refused, naming the dir and chmod 700", async () => {
    const node = await createNode(world, "cli-state", NO_STORE);
    mkdirSync(node.config.stateDir, { recursive: true });
    chmodSync(node.config.stateDir, 0o777);
    const r = await agentCli(["run", "--config", node.configPath]);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(`state dir ${node.config.stateDir} is writable by group or others`), r.stderr);
    assert.ok(r.stderr.includes(`chmod 700 ${node.config.stateDir}`), r.stderr);
  });
});
