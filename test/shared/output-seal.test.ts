// The sealed output of a failed run: only a trusted admin key opens it, a node key never does, and a
// record not signed by the host's node identity (forged, altered, another node's) is refused.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { FleetplanError } from "../../shared/errors.ts";
import { generateAdminKey, generateNodeKey } from "../../shared/keys.ts";
import { MAX_OUTPUT_RECORD_BYTES, MAX_OUTPUT_TAIL, openOutput, sealOutput } from "../../shared/output-seal.ts";
import { sodium, sodiumReady } from "../../shared/sodium.ts";
import type { AdminKeyPair, NodeKeyPair } from "../../shared/types.ts";

const meta = { host: "web-1", id: 20261205120000, at: 1_765_000_000_000, failure_reason: "step_failed", exit_code: 3, failed_step: 1 };
const reason = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof FleetplanError, String(error));
    return error.reason;
  }
  return "no error";
};

describe("output seal", { timeout: 20_000 }, () => {
  let admin: AdminKeyPair;
  let other: AdminKeyPair;
  let node: NodeKeyPair;
  before(async () => {
    await sodiumReady();
    [admin, other, node] = [generateAdminKey(), generateAdminKey(), generateNodeKey()];
  });

  it("opens with each trusted admin key and keeps only the last 8 KiB", () => {
    const output = new TextEncoder().encode(`${"x".repeat(20_000)}\nboom: exit 3\n`);
    const record = sealOutput(meta, output, [admin.publicKey, other.publicKey], node.identity.privateKey);
    assert.ok(record.length <= MAX_OUTPUT_RECORD_BYTES, `${record.length} bytes`);
    for (const key of [admin, other]) {
      const opened = openOutput(record, "web-1", node.identity.publicKey, key);
      assert.equal(opened.output.length, MAX_OUTPUT_TAIL);
      assert.match(new TextDecoder().decode(opened.output), /boom: exit 3\n$/);
      assert.deepEqual({ ...opened, output: undefined }, { ...meta, output: undefined });
    }
    assert.ok(!new TextDecoder().decode(record).includes("boom"), "output in the clear");
  });

  it("does not open with the node's own keys", () => {
    const record = sealOutput(meta, new TextEncoder().encode("secret output"), [admin.publicKey], node.identity.privateKey);
    const doc = JSON.parse(new TextDecoder().decode(record)) as { keys: Record<string, string> };
    const sealedKey = sodium.from_base64(Object.values(doc.keys)[0]!, sodium.base64_variants.ORIGINAL);
    // The node's X25519 key pair, and its identity key converted: neither opens the sealed content key.
    assert.throws(() => sodium.crypto_box_seal_open(sealedKey, node.publicKey, node.privateKey));
    const idX = {
      pk: sodium.crypto_sign_ed25519_pk_to_curve25519(node.identity.publicKey),
      sk: sodium.crypto_sign_ed25519_sk_to_curve25519(node.identity.privateKey),
    };
    assert.throws(() => sodium.crypto_box_seal_open(sealedKey, idX.pk, idX.sk));
    const asAdmin: AdminKeyPair = {
      keyId: Object.keys(doc.keys)[0]!,
      publicKey: node.identity.publicKey,
      privateKey: node.identity.privateKey,
    };
    assert.equal(
      reason(() => openOutput(record, "web-1", node.identity.publicKey, asAdmin)),
      "decrypt_failed",
    );
    assert.equal(
      reason(() => openOutput(record, "web-1", node.identity.publicKey, other)),
      "not_a_recipient",
    );
  });

  it("refuses a record altered, signed by another node, or stored under another host", () => {
    const record = sealOutput(meta, new TextEncoder().encode("out"), [admin.publicKey], node.identity.privateKey);
    const doc = JSON.parse(new TextDecoder().decode(record)) as Record<string, unknown>;
    const altered = new TextEncoder().encode(JSON.stringify({ ...doc, exit_code: 0 }));
    assert.equal(
      reason(() => openOutput(altered, "web-1", node.identity.publicKey, admin)),
      "bad_signature",
    );
    const impostor = generateNodeKey();
    const forged = sealOutput(meta, new TextEncoder().encode("fake"), [admin.publicKey], impostor.identity.privateKey);
    assert.equal(
      reason(() => openOutput(forged, "web-1", node.identity.publicKey, admin)),
      "bad_signature",
    );
    assert.equal(
      reason(() => openOutput(record, "web-2", node.identity.publicKey, admin)),
      "wrong_host",
    );
    assert.equal(
      reason(() => openOutput(new TextEncoder().encode("{not json"), "web-1", node.identity.publicKey, admin)),
      "malformed",
    );
    assert.equal(
      reason(() => openOutput(new Uint8Array(MAX_OUTPUT_RECORD_BYTES + 1), "web-1", node.identity.publicKey, admin)),
      "malformed",
    );
  });
});
