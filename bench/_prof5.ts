import binding from "zstd-napi/binding.js";
import { adminKeyFromSeed, nodeKeyFromSeed, openEnvelope, planBytes, sealEnvelope, sodiumReady, sodium, SIGNING_PREFIX, compressPlan } from "../shared/mod.ts";
import { splitEnvelope } from "../shared/wire.ts";
await sodiumReady();
const admin = adminKeyFromSeed(new Uint8Array(32).fill(1));
const node = nodeKeyFromSeed(new Uint8Array(32).fill(2));
const raw = new Uint8Array(2960); for (let i = 0, x = 2463534242; i < raw.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; raw[i] = x & 0xff; }
const plan = { kind: "fleetplan/plan" as const, v: 1 as const, files: [{ path: "/etc/app.conf", mode: 0o640, content: Buffer.from(raw).toString("base64") }], steps: [{ name: "reload", run: "systemctl reload app" }] };
const NOW = Date.now();
const so = { id: 2, target: "h", nodePublicKey: node.publicKey, signers: [admin], issued: NOW, expires: NOW + 3600000 };
const env = sealEnvelope(plan, so);
const oo = { hostname: "h", nodeKeys: node, trust: { keys: new Map([[admin.keyId, admin.publicKey]]), threshold: 1 }, highWaterMark: { id: 1, planHash: null }, now: NOW };
const parts = splitEnvelope(env); const msg = Buffer.concat([SIGNING_PREFIX, parts.signed]); const sig = parts.signatures[0]!.sig;
const plain = planBytes(plan); const comp = compressPlan(plain);
const dctx = new binding.DCtx(); const dout = new Uint8Array(plain.length);
const cctx = new binding.CCtx(); const cout = new Uint8Array(binding.compressBound(plain.length));
const time = (name: string, f: () => unknown, n = 4000) => { for (let i = 0; i < 300; i++) f(); const t = performance.now(); for (let i = 0; i < n; i++) f(); const us = (performance.now() - t) / n * 1000; console.log(name.padEnd(20), us.toFixed(1), "us"); return us; };
for (let k = 0; k < 3; k++) {
const a = time("verify", () => sodium.crypto_sign_verify_detached(sig, msg, admin.publicKey));
const b = time("box_open", () => sodium.crypto_box_seal_open(parts.ciphertext, node.publicKey, node.privateKey));
const c = time("zd", () => dctx.decompress(dout, comp), 20000);
const d = time("blake", () => sodium.crypto_generichash(32, plain, null), 20000);
console.log("sum", (a + b + c + d).toFixed(1));
time("raw chain open", () => { sodium.crypto_sign_verify_detached(sig, msg, admin.publicKey); sodium.crypto_box_seal_open(parts.ciphertext, node.publicKey, node.privateKey); dctx.decompress(dout, comp); sodium.crypto_generichash(32, plain, null); });
time("ours open", () => openEnvelope(env, oo));
const e = time("sign", () => sodium.crypto_sign_detached(msg, admin.privateKey));
const f = time("box_seal", () => sodium.crypto_box_seal(comp, node.publicKey));
const g = time("zc", () => cctx.compress(cout, plain, 3), 20000);
console.log("sum", (d + e + f + g).toFixed(1));
time("raw chain seal", () => { sodium.crypto_generichash(32, plain, null); cctx.compress(cout, plain, 3); sodium.crypto_box_seal(comp, node.publicKey); sodium.crypto_sign_detached(msg, admin.privateKey); });
time("ours seal", () => sealEnvelope(plan, so));
time("ours seal bytes", () => sealEnvelope(plain, so));
}
