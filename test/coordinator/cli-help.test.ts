// Issue 17: per-command help, did-you-mean, the input checks an operator hit, `server set`,
// `server list --json` re-imported as is, natural host order and a status table that fits 120 columns.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { COMMAND_HELP } from "../../coordinator/cli/help.ts";
import { COMMANDS, main } from "../../coordinator/cli/main.ts";
import { printStatus } from "../../coordinator/cli/status.ts";
import type { StatusRow } from "../../coordinator/cli/status.ts";
import { loadPlanFile, strayPlanFiles } from "../../coordinator/plan-source.ts";
import { ansiOn, compareHosts, formatCommandHelp, jsonErrorAt, nearest } from "../../shared/cli.ts";
import { writeNewKey } from "../../shared/key-files.ts";
import { sodiumReady } from "../../shared/sodium.ts";

await sodiumReady();
const root = mkdtempSync(join(tmpdir(), "fleetplan-cli-help-"));
after(() => rmSync(root, { recursive: true, force: true }));
const keys = Array.from({ length: 4 }, (_, i) => writeNewKey(join(root, `node-${i}`), "node"));
const NO_STORE = "nats://127.0.0.1:1";
const TIMEOUT = { timeout: 30_000 };

/** `fleetplan ARGS` in process against `dir`'s database and admin key. */
const cli = (dir: string) => async (args: string[]) => {
  let stdout = "";
  let stderr = "";
  const extra = ["--db", join(dir, "fleetplan.db"), "--admin-key", join(dir, "admin.key"), "--store", NO_STORE];
  const code = await main([...args, ...extra], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
};

/** Exit 2 with a message on stderr matching `message`. */
const refused = async (result: Promise<{ code: number; stderr: string }>, message: RegExp) => {
  const { code, stderr } = await result;
  assert.equal(code, 2, stderr);
  assert.match(stderr, message);
};

describe("per-command help", TIMEOUT, () => {
  const run = cli(join(root, "help"));

  it("every command in COMMANDS has a help entry naming each of its flags, with an example", () => {
    const names = Object.keys(COMMANDS);
    assert.deepEqual(
      names.filter((n) => COMMAND_HELP[n] === undefined),
      [],
      "commands without an entry in coordinator/cli/help.ts",
    );
    for (const name of names) {
      const h = COMMAND_HELP[name]!;
      const page = formatCommandHelp(h);
      assert.ok(h.usage.startsWith(name) && h.does.length > 10 && h.example.startsWith(`fleetplan ${name.split(" ")[0]}`), name);
      assert.deepEqual([name, COMMANDS[name]!.flags.filter((f) => !page.includes(`--${f}`))], [name, []], "flags its help does not name");
    }
  });

  it("CMD --help, help CMD and a subcommand's --help print that command's page, exit 0", async () => {
    for (const args of [
      ["push", "--help"],
      ["help", "push"],
      ["push", "-h"],
    ]) {
      const r = await run(args);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^Usage: fleetplan push \(--plan FILE \| --plans DIR\)/);
      assert.match(r.stdout, /--dry-run +show what would be pushed/);
      assert.match(r.stdout, /Example:\n {2}fleetplan push --plans plans\/ --group web --wait/);
    }
    const add = await run(["server", "add", "--help"]);
    assert.match(add.stdout, /^Usage: fleetplan server add HOST --node-key PUB/);
    assert.match(add.stdout, /--allow-shared-key/);
    assert.equal((await run(["help", "server", "set"])).stdout, (await run(["server", "set", "web-1", "--help"])).stdout);
  });

  it("a group's --help lists its subcommands; bare help is the global page", async () => {
    const r = await run(["server", "--help"]);
    assert.equal(r.code, 0);
    for (const sub of ["add", "set", "list", "remove", "import"])
      assert.match(r.stdout, new RegExp(`^ {2}fleetplan server ${sub}\\b`, "m"));
    assert.match((await run(["help"])).stdout, /^fleetplan .* — push signed/);
  });
});

describe("did you mean", TIMEOUT, () => {
  const run = cli(join(root, "typo"));

  it("names the nearest command, subcommand or flag", async () => {
    await refused(run(["pussh"]), /unknown command "pussh" \(did you mean push\?\); see fleetplan --help/);
    await refused(run(["help", "statsu"]), /unknown command "statsu" \(did you mean status\?\)/);
    await refused(run(["server", "ad", "web-1"]), /unknown server command "ad" \(did you mean add\?\): add, set, list/);
    await refused(run(["server"]), /fleetplan server needs a subcommand: add, set, list, remove, import/);
    await refused(run(["status", "--grup", "web"]), /Unknown option '--grup' \(did you mean --group\?\)/);
    await refused(run(["push", "--dryrun"]), /Unknown option '--dryrun' \(did you mean --dry-run\?\)/);
    await refused(run(["frobnicate"]), /^error: unknown command "frobnicate"; see fleetplan --help/);
  });

  it("styling only on a terminal, never under NO_COLOR or TERM=dumb", () => {
    assert.deepEqual(
      [ansiOn({ isTTY: true }, {}), ansiOn({}, {}), ansiOn({ isTTY: true }, { NO_COLOR: "" }), ansiOn({ isTTY: true }, { TERM: "dumb" })],
      [true, false, false, false],
    );
  });

  it("nearest stays silent for words that are not near", () => {
    assert.equal(nearest("statsu", ["status", "push"]), "status");
    assert.equal(nearest("zzzzzz", ["status", "push"]), null);
  });
});

