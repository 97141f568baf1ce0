import { adminKeyFromSeed, nodeKeyFromSeed, openEnvelope, sealEnvelope, sodiumReady } from "../shared/mod.ts";
await sodiumReady();
const admin = adminKeyFromSeed(new Uint8Array(32).fill(1));
const node = nodeKeyFromSeed(new Uint8Array(32).fill(2));
const raw = new Uint8Array(2960); for (let i = 0, x = 2463534242; i < raw.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; raw[i] = x & 0xff; }
const plan = { kind: "fleetplan/plan" as const, v: 1 as const, files: [{ path: "/etc/app.conf", mode: 0o640, content: Buffer.from(raw).toString("base64") }], steps: [{ name: "reload", run: "systemctl reload app" }] };
const NOW = Date.now();
const so = { id: 2, target: "h", nodePublicKey: node.publicKey, signers: [admin], issued: NOW, expires: NOW + 3600000 };
const env = sealEnvelope(plan, so);
const oo = { hostname: "h", nodeKeys: node, trust: { keys: new Map([[admin.keyId, admin.publicKey]]), threshold: 1 }, highWaterMark: { id: 1, planHash: null }, now: NOW };
const which = process.argv[2];
const t = performance.now();
for (let i = 0; i < 15000; i++) which === "seal" ? sealEnvelope(plan, so) : openEnvelope(env, oo);
console.log(which, ((performance.now() - t) / 15000 * 1000).toFixed(1), "us");
