// The bins never drop output (issue 13 item 1): they used to call process.exit() right after
// writing, so a reader slower than the pipe's 64 KiB buffer got only the first 64 KiB.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { formatKey, KeyType, nodeKeyFromSeed, sodiumReady } from "../../shared/mod.ts";
import { CLI_BIN } from "../helpers/fleet.ts";
import { runCli } from "../helpers/cli.ts";

await sodiumReady();
const dir = mkdtempSync(join(tmpdir(), "fleetplan-cli-output-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const db = join(dir, "fleetplan.db");

describe("CLI output through a slow pipe", { timeout: 90_000 }, () => {
  it("server list --json for 1,500 servers arrives whole at a reader that starts 2 s late", async () => {
    assert.equal((await runCli(["init", "--db", db])).code, 0);
    const servers = Array.from({ length: 1_500 }, (_, i) => {
      const seed = new Uint8Array(32);
      new DataView(seed.buffer).setUint32(0, i + 1);
      return { host: `web-${i}.example.org`, node_key: formatKey(KeyType.NodePublic, nodeKeyFromSeed(seed).publicKey), group: "web" };
    });
    writeFileSync(join(dir, "servers.json"), JSON.stringify(servers));
    const imported = await runCli(["server", "import", join(dir, "servers.json"), "--db", db]);
    assert.equal(imported.code, 0, imported.stderr);
    const direct = await runCli(["server", "list", "--json", "--db", db]);
    assert.equal(direct.code, 0, direct.stderr);
    assert.ok(direct.stdout.length > 2 * 65_536, `enough output to overflow a pipe (${direct.stdout.length} bytes)`);
    const slow = execFileSync("bash", ["-c", `set -o pipefail; node ${CLI_BIN} server list --json --db ${db} | (sleep 2; wc -c)`], {
      timeout: 60_000,
    });
    assert.equal(Number(slow.toString().trim()), Buffer.byteLength(direct.stdout));
  });
});
