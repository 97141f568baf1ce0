// Coordinator configuration: precedence flag > env > config file > default (pure), and the CLI:
// `init` remembers settings in fleetplan.json beside the database, later commands use them with
// no env, `config show` names each source, URL passwords and a world-writable file are refused.
import assert from "node:assert/strict";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { main } from "../../coordinator/cli/main.ts";
import { normalizeCoordinatorConfig, parseConfigFile } from "../../coordinator/config.ts";
import type { SettingSource } from "../../coordinator/config.ts";
import { writeNewKey } from "../../shared/key-files.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { tempDirs } from "../helpers/temp.ts";

const newDir = tempDirs(tmpdir(), "fleetplan-config-");
const FILE = {
  path: "/etc/fleetplan/fleetplan.json",
  settings: { store: "nats://file:4222", prometheus: "http://prom-file:9090", replicas: "3" },
};
const sourceOf = (sources: SettingSource[], name: string) => sources.find((s) => s.name === name)!;

describe("normalizeCoordinatorConfig precedence (pure)", { timeout: 10_000 }, () => {
  it("takes the file over the default, env over the file, the flag over env", () => {
    const fromFile = normalizeCoordinatorConfig({}, {}, FILE);
    assert.deepEqual(
      [fromFile.store.servers, fromFile.store.replicas, fromFile.prometheus],
      [["nats://file:4222"], 3, "http://prom-file:9090"],
    );
    assert.deepEqual(sourceOf(fromFile.sources, "store"), { name: "store", value: "nats://file:4222", source: `file ${FILE.path}` });
    const env = { FLEETPLAN_STORE: "nats://env:4222", FLEETPLAN_PROMETHEUS: "http://prom-env:9090" };
    const fromEnv = normalizeCoordinatorConfig({}, env, FILE);
    assert.deepEqual([fromEnv.store.servers, fromEnv.prometheus], [["nats://env:4222"], "http://prom-env:9090"]);
    assert.equal(sourceOf(fromEnv.sources, "store").source, "env FLEETPLAN_STORE");
    assert.equal(sourceOf(fromEnv.sources, "replicas").source, `file ${FILE.path}`);
    const fromFlag = normalizeCoordinatorConfig({ store: "nats://flag:4222", prometheus: "http://prom-flag:9090" }, env, FILE);
    assert.deepEqual([fromFlag.store.servers, fromFlag.prometheus], [["nats://flag:4222"], "http://prom-flag:9090"]);
    assert.equal(sourceOf(fromFlag.sources, "store").source, "flag");
  });

  it("falls back to the defaults with no file, and names them", () => {
    const config = normalizeCoordinatorConfig({ db: "/x/fleetplan.db" }, {}, { path: "/x/fleetplan.json", settings: {} });
    assert.deepEqual([config.store.servers, config.prometheus], [["nats://127.0.0.1:4222"], undefined]);
    assert.deepEqual(
      config.sources.map((s) => [s.name, s.source]),
      [
        ["db", "flag"],
        ["admin-key", "default"],
        ["store", "default"],
        ["replicas", "default"],
        ["notify-prefix", "default"],
        ["creds", "default"],
        ["tls-ca", "default"],
        ["tls-cert", "default"],
        ["tls-key", "default"],
        ["prometheus", "default"],
      ],
    );
    assert.equal(sourceOf(config.sources, "creds").value, null);
  });

  it("names the file and key of a bad value from the file", () => {
    const bad = { path: "/x/fleetplan.json", settings: { prometheus: "prom:9090", creds: "/nonexistent/c.creds" } };
    assert.throws(
      () => normalizeCoordinatorConfig({}, {}, bad),
      (error: Error & { reason?: string }) => {
        assert.equal(error.reason, "invalid_config");
        assert.match(error.message, /\/x\/fleetplan\.json "prometheus": "prom:9090" is not an http\(s\) URL/);
        assert.match(error.message, /\/x\/fleetplan\.json "creds": cannot read \/nonexistent\/c\.creds/);
        return true;
      },
    );
  });

  it("refuses a malformed file, an unknown key or a non-string value, naming the file and the key", () => {
    assert.throws(() => parseConfigFile("/x/fleetplan.json", "{"), {
      reason: "invalid_config",
      message: /\/x\/fleetplan\.json is not valid JSON/,
    });
    assert.throws(() => parseConfigFile("/x/fleetplan.json", "[]"), { reason: "invalid_config", message: /must hold a JSON object/ });
    assert.throws(() => parseConfigFile("/x/fleetplan.json", '{"stor": "nats://a:1"}'), {
      reason: "invalid_config",
      message: /\/x\/fleetplan\.json: unknown key "stor"; known: store,/,
    });
    assert.throws(() => parseConfigFile("/x/fleetplan.json", '{"store": 4222}'), {
      reason: "invalid_config",
      message: /key "store" must be a string/,
    });
    assert.deepEqual(parseConfigFile("/x/fleetplan.json", '{"replicas": 3}'), { replicas: "3" });
  });
});