describe("input checks", TIMEOUT, () => {
  const dir = join(root, "input");
  const run = cli(dir);
  before(async () => {
    assert.equal((await run(["init"])).code, 0);
    assert.equal((await run(["server", "add", "web-1", "--node-key", keys[0]!.publicPath, "--group", "web"])).code, 0);
  });

  it("server add --metrics notaurl is refused; HOST:PORT and URLs are taken", async () => {
    await refused(
      run(["server", "add", "web-2", "--node-key", keys[1]!.publicPath, "--metrics", "notaurl"]),
      /metrics: "notaurl" is not an http\(s\) URL; give http:\/\/HOST:PORT\/metrics \(or HOST:PORT\)/,
    );
    assert.equal((await run(["server", "add", "web-2", "--node-key", keys[1]!.publicPath, "--metrics", "web-2:9465"])).code, 0);
  });

  it("one node key on several hosts is refused unless --allow-shared-key", async () => {
    await refused(
      run(["server", "add", "web-3", "--node-key", keys[0]!.publicPath]),
      new RegExp(
        `one node key on several hosts.*\\n {2}web-3: node key ${keys[0]!.keyId} is also the key of web-1\\n.*--allow-shared-key`,
        "s",
      ),
    );
    const file = join(dir, "twins.json");
    writeFileSync(
      file,
      JSON.stringify([
        { host: "a-1", node_key: keys[2]!.publicPath },
        { host: "a-2", node_key: keys[2]!.publicPath },
      ]),
    );
    await refused(run(["server", "import", file]), /a-1: node key \S+ is also the key of a-2/);
    assert.equal((await run(["server", "import", file, "--allow-shared-key"])).code, 0);
  });

  it("--admin-key x.pub says it is a public key before anything about file modes", async () => {
    await refused(
      run(["trust", "--admin-key", join(dir, "admin.pub")]),
      /--admin-key: .*admin\.pub is a public key; give the private admin key file \(e\.g\. .*admin\.key\)/,
    );
    const renamed = join(dir, "signer");
    writeFileSync(renamed, readFileSync(join(dir, "admin.pub")), { mode: 0o644 });
    await refused(run(["push", "--plans", dir, "--all", "--admin-key", renamed]), /signer is a public key/);
  });

  it("--group nosuch says empty or unknown and lists the known groups", async () => {
    await refused(
      run(["push", "--plan", join(dir, "none.sh"), "--group", "nosuch"]),
      /--group: group\(s\) nosuch empty or unknown; known groups: web/,
    );
  });

  it("push --plans reports plan files for hosts not in the inventory", async () => {
    const plans = join(dir, "plans");
    mkdirSync(plans);
    for (const f of ["web-1.sh", "web-01.sh", "gone-1.json", "notes.txt"]) writeFileSync(join(plans, f), "true\n");
    assert.deepEqual(strayPlanFiles(plans, ["web-1", "web-2"]), ["gone-1.json", "web-01.sh"]);
    const r = await run(["push", "--plans", plans, "--servers", "web-1", "--dry-run"]);
    assert.match(r.stderr, /warning: plan files for hosts not in the inventory \(not pushed; a typo\?\): gone-1\.json, web-01\.sh/);
  });

  it('plan JSON errors give line and column; "files" may be left out', () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, '{\n  "kind": "fleetplan/plan",\n  "v": 1,\n}\n');
    assert.throws(() => loadPlanFile(bad), /bad\.json: not valid JSON: .* at line 4 column 1$/);
    assert.equal(jsonErrorAt('{\n  "a": ', "Unexpected end of JSON input"), "Unexpected end of JSON input at line 2 column 8");
    const noFiles = join(dir, "nofiles.json");
    writeFileSync(noFiles, JSON.stringify({ kind: "fleetplan/plan", v: 1, steps: [{ name: "x", run: "true" }] }));
    assert.deepEqual(loadPlanFile(noFiles).plan.files, []);
  });
});

