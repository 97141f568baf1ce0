// The files the coordinator writes for Prometheus: `server list --prometheus-sd` (file_sd targets named
// by host) and `status --textfile` (the expectations export), as pure formats and through the CLI.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { main } from "../../coordinator/cli/main.ts";
import { openCoordinatorDb } from "../../coordinator/db.ts";
import type { ServerRow } from "../../coordinator/db.ts";
import { validateServerInput } from "../../coordinator/inventory.ts";
import { expectedTextfile, formatSdFile, prometheusSdGroups } from "../../coordinator/prometheus-files.ts";
import { formatNodePublic, generateNodeKey } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { needs } from "./queries.ts";

await sodiumReady();
const skip = needs("promtool", "prometheus");
const HASH = "ab".repeat(32);

const server = (host: string, metrics?: string, group?: string): ServerRow => {
  const key = generateNodeKey();
  return validateServerInput({ host, node_key: formatNodePublic(key.publicKey, key.identity.publicKey), metrics, group });
};

/** Run the CLI in-process; its exit code and output. */
const cli = async (...argv: string[]) => {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr };
};

describe("prometheusSdGroups", { timeout: 10_000 }, () => {
  it("names each target by its host and group, carrying scheme, path and query in reserved labels", () => {
    const { groups, skipped } = prometheusSdGroups([
      server("web-1", "http://10.0.0.1:9465/metrics", "web"),
      server("db-1", "https://db-1.example.org:9465/agent/metrics?token=a%20b"),
      server("new-1"),
    ]);
    assert.deepEqual(groups, [
      { targets: ["10.0.0.1:9465"], labels: { host: "web-1", group: "web" } },
      {
        targets: ["db-1.example.org:9465"],
        labels: { host: "db-1", __scheme__: "https", __metrics_path__: "/agent/metrics", __param_token: "a b" },
      },
    ]);
    assert.deepEqual(skipped, ["new-1"]);
  });

  it("formats one entry per line, and an empty inventory as an empty list", () => {
    const { groups } = prometheusSdGroups([1, 2].map((i) => server(`web-${i}`, `http://10.0.0.${i}:9465/metrics`)));
    const text = formatSdFile(groups);
    assert.deepEqual(JSON.parse(text), groups);
    assert.equal(text.split("\n").length, 5);
    assert.equal(formatSdFile([]), "[]\n");
  });
});