describe("fleetplan init remembers the coordinator configuration", { timeout: 60_000 }, () => {
  let nats: NatsServer;
  const saved = { ...process.env };
  const run = async (args: string[], env: Record<string, string> = {}) => {
    for (const name of Object.keys(process.env)) if (name.startsWith("FLEETPLAN_")) delete process.env[name];
    Object.assign(process.env, env);
    let stdout = "";
    const code = await main(args, { stdout: (t) => (stdout += t), stderr: () => {} });
    process.env = { ...saved };
    const json = args.includes("--json") ? (JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>) : null;
    return { code, stdout, json };
  };
  const show = async (args: string[], env?: Record<string, string>) => {
    const r = await run(["config", "show", "--json", ...args], env);
    assert.equal(r.code, 0, r.stdout);
    return Object.fromEntries((r.json!.settings as SettingSource[]).map((s) => [s.name, [s.value, s.source]]));
  };

  before(async () => {
    await sodiumReady();
    nats = await startNats();
  });
  after(async () => {
    process.env = saved;
    await nats.stop();
  });

  it("writes fleetplan.json (0600) beside the database; a later command needs no env; flag and env override", async () => {
    const dir = newDir();
    const db = join(dir, "fleetplan.db");
    const creds = join(dir, "coordinator.creds");
    writeFileSync(creds, "not used here\n", { mode: 0o600 });
    const init = await run(["init", "--db", db, "--store", nats.url, "--prometheus", "http://127.0.0.1:9", "--creds", creds, "--json"]);
    assert.equal(init.code, 0, init.stdout);
    const file = join(dir, "fleetplan.json");
    assert.equal(init.json!.config_file, file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), { store: nats.url, prometheus: "http://127.0.0.1:9", creds });

    const shown = await show(["--db", db]);
    assert.deepEqual(shown.store, [nats.url, `file ${file}`]);
    assert.deepEqual(shown.prometheus, ["http://127.0.0.1:9", `file ${file}`]);
    assert.deepEqual(shown.db, [db, "flag"]);
    assert.deepEqual(shown["notify-prefix"], ["fleetplan.notify", "default"]);
    assert.deepEqual((await show([], { FLEETPLAN_DB: db, FLEETPLAN_STORE: "nats://127.0.0.1:5" })).store, [
      "nats://127.0.0.1:5",
      "env FLEETPLAN_STORE",
    ]);
    assert.deepEqual((await show(["--db", db, "--store", "nats://127.0.0.1:6"], { FLEETPLAN_STORE: "nats://127.0.0.1:5" })).store, [
      "nats://127.0.0.1:6",
      "flag",
    ]);

    // Running init again updates only what it is given.
    assert.equal((await run(["init", "--db", db, "--prometheus", "http://127.0.0.1:10", "--json"])).code, 0);
    assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), { store: nats.url, prometheus: "http://127.0.0.1:10", creds });
    writeFileSync(file, JSON.stringify({ store: nats.url }), { mode: 0o600 });

    // No --store and no env: `store init` reaches the nats-server named in the file.
    const storeInit = await run(["store", "init", "--db", db, "--json"]);
    assert.equal(storeInit.code, 0, storeInit.stdout);
  });

  it("status takes --prometheus from the file (push and rollout get the same default)", async () => {
    const dir = newDir();
    const db = join(dir, "fleetplan.db");
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const prometheus = `http://127.0.0.1:${port}`;
    assert.equal((await run(["init", "--db", db, "--store", "nats://127.0.0.1:1", "--prometheus", prometheus, "--json"])).code, 0);
    const node = writeNewKey(join(dir, "node"), "node");
    assert.equal((await run(["server", "add", "web-1", "--db", db, "--node-key", node.publicPath, "--json"])).code, 0);
    const status = await run(["status", "--db", db, "--json"]);
    assert.deepEqual([status.code, status.json!.reason], [4, "metrics_unavailable"]);
    assert.match(String(status.json!.message), new RegExp(`127\\.0\\.0\\.1:${port}`));
  });

  it("refuses a store URL with a password and creates nothing", async () => {
    const dir = newDir();
    const r = await run(["init", "--db", join(dir, "fleetplan.db"), "--store", "nats://fleet:s3cret@127.0.0.1:4222", "--json"]);
    assert.deepEqual([r.code, r.json!.reason], [2, "invalid_argument"]);
    assert.match(String(r.json!.message), /--store: the URL holds a password.*--creds FILE/);
    assert.deepEqual([existsSync(join(dir, "fleetplan.db")), existsSync(join(dir, "fleetplan.json"))], [false, false]);
  });

  it("refuses a config file others may write, and one with an unknown key", async () => {
    const dir = newDir();
    const db = join(dir, "fleetplan.db");
    assert.equal((await run(["init", "--db", db, "--store", nats.url, "--json"])).code, 0);
    const file = join(dir, "fleetplan.json");
    chmodSync(file, 0o666);
    const open = await run(["config", "show", "--db", db, "--json"]);
    assert.equal(open.json!.reason, "insecure_key_file");
    assert.match(String(open.json!.message), new RegExp(`config file ${file} is writable by group or others.*chmod go-w`));
    chmodSync(file, 0o600);
    writeFileSync(file, '{"store": "nats://127.0.0.1:1", "prometheus-url": "http://p"}');
    const unknown = await run(["status", "--db", db, "--json"]);
    assert.deepEqual([unknown.code, unknown.json!.reason], [2, "invalid_config"]);
    assert.match(String(unknown.json!.message), /fleetplan\.json: unknown key "prometheus-url"/);
  });
});
