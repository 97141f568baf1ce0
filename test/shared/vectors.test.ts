// The pinned test vector (test/vectors/): our code must open it, its signature must verify with
// the domain prefix, and sealing the same inputs must give the same header and signature bytes.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import {
  adminKeyFromSeed,
  blake2bHex,
  canonicalBytes,
  KeyType,
  nodeKeyFromPrivate,
  nodeKeyFromSeed,
  openEnvelope,
  parseKey,
  planBytes,
  sealEnvelope,
  SIGNING_PREFIX,
  sodium,
  sodiumReady,
} from "../../shared/mod.ts";
import type { Plan } from "../../shared/mod.ts";
import { splitEnvelope } from "../../shared/wire.ts";

await sodiumReady();

const dir = new URL("../vectors/", import.meta.url);
const read = (name: string): Buffer => readFileSync(new URL(name, dir));
const text = (name: string): string => read(name).toString("utf8");
const vector = JSON.parse(text("vector.json")) as {
  inputs: {
    admin_seed_hex: string;
    node_seed_hex: string;
    id: number;
    target: string;
    issued: number;
    expires: number;
    zstd_level: number;
  };
  keys: { admin_public_hex: string; admin_key_id: string; node_public_hex: string; node_key_id: string };
  signing_prefix_hex: string;
  plan_canonical: string;
  plan_hash: string;
  plan_size: number;
  header: Record<string, unknown>;
  header_hex: string;
  layout: {
    header_offset: number;
    header_len: number;
    ciphertext_offset: number;
    ciphertext_len: number;
    signed_len: number;
    sig_count: number;
  };
  signatures: { key_id: string; sig_hex: string }[];
  envelope_hex: string;
};
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
const envelope = new Uint8Array(read("envelope.bin"));
const plain = planBytes(JSON.parse(text("plan.json")) as Plan);
const adminPublic = parseKey(text("admin.pub"), KeyType.AdminPublic, "admin.pub");
const node = nodeKeyFromPrivate(parseKey(text("node.key"), KeyType.NodePrivate, "node.key"));
const { inputs } = vector;

describe("test vector", () => {
  it("key files match the seeds and recorded key ids", () => {
    const admin = adminKeyFromSeed(sodium.from_hex(inputs.admin_seed_hex));
    assert.deepEqual(adminPublic, admin.publicKey);
    assert.deepEqual(parseKey(text("admin.key"), KeyType.AdminPrivate, "admin.key"), admin.privateKey);
    assert.deepEqual(parseKey(text("node.pub"), KeyType.NodePublic, "node.pub"), node.publicKey);
    assert.deepEqual(node.publicKey, nodeKeyFromSeed(sodium.from_hex(inputs.node_seed_hex)).publicKey);
    assert.equal(admin.keyId, vector.keys.admin_key_id);
    assert.equal(node.keyId, vector.keys.node_key_id);
    assert.equal(hex(admin.publicKey), vector.keys.admin_public_hex);
    assert.equal(hex(node.publicKey), vector.keys.node_public_hex);
  });

  it("envelope.bin is the recorded envelope_hex", () => assert.equal(hex(envelope), vector.envelope_hex));

  it("(a) opens to exactly plan.json's canonical bytes, hash and header", () => {
    const opened = openEnvelope(envelope, {
      hostname: inputs.target,
      nodeKeys: node,
      trust: { keys: new Map([[vector.keys.admin_key_id, adminPublic]]), threshold: 1 },
      highWaterMark: { id: 0, planHash: null },
      now: inputs.issued + 1,
    });
    // openEnvelope checked the decompressed bytes against this hash.
    assert.equal(vector.plan_hash, blake2bHex(plain));
    assert.equal(new TextDecoder().decode(planBytes(opened.plan)), vector.plan_canonical);
    assert.equal(opened.header.plan_hash, vector.plan_hash);
    assert.equal(opened.header.plan_size, vector.plan_size);
    assert.deepEqual({ ...opened.header }, vector.header);
    assert.deepEqual(opened.signerIds, [vector.keys.admin_key_id]);
  });

  it("(b) header bytes, layout and signature verify against admin.pub with the domain prefix", () => {
    const parts = splitEnvelope(envelope);
    assert.equal(hex(parts.headerBytes), vector.header_hex);
    assert.deepEqual(Buffer.from(parts.headerBytes), Buffer.from(canonicalBytes(vector.header)));
    assert.deepEqual(
      {
        header_offset: 7,
        header_len: parts.headerBytes.length,
        ciphertext_offset: parts.ciphertext.byteOffset,
        ciphertext_len: parts.ciphertext.length,
        signed_len: parts.signed.length,
        sig_count: parts.signatures.length,
      },
      vector.layout,
    );
    assert.equal(hex(SIGNING_PREFIX), vector.signing_prefix_hex);
    assert.equal(new TextDecoder().decode(SIGNING_PREFIX), "fleetplan/envelope/v1\0");
    const message = Buffer.concat([SIGNING_PREFIX, parts.signed]);
    assert.deepEqual(
      parts.signatures.map((s) => ({ key_id: s.keyId, sig_hex: hex(s.sig) })),
      vector.signatures,
    );
    assert.ok(sodium.crypto_sign_verify_detached(parts.signatures[0]!.sig, message, adminPublic));
    // The prefix is part of what is signed: the bare region must not verify.
    assert.ok(!sodium.crypto_sign_verify_detached(parts.signatures[0]!.sig, parts.signed, adminPublic));
  });

  it("(c) sealing the same inputs gives the same header, and Ed25519 re-signs identically", () => {
    const admin = adminKeyFromSeed(sodium.from_hex(inputs.admin_seed_hex));
    const again = sealEnvelope(JSON.parse(text("plan.json")) as Plan, {
      id: inputs.id,
      target: inputs.target,
      nodePublicKey: node.publicKey,
      signers: [admin],
      issued: inputs.issued,
      expires: inputs.expires,
      level: inputs.zstd_level,
    });
    const fresh = splitEnvelope(again);
    assert.equal(hex(fresh.headerBytes), vector.header_hex);
    // Same zstd frame under a fresh ephemeral key: same length, different bytes.
    assert.equal(fresh.ciphertext.length, vector.layout.ciphertext_len);
    assert.notEqual(hex(fresh.ciphertext), hex(splitEnvelope(envelope).ciphertext));
    const recordedSigned = envelope.subarray(0, vector.layout.signed_len);
    const sig = sodium.crypto_sign_detached(Buffer.concat([SIGNING_PREFIX, recordedSigned]), admin.privateKey);
    assert.equal(hex(sig), vector.signatures[0]!.sig_hex);
  });
});
