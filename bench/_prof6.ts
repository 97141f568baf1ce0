import { adminKeyFromSeed, nodeKeyFromSeed, openEnvelope, planBytes, sealEnvelope, sodiumReady } from "../shared/mod.ts";
import { parseHeader, splitEnvelope } from "../shared/wire.ts";
import { parseEnvelope } from "../shared/envelope.ts";
await sodiumReady();
const admin = adminKeyFromSeed(new Uint8Array(32).fill(1));
const node = nodeKeyFromSeed(new Uint8Array(32).fill(2));
const raw = new Uint8Array(2960); for (let i = 0, x = 2463534242; i < raw.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; raw[i] = x & 0xff; }
const plan = { kind: "fleetplan/plan" as const, v: 1 as const, files: [{ path: "/etc/app.conf", mode: 0o640, content: Buffer.from(raw).toString("base64") }], steps: [{ name: "reload", run: "systemctl reload app" }] };
const NOW = Date.now();
const env = sealEnvelope(plan, { id: 2, target: "web-1.example.org", nodePublicKey: node.publicKey, signers: [admin], issued: NOW, expires: NOW + 3600000 });
const hb = splitEnvelope(env).headerBytes;
const time = (name: string, f: () => unknown, n = 50000) => { for (let i = 0; i < 1000; i++) f(); const t = performance.now(); for (let i = 0; i < n; i++) f(); console.log(name.padEnd(20), ((performance.now() - t) / n * 1000).toFixed(2), "us"); };
for (let k = 0; k < 3; k++) { time("parseHeader", () => parseHeader(hb)); time("split", () => splitEnvelope(env)); time("parseEnvelope", () => parseEnvelope(env)); }