describe("expectedTextfile", { timeout: 10_000 }, () => {
  const text = expectedTextfile(
    new Map([
      ["web-2", { id: 20250307090502, planHash: HASH, issuedAt: 0 }],
      ["web-1", { id: 7, planHash: HASH, issuedAt: 0 }],
    ]),
  );

  it("writes one sorted fleetplan_expected_plan_info series per host", () => {
    const series = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
    assert.deepEqual(series, [
      `fleetplan_expected_plan_info{host="web-1",plan_hash="${HASH}",provisioning_id="7"} 1`,
      `fleetplan_expected_plan_info{host="web-2",plan_hash="${HASH}",provisioning_id="20250307090502"} 1`,
    ]);
    assert.match(text, /^# HELP fleetplan_expected_plan_info .+\n# TYPE fleetplan_expected_plan_info gauge\n/);
  });

  it("escapes label values as the text format requires", () => {
    const odd = expectedTextfile(new Map([['a"b\\c\nd', { id: 1, planHash: HASH, issuedAt: 0 }]]));
    assert.match(odd, /\{host="a\\"b\\\\c\\nd",/);
  });

  it("passes promtool check metrics", { skip }, () => {
    const result = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.equal(
      expectedTextfile(new Map())
        .split("\n")
        .filter((l) => !l.startsWith("#") && l !== "").length,
      0,
    );
  });
});

describe("fleetplan server list --prometheus-sd and status --textfile", { timeout: 60_000 }, () => {
  let dir: string;
  let db: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "fleetplan-promfiles-"));
    db = join(dir, "fleetplan.db");
    const coordinator = openCoordinatorDb(db);
    // Closed loopback ports: status finds no agent, quickly.
    coordinator.addServers([
      server("web-1", "http://127.0.0.1:9/metrics", "web"),
      server("web-2", "http://127.0.0.1:9/w2/metrics", "web"),
      server("new-1"),
    ]);
    coordinator.setExpected("web-1", 11, HASH, Date.now());
    coordinator.setExpected("web-2", 12, HASH, Date.now());
    coordinator.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("prints the file_sd targets, naming servers without a metrics URL on stderr", async () => {
    const r = await cli("server", "list", "--prometheus-sd", "--db", db);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [
      { targets: ["127.0.0.1:9"], labels: { host: "web-1", group: "web" } },
      { targets: ["127.0.0.1:9"], labels: { host: "web-2", group: "web", __metrics_path__: "/w2/metrics" } },
    ]);
    assert.match(r.stderr, /warning: no metrics URL, not in the file_sd file \(add one with server add --metrics URL\): new-1\n/);
    const web = await cli("server", "list", "--prometheus-sd", "--group", "web", "--db", db);
    assert.equal(JSON.parse(web.stdout).length, 2);
    assert.equal(web.stderr, "");
  });

  it("writes --out atomically, world-readable, and promtool accepts it as a file_sd file", async () => {
    const out = join(dir, "agents.json");
    writeFileSync(out, "old");
    const r = await cli("server", "list", "--prometheus-sd", "--out", out, "--db", db);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `wrote 2 targets to ${out}\n`);
    assert.equal(JSON.parse(readFileSync(out, "utf8")).length, 2);
    assert.equal(statSync(out).mode & 0o777, 0o644);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith(".tmp")),
      [],
    );
    if (skip) return;
    const config = join(dir, "prometheus.yml");
    writeFileSync(config, JSON.stringify({ scrape_configs: [{ job_name: "fleetplan-agent", file_sd_configs: [{ files: [out] }] }] }));
    const check = spawnSync("promtool", ["check", "config", config], { encoding: "utf8" });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    // promtool does read the file: broken content fails.
    writeFileSync(out, '[{"targets": 1}]');
    assert.notEqual(spawnSync("promtool", ["check", "config", config], { encoding: "utf8" }).status, 0);
  });

  it("refuses --out without --prometheus-sd, a missing directory, and warns about a name Prometheus skips", async () => {
    const alone = await cli("server", "list", "--out", join(dir, "x.json"), "--db", db);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /server list --out FILE needs --prometheus-sd/);
    const missing = await cli("server", "list", "--prometheus-sd", "--out", join(dir, "nope", "x.json"), "--db", db);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, new RegExp(`directory ${join(dir, "nope")} does not exist; create it \\(mkdir -p`));
    const txt = await cli("server", "list", "--prometheus-sd", "--out", join(dir, "agents.txt"), "--db", db);
    assert.equal(txt.code, 0);
    assert.match(txt.stderr, /agents\.txt does not end in \.json or \.yml or \.yaml: Prometheus file_sd will not read it/);
  });

  it("status --textfile writes every expectation before reading metrics", async () => {
    const out = join(dir, "fleetplan.prom");
    // Only web-1 selected, and no store or agent reachable: the file still holds every host's expectation.
    const r = await cli("status", "--servers", "web-1", "--textfile", out, "--db", db, "--store", "nats://127.0.0.1:9", "--json");
    assert.equal(r.code, 1, r.stderr);
    assert.equal(JSON.parse(r.stdout)[0].verdict, "unknown");
    const text = readFileSync(out, "utf8");
    assert.equal(
      text,
      expectedTextfile(
        new Map([
          ["web-1", { id: 11, planHash: HASH, issuedAt: 0 }],
          ["web-2", { id: 12, planHash: HASH, issuedAt: 0 }],
        ]),
      ),
    );
    assert.equal(statSync(out).mode & 0o777, 0o644);
    const wrong = await cli("status", "--textfile", join(dir, "missing", "f.prom"), "--db", db, "--store", "nats://127.0.0.1:9");
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /--textfile .*missing\/f\.prom: directory .* does not exist/);
  });
});
