import { adminKeyFromSeed, nodeKeyFromSeed, openEnvelope, planBytes, sealEnvelope, sodiumReady, sodium, SIGNING_PREFIX } from "../shared/mod.ts";
import { parseEnvelope, verifySignatures } from "../shared/envelope.ts";
import { decompressPlan } from "../shared/codec.ts";
import { planProblems } from "../shared/plan.ts";
import { splitEnvelope, parseHeader } from "../shared/wire.ts";
import { blake2bHex } from "../shared/keys.ts";
await sodiumReady();
const admin = adminKeyFromSeed(new Uint8Array(32).fill(1));
const node = nodeKeyFromSeed(new Uint8Array(32).fill(2));
const raw = new Uint8Array(2960); for (let i = 0, x = 2463534242; i < raw.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; raw[i] = x & 0xff; }
const plan = { kind: "fleetplan/plan" as const, v: 1 as const, files: [{ path: "/etc/app.conf", mode: 0o640, content: Buffer.from(raw).toString("base64") }], steps: [{ name: "reload", run: "systemctl reload app" }] };
const NOW = Date.now();
const so = { id: 2, target: "h", nodePublicKey: node.publicKey, signers: [admin], issued: NOW, expires: NOW + 3600000 };
const env = sealEnvelope(plan, so);
const oo = { hostname: "h", nodeKeys: node, trust: { keys: new Map([[admin.keyId, admin.publicKey]]), threshold: 1 }, highWaterMark: { id: 1, planHash: null }, now: NOW };
const parts = parseEnvelope(env);
const plain = planBytes(plan);
const comp = sodium.crypto_box_seal_open(parts.ciphertext, node.publicKey, node.privateKey);
const time = (name: string, f: () => unknown, n = 3000) => { for (let i = 0; i < 200; i++) f(); const t = performance.now(); for (let i = 0; i < n; i++) f(); console.log(name.padEnd(20), ((performance.now() - t) / n * 1000).toFixed(2), "us"); };
for (let k = 0; k < 2; k++) {
time("open", () => openEnvelope(env, oo));
time("parseEnvelope", () => parseEnvelope(env));
time("split", () => splitEnvelope(env));
time("parseHeader", () => parseHeader(parts.headerBytes));
time("verifySignatures", () => verifySignatures(parts, oo.trust));
time("raw verify", () => sodium.crypto_sign_verify_detached(parts.signatures[0]!.sig, Buffer.concat([SIGNING_PREFIX, parts.signed]), admin.publicKey));
time("box open", () => sodium.crypto_box_seal_open(parts.ciphertext, node.publicKey, node.privateKey));
time("decompressPlan", () => decompressPlan(comp, plain.length));
time("blake2bHex", () => blake2bHex(plain));
time("JSON.parse+decode", () => JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain)));
const v = JSON.parse(new TextDecoder().decode(plain));
time("planProblems", () => planProblems(v));
time("seal", () => sealEnvelope(plan, so));
time("planBytes", () => planBytes(plan));
}
