// Day-0 SSH without a server: inventory addresses to ssh arguments, the remote agent's exit
// code and reply (or the shell's and ssh's complaints) to one push outcome, and the failures
// that happen before ssh connects anywhere.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { ServerRow } from "../../coordinator/db.ts";
import { createSshDelivery, interpretApply, sshTarget } from "../../coordinator/store/ssh.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { silentLogger } from "../../shared/log.ts";

const json = (value: unknown) => `${JSON.stringify(value)}\n`;
const LOG = '{"ts":"2026-01-01T00:00:00Z","level":"info","event":"envelope_accepted"}';

describe("sshTarget", () => {
  const cases: [string, string[]][] = [
    ["root@10.0.0.1:2222", ["-p", "2222", "root@10.0.0.1"]],
    ["web-1.example.org", ["web-1.example.org"]],
    ["deploy@web-1", ["deploy@web-1"]],
    ["admin@[::1]:2200", ["-p", "2200", "admin@::1"]],
    ["[fe80::1]", ["fe80::1"]],
  ];
  for (const [spec, args] of cases) {
    it(`${spec} → ${args.join(" ")}`, () => assert.deepEqual(sshTarget(spec), args));
  }

  for (const spec of ["", "a:b:c", "host:ssh", "root@", "a@b@c:22", "-oProxyCommand=touch x", "-l@host"]) {
    it(`refuses ${JSON.stringify(spec)}`, () => {
      assert.throws(
        () => sshTarget(spec),
        (e: unknown) => e instanceof FleetplanError && e.reason === "invalid_argument" && e.message.includes("[user@]host[:port]"),
      );
    });
  }
});

