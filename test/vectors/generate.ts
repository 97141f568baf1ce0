// Writes the envelope test vector beside this file (layout in README.md). crypto_box_seal uses
// a fresh ephemeral key on every call, so envelope.bin cannot be reproduced from the inputs: it
// is pinned as produced once, and regenerating (which changes ciphertext and signature) needs
// --force. Run: npx tsx test/vectors/generate.ts [--force]
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  adminKeyFromSeed,
  formatKey,
  KeyType,
  nodeKeyFromSeed,
  planBytes,
  sealEnvelope,
  SIGNING_PREFIX,
  sodium,
  sodiumReady,
} from "../../shared/mod.ts";
import type { Plan } from "../../shared/mod.ts";
import { splitEnvelope } from "../../shared/wire.ts";

const dir = fileURLToPath(new URL(".", import.meta.url));

/** Everything the envelope is made from, recorded in vector.json so checkers need nothing else. */
const inputs = {
  admin_seed_hex: "01".repeat(32),
  node_seed_hex: "02".repeat(32),
  id: 20240101120000,
  target: "web-1.example.org",
  issued: 1_704_110_400_000, // 2024-01-01T12:00:00Z
  expires: 4_102_444_800_000, // 2100-01-01T00:00:00Z, so checkers may use the real clock
  zstd_level: 3,
  plan_file: "plan.json",
};

await sodiumReady();
if (existsSync(join(dir, "envelope.bin")) && !process.argv.includes("--force")) {
  console.error("test/vectors/envelope.bin exists; regenerating changes its bytes (re-run with --force)");
  process.exit(1);
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
const admin = adminKeyFromSeed(sodium.from_hex(inputs.admin_seed_hex));
const node = nodeKeyFromSeed(sodium.from_hex(inputs.node_seed_hex));
const plan = JSON.parse(readFileSync(join(dir, inputs.plan_file), "utf8")) as Plan;
const plain = planBytes(plan);

const envelope = sealEnvelope(plan, {
  id: inputs.id,
  target: inputs.target,
  nodePublicKey: node.publicKey,
  signers: [admin],
  issued: inputs.issued,
  expires: inputs.expires,
  level: inputs.zstd_level,
});
const parts = splitEnvelope(envelope);
const header = JSON.parse(new TextDecoder().decode(parts.headerBytes)) as Record<string, unknown>;

const vector = {
  description: "fleetplan envelope v1 test vector; see README.md",
  inputs,
  keys: {
    admin_public_hex: hex(admin.publicKey),
    admin_key_id: admin.keyId,
    node_public_hex: hex(node.publicKey),
    node_key_id: node.keyId,
  },
  signing_prefix_hex: hex(SIGNING_PREFIX),
  plan_canonical: new TextDecoder().decode(plain),
  plan_hash: header.plan_hash,
  plan_size: plain.length,
  header,
  header_hex: hex(parts.headerBytes),
  layout: {
    header_offset: parts.headerBytes.byteOffset,
    header_len: parts.headerBytes.length,
    ciphertext_offset: parts.ciphertext.byteOffset,
    ciphertext_len: parts.ciphertext.length,
    signed_len: parts.signed.length,
    sig_count: parts.signatures.length,
  },
  signatures: parts.signatures.map((s) => ({ key_id: s.keyId, sig_hex: hex(s.sig) })),
  envelope_hex: hex(envelope),
};

const write = (name: string, text: string | Uint8Array, mode = 0o644): void => {
  writeFileSync(join(dir, name), text, { mode });
  chmodSync(join(dir, name), mode); // mode applies only on create
};
write("admin.pub", `${formatKey(KeyType.AdminPublic, admin.publicKey)}\n`);
write("admin.key", `${formatKey(KeyType.AdminPrivate, admin.privateKey)}\n`, 0o600);
write("node.pub", `${formatKey(KeyType.NodePublic, node.publicKey)}\n`);
write("node.key", `${formatKey(KeyType.NodePrivate, node.privateKey)}\n`, 0o600);
write("envelope.bin", envelope);
write("vector.json", `${JSON.stringify(vector, null, 2)}\n`);
console.log(`wrote ${envelope.length}-byte envelope ${inputs.id} for ${inputs.target} to ${dir}`);
