// The whole workflow with least-privilege credentials: `store credentials`, a nats-server started
// with the generated nats-server.conf, `store init` and `push --wait` with `--creds`, and a real
// `fleetplan-agent run` whose agent.json names its host's credsFile. Without credentials the
// server refuses everyone.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { PushSummary } from "../../coordinator/push.ts";
import { AGENT_BIN, createCli, initWithServers, lastJson } from "../helpers/cli.ts";
import type { Fleetplan } from "../helpers/cli.ts";
import { createNode, createWorld } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { freePort, waitListening } from "../helpers/ports.ts";

describe("push --wait with per-host NATS credentials", { timeout: 120_000 }, () => {
  let world: World;
  let nats: NatsServer;
  let node: Node;
  let cli: Fleetplan;
  let agent: ReturnType<typeof spawn> | undefined;
  let agentLog = "";
  let out: string;

  before(async () => {
    world = await createWorld("fleetplan-creds-e2e-");
    out = join(world.dir, "creds");
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    node = await createNode(world, "host-a", url);
    cli = createCli(world, url);
    await initWithServers(cli, [node]);
    await cli.expect(["store", "credentials", "--out", out, "--json"]);
    nats = await startNats({ port, configFile: join(out, "nats-server.conf") });
    // The node's credentials, as the operator installs them: storeOptions.credsFile in agent.json.
    const config = JSON.parse(readFileSync(node.configPath, "utf8")) as Record<string, unknown>;
    writeFileSync(node.configPath, JSON.stringify({ ...config, storeOptions: { credsFile: join(out, "hosts", "host-a.creds") } }));
  });

  after(async () => {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((r) => agent!.once("exit", r));
      agent.kill("SIGTERM");
      await exited;
    }
    await nats?.stop();
    world?.cleanup();
  });

  it("without credentials the server refuses the coordinator (exit 4, authorization violation)", async () => {
    const result = await cli.run(["store", "init", "--json"]);
    assert.equal(result.code, 4, result.stdout + result.stderr);
    assert.match(result.stdout + result.stderr, /Authorization Violation/i);
  });

  it("store init and push --wait with --creds converge a real agent that holds only its own credentials", async () => {
    const creds = ["--creds", join(out, "coordinator.creds")];
    await cli.expect(["store", "init", "--json", ...creds]);
    agent = spawn("node", [AGENT_BIN, "run", "--config", node.configPath], { stdio: ["ignore", "ignore", "pipe"] });
    agent.stderr!.on("data", (c: Buffer) => (agentLog += c.toString()));
    await waitListening(node.metricsPort, 20_000, "agent host-a");
    const plan = join(world.dir, "plan.sh");
    writeFileSync(plan, "echo converged\n");
    const result = await cli.run(["push", "--plan", plan, "--servers", "host-a", "--wait", "--timeout", "60s", "--json", ...creds]);
    const summary = lastJson<PushSummary>(result);
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}\nagent:\n${agentLog}`);
    assert.equal(summary.ok, true);
    assert.doesNotMatch(agentLog, /Permissions Violation/i, "the agent used nothing beyond its own subjects");
  });

  it("a missing --creds file is a usage error naming the file", async () => {
    const result = await cli.run(["store", "init", "--creds", join(out, "nope.creds")]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--creds: cannot read .*nope\.creds \(ENOENT\)/);
  });
});

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl in `dir`. */
const makeCertificates = (dir: string) => {
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  ssl(
    "req",
    "-x509",
    "-newkey",
    "ed25519",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=fleetplan test CA",
  );
  for (const [name, ext] of [
    ["server", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
    ["client", "extendedKeyUsage=clientAuth"],
  ] as const) {
    ssl("req", "-newkey", "ed25519", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    ssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
    );
    chmodSync(join(dir, `${name}.key`), 0o600);
  }
  return (name: string) => join(dir, name);
};

describe("coordinator --tls-ca / --tls-cert / --tls-key", { timeout: 60_000 }, () => {
  let world: World;
  let nats: NatsServer;
  let cli: Fleetplan;
  let file: (name: string) => string;

  before(async () => {
    world = await createWorld("fleetplan-creds-tls-");
    file = makeCertificates(world.dir);
    const port = await freePort();
    cli = createCli(world, `tls://127.0.0.1:${port}`);
    await cli.expect(["init", "--json"]);
    await cli.expect(["store", "credentials", "--out", join(world.dir, "creds"), "--json"]);
    nats = await startNats({
      port,
      configFile: join(world.dir, "creds", "nats-server.conf"),
      extraArgs: ["--tls", "--tlscert", file("server.pem"), "--tlskey", file("server.key"), "--tlscacert", file("ca.pem"), "--tlsverify"],
    });
  });

  after(async () => {
    await nats?.stop();
    world?.cleanup();
  });

  it("store init reaches a TLS server that requires client certificates, with the CA and the client certificate given", async () => {
    const creds = ["--creds", join(world.dir, "creds", "coordinator.creds")];
    const noClientCert = await cli.run(["store", "init", "--json", ...creds, "--tls-ca", file("ca.pem")]);
    assert.equal(noClientCert.code, 4, noClientCert.stdout + noClientCert.stderr);
    const env = { FLEETPLAN_TLS_CA: file("ca.pem"), FLEETPLAN_TLS_CERT: file("client.pem"), FLEETPLAN_TLS_KEY: file("client.key") };
    const result = await cli.run(["store", "init", "--json", ...creds], { env });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(lastJson<{ ok: boolean }>(result).ok, true);
  });
});
