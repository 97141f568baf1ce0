// Attacks on trust rotation (coordinator/trust-chain.ts, cli/trust.ts) by whoever can write the store:
// deleting the newest trust versions made the next `trust rotate` build on an older set, so a key
// removed in a deleted version came back in a version the agents adopt. Against a real nats-server:
// the coordinator database remembers every version and publishes the lost ones again first. Pure:
// a gap or a fork between the database and the store is a `conflict`.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { main } from "../../coordinator/cli/main.ts";
import { openCoordinatorDb } from "../../coordinator/db.ts";
import { missingLinks } from "../../coordinator/trust-chain.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { loadAdminKey, writeNewKey } from "../../shared/key-files.ts";
import { formatTrust } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { parseTrustRecord, signTrust, trustDocument, verifyRoot, verifyRotation } from "../../shared/trust.ts";
import { trustKey } from "../../shared/trust-layout.ts";
import type { AdminKeyPair } from "../../shared/types.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";

const conflict = (text: RegExp) => (e: unknown) => e instanceof FleetplanError && e.reason === "conflict" && text.test(e.message);

describe("attack: trust versions deleted from the store (real nats-server)", { timeout: 90_000 }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  let dir: string;
  let db: string;
  let trustFile: string;
  const keys: Record<"a" | "b" | "c", { path: string; pub: string; pair: AdminKeyPair }> = {} as never;

  const cli = async (args: string[]) => {
    let stdout = "";
    let stderr = "";
    const code = await main([...args, "--store", nats.url, "--db", db], {
      stdout: (t) => void (stdout += t),
      stderr: (t) => void (stderr += t),
    });
    return { code, stdout, stderr };
  };
  const rotate = async (extra: string[], signers: ("a" | "b" | "c")[]) => {
    const r = await cli([
      "trust",
      "rotate",
      "--root",
      trustFile,
      ...extra,
      ...signers.flatMap((k) => ["--admin-key", keys[k].path]),
      "--json",
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return JSON.parse(r.stdout) as { published: number[]; key_ids: string[] };
  };

  before(
    async () => {
      await sodiumReady();
      dir = mkdtempSync(join(tmpdir(), "fleetplan-attacks-trust-"));
      for (const name of ["a", "b", "c"] as const) {
        const w = writeNewKey(join(dir, name), "admin");
        keys[name] = { path: w.privatePath, pub: w.publicPath, pair: loadAdminKey(w.privatePath) };
      }
      trustFile = join(dir, "trust");
      writeFileSync(trustFile, formatTrust([keys.a.pair.publicKey]), { mode: 0o644 });
      db = join(dir, "fleetplan.db");
      openCoordinatorDb(db).close();
      nats = await startNats();
      assert.equal((await cli(["store", "init"])).code, 0);
      nc = await connect({ servers: nats.url });
      kv = await new Kvm(nc).open("fleetplan-plans");
    },
    { timeout: 30_000 },
  );
  after(async () => {
    await nc?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a rotation after the newest version was deleted publishes it again and never brings the removed key back", {
    timeout: 40_000,
  }, async () => {
    assert.deepEqual((await rotate(["--add", keys.b.pub], ["a", "b"])).published, [1, 2]);
    // b is stolen: version 3 removes it.
    assert.deepEqual((await rotate(["--remove", keys.b.pair.keyId], ["a"])).published, [3]);
    // The thief, who can write the store, deletes version 3 with its history.
    await kv.purge(trustKey(3));
    const shown = await cli(["trust", "show"]);
    assert.match(shown.stderr, /trust version\(s\) 3 are known to this coordinator's database but missing from the store/);

    const next = await rotate(["--add", keys.c.pub], ["a", "c"]);
    assert.deepEqual(next.published, [3, 4], "version 3 published again, then the rotation on top of it");
    assert.deepEqual(next.key_ids.sort(), [keys.a.pair.keyId, keys.c.pair.keyId].sort());
    const versions = JSON.parse((await cli(["trust", "show", "--json"])).stdout).versions as { version: number; key_ids: string[] }[];
    assert.deepEqual(
      versions.map((v) => v.version),
      [1, 2, 3, 4],
    );
    assert.ok(
      versions.slice(2).every((v) => !v.key_ids.includes(keys.b.pair.keyId)),
      "the removed key is in no version after its removal",
    );
  });

  it("junk at the next version's key is refused naming the key and the fix; once deleted, the rotation goes on", {
    timeout: 30_000,
  }, async () => {
    await kv.put(trustKey(5), "junk");
    const blocked = await cli(["trust", "rotate", "--root", trustFile, "--remove", keys.c.pair.keyId, "--admin-key", keys.a.path]);
    assert.notEqual(blocked.code, 0);
    assert.match(blocked.stderr, /store key _trust\.5: .*delete that key, then run `fleetplan trust rotate`/);
    await kv.purge(trustKey(5));
    assert.deepEqual((await rotate(["--remove", keys.c.pair.keyId], ["a"])).published, [5]);
  });

  it("signature entries appended to a valid record neither show as signers nor reach the terminal raw", { timeout: 30_000 }, async () => {
    const record = JSON.parse((await kv.get(trustKey(5)))!.string()) as { sigs: { key_id: string; sig: string }[] };
    record.sigs.push({ key_id: "\x1b]0;pwned\x07", sig: "AAAA" }, { key_id: keys.b.pair.keyId, sig: "AAAA" });
    await kv.put(trustKey(5), JSON.stringify(record));
    const shown = await cli(["trust", "show"]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.doesNotMatch(shown.stdout, /[\x1b\x07]/);
    assert.match(shown.stdout, new RegExp(`^version 5: 1 of ${keys.a.pair.keyId}; .*; signed by ${keys.a.pair.keyId}$`, "m"));
  });

  it("a gap or a fork between the coordinator database and the store is a conflict naming the fix (pure)", () => {
    const expires = Date.now() + 3_600_000;
    const v1 = signTrust(trustDocument(1, [keys.a.pair.publicKey], 1, expires), [keys.a.pair]);
    const v2 = signTrust(trustDocument(2, [keys.a.pair.publicKey, keys.b.pair.publicKey], 1, expires), [keys.a.pair, keys.b.pair]);
    const fork = signTrust(trustDocument(2, [keys.a.pair.publicKey, keys.c.pair.publicKey], 1, expires), [keys.a.pair, keys.c.pair]);
    const root = verifyRoot(parseTrustRecord(v1));
    const chain = [
      { record: parseTrustRecord(v1), state: root },
      { record: parseTrustRecord(v2), state: verifyRotation(root, parseTrustRecord(v2)) },
    ];
    assert.throws(() => missingLinks(chain, [{ version: 2, bytes: fork }]), conflict(/forked/));
    assert.throws(() => missingLinks([], [{ version: 2, bytes: v2 }]), conflict(/knows version 2 but not 1/));
    assert.deepEqual(
      missingLinks(chain.slice(0, 1), [{ version: 2, bytes: v2 }]).map((l) => l.version),
      [2],
    );
  });
});
