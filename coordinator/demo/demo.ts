import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { ansiOn } from "../../shared/cli.ts";
import { AGENT_BIN, CLI_BIN, createProcessGroup, freePort, waitListening } from "./fleet.ts";

const run = promisify(execFile);
const HOSTS = ["web-1", "web-2", "web-3", "db-1", "cache-1"];
// Bold only on a terminal: a log file or pipe gets plain text, no escape codes.
const say = (text: string) => process.stdout.write(ansiOn(process.stdout) ? `\n\x1b[1m== ${text}\x1b[0m\n` : `\n== ${text}\n`);
const note = (text: string) => process.stdout.write(`   ${text}\n`);

const planFor = (root: string, motd: string) => ({
  kind: "fleetplan/plan",
  v: 1,
  files: [{ path: join(root, "etc", "motd"), mode: "0644", content: Buffer.from(motd).toString("base64") }],
  steps: [
    { name: "install packages", run: "echo 'installing (simulated)'; sleep 1" },
    { name: "record id", run: `echo "$FLEETPLAN_PROVISIONING_ID $FLEETPLAN_PLAN_HASH" > ${join(root, "applied")}` },
  ],
});

/**
 * The README's first command: a local nats-server, five real agents, a signed push with
 * live progress, convergence, a one-server change, and two attacks the agents refuse.
 */
export const runDemo = async (): Promise<number> => {
  const dir = mkdtempSync(join(tmpdir(), "fleetplan-demo-"));
  const procs = createProcessGroup();
  const env: NodeJS.ProcessEnv = { ...process.env, FLEETPLAN_DB: join(dir, "coordinator", "fleetplan.db") };
  const cli = (args: string[], opts: { show?: boolean } = {}): Promise<string> =>
    new Promise((resolve, reject) => {
      // push shares our stderr: live progress (a bar on a terminal, a line per server otherwise).
      const child = spawn("node", [CLI_BIN, ...args], { env, stdio: ["ignore", "pipe", args[0] === "push" ? "inherit" : "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
      child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
      child.once("error", reject);
      child.once("exit", (code) => {
        if (opts.show !== false) process.stdout.write(stdout.replace(/^/gm, "   "));
        if (code === 0) return resolve(stdout);
        process.stderr.write(stderr);
        reject(new Error(`fleetplan ${args.join(" ")} exited ${code}`));
      });
    });
  const onSignal = () => void procs.stopAll().then(() => process.exit(130));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    say("1. A local NATS JetStream server (the plan store)");
    const natsPort = await freePort();
    mkdirSync(join(dir, "nats"));
    procs.spawn(
      "nats-server",
      ["-js", "-a", "127.0.0.1", "-p", String(natsPort), "-sd", join(dir, "nats")],
      join(dir, "nats", "server.log"),
    );
    await waitListening(natsPort, 10_000, "nats-server");
    const store = `nats://127.0.0.1:${natsPort}`;
    env.FLEETPLAN_STORE = store;
    note(`nats-server -js on ${store}`);

    say("2. The coordinator: its database, the admin signing key and the store's buckets");
    const init = JSON.parse(await cli(["init", "--json"], { show: false }));
    writeFileSync(join(dir, "trust"), init.trust, { mode: 0o644 });
    note(`admin key ${init.key_ids[0]} → trust file ${join(dir, "trust")}, installed on every agent`);
    await cli(["store", "init"]); // the buckets; agents never create them

    say("3. Five servers, each an agent process with its own X25519 node key, ledger and metrics");
    const metrics = new Map<string, number>();
    for (const host of HOSTS) {
      const home = join(dir, "hosts", host);
      await run("node", [AGENT_BIN, "keygen", "--out", join(home, "keys"), "--json"]);
      const port = await freePort();
      metrics.set(host, port);
      const config = {
        hostname: host,
        store,
        nodeKey: join(home, "keys", "node.key"),
        trust: join(dir, "trust"),
        stateDir: join(home, "state"),
        logDir: join(home, "log"),
        metricsListen: `127.0.0.1:${port}`,
        fileRoots: [join(home, "root")],
      };
      writeFileSync(join(home, "agent.json"), JSON.stringify(config, null, 2));
      procs.spawn("node", [AGENT_BIN, "run", "--config", join(home, "agent.json")], join(home, "agent.log"));
      await cli(["server", "add", host, "--node-key", join(home, "keys", "node.pub"), "--metrics", `http://127.0.0.1:${port}/metrics`], {
        show: false,
      });
    }
    await Promise.all([...metrics].map(([host, port]) => waitListening(port, 20_000, `agent ${host}`)));
    await cli(["server", "list"]);

    say("4. Push one plan per server and watch them converge (push --wait)");
    const plans = join(dir, "plans");
    mkdirSync(plans);
    for (const host of HOSTS)
      writeFileSync(
        join(plans, `${host}.json`),
        JSON.stringify(planFor(join(dir, "hosts", host, "root"), `${host}: managed by fleetplan\n`), null, 2),
      );
    await cli(["push", "--plans", plans, "--all", "--wait", "--timeout", "60s"]);

    say("5. Status, from each agent's Prometheus metrics");
    await cli(["status"]);

    const nc = await connect({ servers: store });
    const kv = await new Kvm(nc).open("fleetplan-plans");
    const oldDb = (await kv.get("db-1"))!.value;

    say("6. Change db-1's plan and push again: four skipped (already converged), one applied");
    writeFileSync(
      join(plans, "db-1.json"),
      JSON.stringify(planFor(join(dir, "hosts", "db-1", "root"), "db-1: now with tuned settings\n"), null, 2),
    );
    await cli(["push", "--plans", plans, "--all", "--wait", "--timeout", "60s"]);

    say("7. Attacks by someone who can write to the store (but has no admin key)");
    const current = (await kv.get("web-1"))!.value;
    const tampered = Uint8Array.from(current);
    tampered[Math.floor(tampered.length / 2)]! ^= 0x01;
    await kv.put("web-1", tampered);
    note("web-1: put a copy of its envelope with one ciphertext byte flipped");
    await kv.put("db-1", oldDb);
    note("db-1: replayed its previous (older) envelope");
    await kv.put("web-2", (await kv.get("web-2"))!.value);
    note("web-2: redelivered its current envelope (as after a reconnect)");
    await nc.close();
    await new Promise((r) => setTimeout(r, 1500));
    for (const [host, port] of [
      ["web-1", metrics.get("web-1")!],
      ["db-1", metrics.get("db-1")!],
      ["web-2", metrics.get("web-2")!],
    ] as const) {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const counted = (name: string) =>
        text
          .split("\n")
          .filter((l) => l.startsWith(`fleetplan_agent_${name}_total{`) && !l.endsWith(" 0"))
          .map((l) => l.replace(/^.*result="([a-z_]+)"\} /, "$1 "))
          .join(", ");
      note(`${host}: envelopes ${counted("envelopes")} · runs ${counted("runs")}`);
    }
    note("bad_signature and stale are refused before anything is decrypted; duplicate is benign. Nothing ran:");
    await cli(["status"]);

    say("8. History: every push and per-target outcome, newest first");
    await cli(["history", "--limit", "12"]);
    say(`Done. All five converged, attacks refused. Files: ${dir}`);
    note("agent logs: hosts/*/agent.log · ledgers: hosts/*/state/ledger.db · run logs: hosts/*/log/");
    return 0;
  } catch (error) {
    process.stderr.write(`demo failed: ${(error as Error).message}\nfiles kept in ${dir}\n`);
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await procs.stopAll();
  }
};
