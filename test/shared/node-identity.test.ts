// The node identity (Ed25519) derived from the X25519 node key: old key files keep loading and get
// the same identity every time; the public line carries both keys; both line forms parse.
import assert from "node:assert/strict";
import { copyFileSync, chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { main } from "../../agent/cli/main.ts";
import { loadNodeKey, loadNodePublicKey, writeNewKey } from "../../shared/key-files.ts";
import { formatKey, formatNodePublic, KeyType, keyIdOf, nodeIdentityFromPrivate, parseNodePublic } from "../../shared/keys.ts";
import { sodium, sodiumReady } from "../../shared/sodium.ts";

await sodiumReady();
const VECTORS = join(import.meta.dirname, "..", "vectors");
const dir = mkdtempSync(join(tmpdir(), "fleetplan-identity-"));
after(() => rmSync(dir, { recursive: true, force: true }));
// test/vectors/node.key predates identities (a `fleetplan-node-x25519-private` line); git keeps it 0644, a node keeps it 0600.
const oldKeyFile = join(dir, "old-node.key");
copyFileSync(join(VECTORS, "node.key"), oldKeyFile);
chmodSync(oldKeyFile, 0o600);
/** The identity of the vector node key: fixed forever, since every deployed node key derives its identity this way. */
const VECTOR_IDENTITY_HEX = "70ab45968dda0463e1569674d1bc9e5003ca2c367325ee2369f54a3c10e63354";

describe("node identity", () => {
  it("loads an old node key file and derives its identity as specified (BLAKE2b-256 keyed, then the Ed25519 seed)", () => {
    assert.match(readFileSync(oldKeyFile, "utf8"), /^fleetplan-node-x25519-private /);
    const pair = loadNodeKey(oldKeyFile);
    const seed = sodium.crypto_generichash(32, pair.privateKey, new TextEncoder().encode("fleetplan/node-identity/v1"));
    assert.deepEqual(pair.identity.publicKey, sodium.crypto_sign_seed_keypair(seed).publicKey);
    assert.equal(sodium.to_hex(pair.identity.publicKey), VECTOR_IDENTITY_HEX);
    assert.deepEqual(nodeIdentityFromPrivate(pair.privateKey), pair.identity, "deterministic");
  });

  it("writes the new public line from keygen, and `fleetplan-agent pubkey` prints the same line", async () => {
    const written = writeNewKey(join(dir, "n1"), "node");
    const pair = loadNodeKey(written.privatePath);
    assert.equal(written.publicText, formatNodePublic(pair.publicKey, pair.identity.publicKey));
    assert.match(written.publicText, new RegExp(`^fleetplan-node [A-Za-z0-9+/]{86}== ${pair.keyId}$`));
    assert.equal(readFileSync(written.publicPath, "utf8"), `${written.publicText}\n`);
    let out = "";
    const io = { stdout: (t: string) => void (out += t), stderr: () => {} };
    assert.equal(await main(["pubkey", "--node-key", written.privatePath], io), 0);
    assert.equal(out, `${written.publicText}\n`);
  });

  it("parses both public line forms: the old one has no identity key", () => {
    const pair = loadNodeKey(oldKeyFile);
    const fresh = parseNodePublic(formatNodePublic(pair.publicKey, pair.identity.publicKey), "new");
    assert.deepEqual(fresh, { keyId: pair.keyId, publicKey: pair.publicKey, identityKey: pair.identity.publicKey });
    const old = loadNodePublicKey(join(VECTORS, "node.pub"));
    assert.deepEqual(old, { keyId: pair.keyId, publicKey: pair.publicKey, identityKey: null });
    assert.deepEqual(loadNodePublicKey(formatKey(KeyType.NodePublic, pair.publicKey)).identityKey, null);
  });

  it("refuses a new line whose key id is not the X25519 part's, or of the wrong length", () => {
    const pair = loadNodeKey(oldKeyFile);
    const line = formatNodePublic(pair.publicKey, pair.identity.publicKey);
    const wrongId = line.replace(/ [0-9a-f]{16}$/, ` ${keyIdOf(pair.identity.publicKey)}`);
    assert.throws(() => parseNodePublic(wrongId, "node.pub"), { reason: "bad_key", message: /node\.pub: key id .* does not match/ });
    const short = `fleetplan-node ${sodium.to_base64(pair.publicKey, sodium.base64_variants.ORIGINAL)}`;
    assert.throws(() => parseNodePublic(short, "node.pub"), { reason: "bad_key", message: /must be 64 bytes, got 32/ });
  });
});