describe("inventory: server set, list --json re-import, natural order", TIMEOUT, () => {
  const dir = join(root, "inventory");
  const run = cli(dir);
  before(async () => {
    assert.equal((await run(["init"])).code, 0);
    for (const [i, host] of ["batch-10", "batch-2", "batch-1"].entries()) {
      const r = await run(["server", "add", host, "--node-key", keys[i]!.publicPath, "--group", "b", "--tag", "rack=r1"]);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  const list = async () => JSON.parse((await run(["server", "list", "--json"])).stdout) as Record<string, unknown>[];

  it("lists hosts in natural order (batch-2 before batch-10)", async () => {
    assert.deepEqual(
      (await list()).map((s) => s.host),
      ["batch-1", "batch-2", "batch-10"],
    );
    assert.match((await run(["server", "list"])).stdout, /batch-1 .*\nbatch-2 .*\nbatch-10 /);
    assert.deepEqual(["web-10", "web-9", "db-1"].sort(compareHosts), ["db-1", "web-9", "web-10"]);
  });

  it("server set changes only the given fields, tags merged and removed", async () => {
    const r = await run([
      "server",
      "set",
      "batch-2",
      "--metrics",
      "http://10.0.0.2:9465",
      "--ssh",
      "ops@10.0.0.2",
      "--tag",
      "zone=a",
      "--untag",
      "rack",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const row = (await list()).find((s) => s.host === "batch-2")!;
    assert.deepEqual([row.metrics, row.ssh, row.group, row.tags], ["http://10.0.0.2:9465/metrics", "ops@10.0.0.2", "b", { zone: "a" }]);
    await refused(run(["server", "set", "batch-2", "--node-key", keys[0]!.publicPath]), /is also the key of batch-10/);
    await refused(run(["server", "set", "nosuch", "--group", "x"]), /no server "nosuch" in the inventory/);
    await refused(run(["server", "set", "batch-2"]), /needs at least one of --node-key/);
    await refused(run(["server", "set", "batch-2", "--metrics", "bare"]), /is not an http\(s\) URL/);
    assert.equal((await run(["server", "set", "batch-2", "--node-key", keys[3]!.publicPath])).code, 0);
    assert.equal((await list()).find((s) => s.host === "batch-2")!.node_key_id, keys[3]!.keyId);
  });

  it("server list --json re-imports as is into a new database, node keys and tags included", async () => {
    const listed = await list();
    assert.ok(listed.every((s) => typeof s.node_key === "string" && String(s.node_key).startsWith("fleetplan-node")));
    const file = join(dir, "export.json");
    writeFileSync(file, JSON.stringify(listed));
    const other = cli(join(root, "reimport"));
    assert.equal((await other(["init"])).code, 0);
    const imported = await other(["server", "import", file]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.deepEqual(JSON.parse((await other(["server", "list", "--json"])).stdout), listed);
    const wrongId = join(dir, "wrong-id.json");
    writeFileSync(wrongId, JSON.stringify([{ ...listed[0], host: "x-1", node_key_id: "0000000000000000" }]));
    await refused(other(["server", "import", wrongId]), /node_key_id "0000000000000000" does not match node_key/);
  });
});

describe("status output", TIMEOUT, () => {
  const now = Date.parse("2026-03-01T12:00:00Z");
  const row = (host: string, why: string): StatusRow => ({
    host,
    verdict: "pending",
    why,
    expected_id: 1_741_330_000_123,
    reported_id: 1_741_330_000_001,
    expected_hash: "a".repeat(64),
    reported_hash: "b".repeat(64),
    last_result: "succeeded",
    boot_time: now / 1000 - 3 * 86_400,
    applied_boot_time: now / 1000 - 3 * 86_400,
    scrape_age_s: 12,
    error: null,
    status_refused: null,
    warning: null,
  });
  const rows = [
    row("web-10", `waiting for the agent to receive id 1741330000123 ${"x".repeat(200)}`),
    row(`web-2-${"long".repeat(20)}`, "short"),
    row("web-9", "ok"),
  ];
  const print = (wide: boolean) => {
    let out = "";
    printStatus(rows, false, { stdout: (t) => (out += t), stderr: () => {} }, wide, now);
    return out;
  };

  it("fits 120 columns, hosts in natural order, boot times relative", () => {
    const lines = print(false).trimEnd().split("\n");
    for (const line of lines) assert.ok(line.length <= 120, `${line.length} columns: ${line}`);
    assert.deepEqual(
      lines.slice(1, 4).map((l) => l.split(" ")[0]!.slice(0, 6)),
      ["web-2-", "web-9", "web-10"],
    );
    assert.match(lines[1]!, /3d ago/);
    assert.match(lines[3]!, /waiting for the agent.*…$/);
  });

  it("--wide shows everything: full why, hashes and ISO boot times", () => {
    const wide = print(true);
    assert.match(wide, /x{200}/);
    assert.match(wide, /2026-02-26T12:00:00Z/);
    assert.match(wide, /a{12}/);
  });
});
