// The coordinator CLI's usage rules, in process: what each command refuses (and with which
// reason and exit code), that only `init` creates the database, and where `init` puts the key.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { main } from "../../coordinator/cli/main.ts";
import { writeNewKey } from "../../shared/key-files.ts";
import { parseTrust } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";

await sodiumReady();
const root = mkdtempSync(join(tmpdir(), "fleetplan-cli-"));
after(() => rmSync(root, { recursive: true, force: true }));
const node = writeNewKey(join(root, "node"), "node");
const NO_STORE = "nats://127.0.0.1:1";

/** `fleetplan ARGS` against the coordinator in `dir` (its own db and admin key), output captured. */
const cli =
  (dir: string) =>
  async (args: string[], extra: string[] = ["--db", join(dir, "fleetplan.db"), "--admin-key", join(dir, "admin.key")]) => {
    let stdout = "";
    let stderr = "";
    const code = await main([...args, ...extra, "--store", NO_STORE], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
    const json =
      args.includes("--json") && stdout.trim() !== "" ? (JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>) : null;
    return { code, stdout, stderr, json };
  };

/** Exit 2 with `reason`, its message matching `message`. */
const refused = async (result: Promise<{ code: number; json: Record<string, unknown> | null }>, reason: string, message: RegExp) => {
  const { code, json } = await result;
  assert.deepEqual([code, json?.ok, json?.reason], [2, false, reason], JSON.stringify(json));
  assert.match(String(json!.message), message);
};

describe("the database", () => {
  it("is created only by init: other commands name the missing file and create nothing", async () => {
    const dir = join(root, "fresh");
    mkdirSync(dir);
    const run = cli(dir);
    const db = join(dir, "fleetplan.db");
    for (const args of [
      ["status"],
      ["history"],
      ["server", "list"],
      ["server", "add", "web-1", "--node-key", node.publicPath],
      ["push", "--plans", dir],
    ]) {
      await refused(run([...args, "--json"]), "not_found", new RegExp(`^no database at ${db}; run \`fleetplan init\` \\(or pass --db\\)$`));
    }
    assert.equal(existsSync(db), false);
    assert.equal((await run(["init", "--json"])).code, 0);
    assert.equal((await run(["server", "list", "--json"])).stdout, "[]\n");
  });

  it("refuses a directory or a file that is not SQLite as --db, exit 2, leaving the file alone", async () => {
    const dir = join(root, "baddb");
    mkdirSync(dir);
    const notDb = join(dir, "notes.txt");
    writeFileSync(notDb, "my notes\n", { mode: 0o644 });
    await refused(cli(dir)(["status", "--json"], ["--db", dir]), "invalid_argument", /--db: .* is a directory/);
    await refused(cli(dir)(["init", "--json"], ["--db", dir]), "invalid_argument", /--db: .* is a directory/);
    await refused(cli(dir)(["history", "--json"], ["--db", notDb]), "invalid_argument", /--db: .*notes\.txt is not a fleetplan database/);
    await refused(
      cli(dir)(["init", "--json"], ["--db", notDb, "--admin-key", join(dir, "admin.key")]),
      "invalid_argument",
      /not a fleetplan database/,
    );
    assert.equal(readFileSync(notDb, "utf8"), "my notes\n");
    assert.equal(statSync(notDb).mode & 0o777, 0o644);
  });
});

describe("init --admin-key", () => {
  it("creates the key at exactly the given path, the public half beside it", async () => {
    const dir = join(root, "init-key");
    const run = cli(dir);
    const key = join(dir, "x", "ops.key");
    const first = await run(["init", "--json"], ["--db", join(dir, "fleetplan.db"), "--admin-key", key]);
    assert.equal(first.code, 0, first.stdout);
    assert.deepEqual([first.json!.admin_key, first.json!.created_key], [key, true]);
    assert.ok(existsSync(key) && existsSync(join(dir, "x", "ops.pub")));
    assert.equal(existsSync(join(dir, "x", "admin.key")), false);
    assert.equal(statSync(key).mode & 0o777, 0o600);

    const bare = join(dir, "y", "signer");
    assert.equal((await run(["init", "--json"], ["--db", join(dir, "fleetplan.db"), "--admin-key", bare])).code, 0);
    assert.ok(existsSync(bare) && existsSync(`${bare}.pub`));
  });
});

describe("trust", () => {
  let run: ReturnType<typeof cli>;
  let keys: string[];
  before(async () => {
    const dir = join(root, "trust");
    keys = [writeNewKey(join(dir, "a"), "admin").privatePath, writeNewKey(join(dir, "b"), "admin").privatePath];
    run = cli(dir);
  });
  const both = () => keys.flatMap((k) => ["--admin-key", k]);

  for (const bad of ["x", "0", "1.5", "3", "-1", ""]) {
    it(`refuses --threshold ${JSON.stringify(bad)} with two keys`, async () => {
      await refused(
        run(["trust", `--threshold=${bad}`, "--json"], both()),
        "invalid_argument",
        new RegExp(`^--threshold: ${bad.replace(".", "\\.")} must be an integer from 1 to 2$`),
      );
    });
  }

  it("prints JSON with --json: the trust file, key ids and threshold", async () => {
    const r = await run(["trust", "--threshold", "2", "--json"], both());
    assert.equal(r.code, 0);
    assert.deepEqual(Object.keys(r.json!), ["ok", "trust", "key_ids", "threshold"]);
    const trust = parseTrust(String(r.json!.trust), "trust");
    assert.equal(trust.threshold, 2);
    assert.deepEqual([...trust.keys.keys()].sort(), [...(r.json!.key_ids as string[])].sort());
    assert.match((await run(["trust"], both())).stdout, /^threshold 1$/m);
  });
});

describe("usage errors", () => {
  const dir = join(root, "usage");
  const run = cli(dir);
  before(async () => {
    assert.equal((await run(["init", "--json"])).code, 0);
  });

  it("refuses stray arguments and flags a command does not take", async () => {
    await refused(run(["status", "web-1", "--json"]), "invalid_argument", /^status: unexpected argument\(s\) "web-1"$/);
    await refused(run(["history", "web-1", "extra", "--json"]), "invalid_argument", /^history: unexpected argument\(s\) "extra"$/);
    await refused(run(["server", "list", "--servers", "x", "--json"]), "invalid_argument", /^server list does not take --servers$/);
    await refused(run(["server", "list", "web-1", "--json"]), "invalid_argument", /^server list: unexpected argument\(s\) "web-1"$/);
    await refused(run(["server", "remove", "a", "b", "--json"]), "invalid_argument", /unexpected argument\(s\) "b"/);
    await refused(run(["init", "now", "--json"]), "invalid_argument", /^init: unexpected argument/);
    await refused(run(["trust", "--limit", "3", "--json"]), "invalid_argument", /^trust does not take --limit$/);
    await refused(run(["status", "--plan", "x.sh", "--json"]), "invalid_argument", /^status does not take --plan$/);
    await refused(run(["push", "web-1", "--plans", dir, "--json"]), "invalid_argument", /positional/);
  });

  it("names a bad --limit, --prometheus, keygen --out or seal --out (exit 2)", async () => {
    await refused(run(["history", "--limit", "x", "--json"]), "invalid_argument", /^--limit: x must be a positive integer$/);
    await refused(
      run(["status", "--prometheus", "not-a-url", "--json"]),
      "invalid_argument",
      /^--prometheus: "not-a-url" is not an http\(s\) URL$/,
    );
    const file = join(dir, "a-file");
    writeFileSync(file, "x");
    await refused(run(["keygen", "admin", "--out", file, "--json"]), "conflict", /a-file exists and is not a directory/);
    const plan = join(dir, "p.sh");
    writeFileSync(plan, "true\n");
    const missing = join(dir, "missing-dir");
    await refused(
      run(["seal", "--plan", plan, "--target", "web-1", "--node-key", node.publicPath, "--id", "5", "--out", join(missing, "x"), "--json"]),
      "not_found",
      new RegExp(`^--out: directory ${missing} does not exist$`),
    );
  });

  it("refuses a plan file that is neither .json nor .sh instead of running it as a script", async () => {
    const txt = join(dir, "plan.txt");
    writeFileSync(txt, "rm -rf /\n");
    await refused(
      run([
        "seal",
        "--plan",
        txt,
        "--target",
        "web-1",
        "--node-key",
        node.publicPath,
        "--id",
        "5",
        "--out",
        join(dir, "out.fpe"),
        "--json",
      ]),
      "invalid_argument",
      /plan\.txt: a plan file must end in \.json \(a plan document\) or \.sh \(a script\)/,
    );
    assert.equal(existsSync(join(dir, "out.fpe")), false);
  });

  it("exits 4 (metrics_unavailable) when Prometheus cannot be reached", async () => {
    assert.equal((await run(["server", "add", "web-1", "--node-key", node.publicPath, "--json"])).code, 0);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const r = await run(["status", "--prometheus", `http://127.0.0.1:${port}`, "--json"]);
    assert.deepEqual([r.code, r.json!.reason], [4, "metrics_unavailable"]);
  });

  it("status stays fast with the store down (one connection attempt, bounded)", async () => {
    const started = Date.now();
    const r = await run(["status", "--json"]);
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    assert.equal(r.code, 1);
    const rows = JSON.parse(r.stdout) as { host: string; verdict: string; error: string }[];
    assert.deepEqual(
      rows.map((row) => [row.host, row.verdict, row.error]),
      [["web-1", "unknown", "no metrics URL in the inventory"]],
    );
  });
});

describe("server inventory rules", () => {
  const dir = join(root, "inventory");
  const run = cli(dir);
  before(async () => {
    assert.equal((await run(["init", "--json"])).code, 0);
    assert.equal((await run(["server", "add", "web-1", "--node-key", node.publicPath, "--json"])).code, 0);
  });

  it("refuses --not-bootstrapped without --ssh, accepts it with", async () => {
    await refused(
      run(["server", "add", "web-2", "--node-key", node.publicPath, "--not-bootstrapped", "--json"]),
      "invalid_argument",
      /ssh is required when bootstrapped is false/,
    );
    const args = [
      "server",
      "add",
      "web-2",
      "--node-key",
      node.publicPath,
      "--not-bootstrapped",
      "--ssh",
      "root@10.0.0.2",
      "--allow-shared-key",
      "--json",
    ];
    assert.equal((await run(args)).code, 0);
  });

  it("import lists hosts already in the inventory with the file's other problems, and writes nothing", async () => {
    const file = join(dir, "more.json");
    writeFileSync(
      file,
      JSON.stringify([
        { host: "web-1", node_key: node.publicPath },
        { host: "web-3", node_key: node.publicPath, metrics: "ftp://x" },
        { host: "web-4", node_key: node.publicPath },
      ]),
    );
    await refused(
      run(["server", "import", file, "--json"]),
      "invalid_argument",
      /2 problem\(s\), nothing written:\n.*more\.json\[0\]: host web-1 is already in the inventory\n.*more\.json\[1\]: metrics: scheme/,
    );
    const hosts = (JSON.parse((await run(["server", "list", "--json"])).stdout) as { host: string }[]).map((s) => s.host);
    assert.deepEqual(hosts, ["web-1", "web-2"]);
  });
});

describe("--help", () => {
  it("documents push's --max-age and --via store|ssh, and --plans without a selector", async () => {
    const { stdout } = await cli(root)(["--help"], []);
    assert.match(stdout, /--via store\|ssh/);
    assert.match(stdout, /fleetplan push --plans DIR \[--servers a,b \| --group G \| --all\].*default all/);
    assert.match(stdout.slice(stdout.indexOf("fleetplan push"), stdout.indexOf("fleetplan status")), /--max-age 30m/);
    assert.match(stdout, /\$FLEETPLAN_REPLICAS/);
  });
});
