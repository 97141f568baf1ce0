// Files that decide what runs as root (issue 12 items 2-4): key, trust, config and credential
// files, and the state dir, are refused when another user could change or read them — through
// their mode, their owner, a directory above them, or a symlink they own — and are read through
// one descriptor, so a flipped link cannot slip a key in between the check and the read.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, chownSync, lchownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { readConfigFile } from "../../agent/config.ts";
import { ensurePrivateDir, loadAgentSecrets } from "../../agent/startup.ts";
import { createNode, createWorld } from "../helpers/fleet.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { loadNodeKey, loadTrust, writeNewKey } from "../../shared/key-files.ts";
import { formatTrust, generateAdminKey } from "../../shared/keys.ts";
import { natsConnectOptions } from "../../shared/nats-options.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { normalizeStoreConfig } from "../../shared/store-config.ts";

await sodiumReady();
const NOBODY = 65534;
const asRoot = process.geteuid?.() === 0;
// Under /var/tmp-like roots the test dir must itself be safe: mkdtemp makes it 0700, root-owned.
const base = mkdtempSync("/tmp/fleetplan-guards-");
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const fresh = (mode = 0o700) => {
  const dir = join(base, `d${n++}`);
  mkdirSync(dir);
  chmodSync(dir, mode);
  return dir;
};
const refused = (pattern: RegExp) => (e: unknown) =>
  e instanceof FleetplanError && e.reason === "insecure_key_file" && pattern.test(e.message);