describe("interpretApply", () => {
  it("reads success from the last stdout line, past other output and JSON logs on stderr", () => {
    const stdout = `some banner\n${json({ ok: true, host: "h", id: 7, result: "succeeded" })}`;
    assert.deepEqual(interpretApply("h", 0, stdout, `${LOG}\n`), { outcome: "succeeded", reason: null, message: null });
  });

  it("counts an envelope the agent already applied as success, naming it a duplicate", () => {
    assert.deepEqual(interpretApply("h", 0, json({ ok: true, id: 7, reason: "duplicate", message: "id 7 already applied" }), ""), {
      outcome: "succeeded",
      reason: "duplicate",
      message: null,
    });
  });

  it("passes a verification rejection on with the agent's reason code", () => {
    const stdout = json({
      ok: false,
      host: "h",
      id: 7,
      reason: "untrusted_signer",
      message: "0 valid signature(s) from distinct trusted keys, 1 required",
    });
    assert.deepEqual(interpretApply("h", 3, stdout, LOG), {
      outcome: "rejected",
      reason: "untrusted_signer",
      message: "0 valid signature(s) from distinct trusted keys, 1 required",
    });
  });

  it("does not call the agent's own error a rejection of the envelope", () => {
    const stdout = json({
      ok: false,
      reason: "invalid_config",
      message: "invalid agent configuration:\n  - config: /etc/fleetplan/agent.json does not exist",
    });
    assert.deepEqual(interpretApply("h", 2, stdout, ""), {
      outcome: "ssh_failed",
      reason: "invalid_config",
      message: "invalid agent configuration:\n  - config: /etc/fleetplan/agent.json does not exist",
    });
  });

  it("reports a failed run with its failing step, and an interrupted one as interrupted", () => {
    assert.deepEqual(interpretApply("h", 1, json({ ok: false, id: 7, result: "failed", failed_step: "install nginx" }), ""), {
      outcome: "failed",
      reason: "failed",
      message: "step install nginx failed",
    });
    assert.deepEqual(interpretApply("h", 1, json({ ok: false, id: 7, result: "interrupted", failed_step: null }), ""), {
      outcome: "interrupted",
      reason: "interrupted",
      message: null,
    });
  });

  it("keeps a failed run failed when a step's complaint about a missing file reaches stderr", () => {
    const result = interpretApply(
      "h",
      1,
      json({ ok: false, id: 7, result: "failed", failed_step: "copy" }),
      "cp: cannot stat '/srv/a': No such file or directory\n",
    );
    assert.deepEqual(result, { outcome: "failed", reason: "failed", message: "step copy failed" });
  });

  const missing: [string, number, string][] = [
    ["bash", 127, "bash: line 1: fleetplan-agent: command not found\n"],
    ["an absolute path", 127, "bash: line 1: /opt/fleetplan/bin/fleetplan-agent: No such file or directory\n"],
    ["tcsh", 1, "fleetplan-agent: Command not found.\n"],
  ];
  for (const [shell, code, stderr] of missing) {
    it(`names a missing agent (${shell})`, () => {
      const result = interpretApply("web-1", code, "", stderr);
      assert.deepEqual([result.outcome, result.reason], ["ssh_failed", "agent_missing"]);
      assert.equal(result.message, `fleetplan-agent is not installed on web-1 (${stderr.trim()})`);
    });
  }

  it("names ssh's own failure by its last complaint, ignoring JSON lines", () => {
    const stderr =
      "@@@@@@@@\nHost key for [127.0.0.1]:2222 has changed and you have requested strict checking.\nHost key verification failed.\n";
    assert.deepEqual(interpretApply("h", 255, "", stderr), {
      outcome: "ssh_failed",
      reason: "ssh_failed",
      message: "ssh to h: Host key verification failed.",
    });
    assert.deepEqual(interpretApply("h", 255, "", `ssh: connect to host 10.0.0.1 port 22: Connection refused\n${LOG}\n`), {
      outcome: "ssh_failed",
      reason: "ssh_failed",
      message: "ssh to h: ssh: connect to host 10.0.0.1 port 22: Connection refused",
    });
    assert.deepEqual(interpretApply("h", 255, "", ""), {
      outcome: "ssh_failed",
      reason: "ssh_failed",
      message: "ssh to h: connection failed",
    });
  });

  it("fails a delivery without a readable reply, with the exit code and the last complaint", () => {
    assert.deepEqual(interpretApply("h", 1, "", "Error: Cannot find module '/opt/x.mjs'\nNode.js v20.20.2\n"), {
      outcome: "ssh_failed",
      reason: "ssh_failed",
      message: "h: no result from the agent (exit 1): Node.js v20.20.2",
    });
    assert.deepEqual(interpretApply("h", 0, '{"ok":tru\n', ""), {
      outcome: "ssh_failed",
      reason: "ssh_failed",
      message: "h: no result from the agent (exit 0): ",
    });
    assert.deepEqual(interpretApply("h", 2, "h: provisioning id 7 succeeded\n", ""), {
      outcome: "ssh_failed",
      reason: "ssh_failed",
      message: "h: no result from the agent (exit 2): ",
    });
  });
});

describe("createSshDelivery before connecting", () => {
  const server = (ssh: string | null): ServerRow => ({
    host: "h",
    nodeKey: "",
    nodeKeyId: "",
    metricsUrl: null,
    ssh,
    group: null,
    bootstrapped: false,
    addedAt: 0,
  });
  const envelope = new Uint8Array([1, 2, 3]);

  it("names a missing ssh client instead of blaming the agent", async () => {
    const empty = mkdtempSync(join(tmpdir(), "fleetplan-nossh-"));
    const path = process.env.PATH;
    process.env.PATH = empty;
    try {
      const result = await createSshDelivery({ logger: silentLogger })(server("root@127.0.0.1:22"), envelope);
      assert.deepEqual([result.outcome, result.reason], ["ssh_failed", "ssh_failed"]);
      assert.match(result.message ?? "", /^ssh to h: spawn ssh ENOENT/);
    } finally {
      process.env.PATH = path;
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it("refuses a server without an ssh address", async () => {
    await assert.rejects(
      createSshDelivery({ logger: silentLogger })(server(null), envelope),
      (e: unknown) => e instanceof FleetplanError && e.reason === "invalid_argument" && e.message.includes("server add --ssh"),
    );
  });
});