describe("guarded files", { timeout: 60_000, skip: !asRoot && "needs root to chown files to another user" }, () => {
  it("a node key inside a directory writable by others (0777) is refused, naming the directory", () => {
    const dir = fresh(0o777);
    const key = writeNewKey(dir, "node");
    assert.throws(
      () => loadNodeKey(key.privatePath),
      refused(new RegExp(`is in ${dir}, which is writable by group or others \\(mode 0777\\); run: chmod go-w ${dir}`)),
    );
  });

  it("a root-owned sticky directory (like /tmp) is accepted; the same without the sticky bit is not", () => {
    const dir = fresh(0o1777);
    const key = writeNewKey(join(dir, "k"), "node");
    assert.equal(loadNodeKey(key.privatePath).keyId, key.keyId);
    chmodSync(dir, 0o777);
    assert.throws(() => loadNodeKey(key.privatePath), refused(/writable by group or others/));
  });

  it("a key in a directory owned by another user is refused", () => {
    const dir = fresh();
    const key = writeNewKey(dir, "node");
    chownSync(dir, NOBODY, NOBODY);
    assert.throws(() => loadNodeKey(key.privatePath), refused(new RegExp(`directory of node key ${dir} is owned by uid ${NOBODY}`)));
  });

  it("a trust file owned by another user is refused", () => {
    const dir = fresh();
    const path = join(dir, "trust");
    writeFileSync(path, formatTrust([generateAdminKey().publicKey]), { mode: 0o644 });
    chownSync(path, NOBODY, NOBODY);
    assert.throws(() => loadTrust(path), refused(/trust file .* is owned by uid 65534/));
  });

  it("a symlink owned by another user is refused; a root-owned link to a safe file is followed (NixOS /etc links)", () => {
    const dir = fresh(0o1777);
    const real = join(fresh(), "trust");
    writeFileSync(real, formatTrust([generateAdminKey().publicKey]), { mode: 0o644 });
    const link = join(dir, "trust-link");
    symlinkSync(real, link);
    assert.equal(loadTrust(link).keys.size, 1);
    lchownSync(link, NOBODY, NOBODY);
    assert.throws(() => loadTrust(link), refused(/trust file .*trust-link is owned by uid 65534/));
  });

  it("a link flipped by another user between an attacker's trust file and ours never gets the attacker's key in", async () => {
    const dir = fresh(0o1777);
    const ours = join(fresh(), "trust");
    const ourKey = generateAdminKey();
    writeFileSync(ours, formatTrust([ourKey.publicKey]), { mode: 0o644 });
    const theirs = join(fresh(0o755), "trust");
    writeFileSync(theirs, formatTrust([generateAdminKey().publicKey]), { mode: 0o644 });
    chownSync(theirs, NOBODY, NOBODY);
    const link = join(dir, "trust");
    symlinkSync(ours, link);
    lchownSync(link, NOBODY, NOBODY);
    // The attacker flips the link as fast as it can, for at most 20 s.
    const flipper = spawn(
      "bash",
      [
        "-c",
        `for i in $(seq 1 20000); do ln -sfn ${theirs} ${link}.t; mv -T ${link}.t ${link}; ln -sfn ${ours} ${link}.t; mv -T ${link}.t ${link}; done`,
      ],
      {
        uid: NOBODY,
        gid: NOBODY,
        stdio: "ignore",
        timeout: 20_000,
      },
    );
    let accepted = 0;
    let attacker = 0;
    for (let i = 0; i < 2_000; i++) {
      try {
        const trust = loadTrust(link);
        accepted++;
        if (!trust.keys.has(ourKey.keyId)) attacker++;
      } catch (error) {
        if (!(error instanceof FleetplanError)) throw error;
      }
    }
    flipper.kill();
    assert.equal(attacker, 0, `the attacker's key was accepted ${attacker} times`);
    assert.equal(accepted, 0, "a link owned by another user is never followed");
  });

  it("the state dir: owned by another user (0700), or inside a world-writable parent, is refused", () => {
    const owned = join(fresh(), "state");
    mkdirSync(owned, { mode: 0o700 });
    chownSync(owned, NOBODY, NOBODY);
    assert.throws(() => ensurePrivateDir(owned, "state dir"), refused(new RegExp(`state dir ${owned} is owned by uid ${NOBODY}`)));
    const open = join(fresh(0o777), "state");
    assert.throws(() => ensurePrivateDir(open, "state dir"), refused(/is in .* which is writable by group or others \(mode 0777\)/));
    const ok = join(fresh(), "state");
    ensurePrivateDir(ok, "state dir");
  });

  it("agent.json writable by others (0666) is refused; 0644 holding a store password is refused; 0644 without one is fine", () => {
    const dir = fresh();
    const path = join(dir, "agent.json");
    writeFileSync(path, JSON.stringify({ hostname: "web-1" }));
    chmodSync(path, 0o666);
    assert.throws(() => readConfigFile(path, []), refused(/config .* is writable by group or others \(mode 0666\); run: chmod go-w/));
    chmodSync(path, 0o644);
    assert.equal(readConfigFile(path, []).hostname, "web-1");
    for (const secret of [
      { storeOptions: { pass: "s3cret" } },
      { storeOptions: { token: "t" } },
      { store: "nats://fleet:s3cret@127.0.0.1:4222" },
    ]) {
      writeFileSync(path, JSON.stringify({ hostname: "web-1", ...secret }));
      assert.throws(
        () => readConfigFile(path, []),
        refused(/holds a store password or token and is readable by group or others \(mode 0644\); run: chmod 600/),
      );
    }
    chmodSync(path, 0o600);
    assert.equal(readConfigFile(path, []).hostname, "web-1");
  });

  it("an agent whose configured creds file is missing or readable by others refuses to start, naming it", async () => {
    const world = await createWorld("fleetplan-guards-agent-");
    try {
      const creds = join(world.dir, "host.creds");
      const node = await createNode(world, "creds-host", "nats://127.0.0.1:1", { storeOptions: { credsFile: creds } });
      assert.throws(
        () => loadAgentSecrets(node.config),
        (e: unknown) => e instanceof FleetplanError && e.reason === "not_found" && e.message.includes(creds),
      );
      writeFileSync(creds, "x", { mode: 0o644 });
      assert.throws(() => loadAgentSecrets(node.config), refused(/NATS credentials file .* accessible by group or others/));
    } finally {
      world.cleanup();
    }
  });

  it("a NATS creds file at 0644, or owned by another user, is refused; a TLS key at 0644 too", () => {
    const dir = fresh();
    const creds = join(dir, "host.creds");
    writeFileSync(creds, "-----BEGIN NATS USER JWT-----\nx\n------END NATS USER JWT------\n", { mode: 0o644 });
    const config = (extra: object) => normalizeStoreConfig({ url: "nats://127.0.0.1:4222", ...extra }, []);
    assert.throws(
      () => natsConnectOptions(config({ credsFile: creds }), { name: "t", forever: false }),
      refused(/NATS credentials file .* accessible by group or others \(mode 0644\)/),
    );
    chmodSync(creds, 0o600);
    chownSync(creds, NOBODY, NOBODY);
    assert.throws(() => natsConnectOptions(config({ credsFile: creds }), { name: "t", forever: false }), refused(/owned by uid 65534/));
    const key = join(dir, "tls.key");
    writeFileSync(key, "key", { mode: 0o644 });
    assert.throws(
      () => natsConnectOptions(config({ tls: { key } }), { name: "t", forever: false }),
      refused(/TLS key .* accessible by group or others/),
    );
  });
});
