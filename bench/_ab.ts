import * as A from "./_orig/mod.ts";
import * as B from "../shared/mod.ts";
await B.sodiumReady();
const admin = B.adminKeyFromSeed(new Uint8Array(32).fill(1));
const node = B.nodeKeyFromSeed(new Uint8Array(32).fill(2));
const raw = new Uint8Array(2960); for (let i = 0, x = 2463534242; i < raw.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; raw[i] = x & 0xff; }
const plan = { kind: "fleetplan/plan" as const, v: 1 as const, files: [{ path: "/etc/app.conf", mode: 0o640, content: Buffer.from(raw).toString("base64") }], steps: [{ name: "reload", run: "systemctl reload app" }] };
const NOW = Date.now();
const so = { id: 2, target: "web-1.example.org", nodePublicKey: node.publicKey, signers: [admin], issued: NOW, expires: NOW + 3600000 };
const env = B.sealEnvelope(plan, so);
const oo = { hostname: "web-1.example.org", nodeKeys: node, trust: { keys: new Map([[admin.keyId, admin.publicKey]]), threshold: 1 }, highWaterMark: { id: 1, planHash: null }, now: NOW };
const ops: [string, () => unknown][] = [["A open", () => A.openEnvelope(env, oo)], ["B open", () => B.openEnvelope(env, oo)], ["A seal", () => A.sealEnvelope(plan, so)], ["B seal", () => B.sealEnvelope(plan, so)]];
const rates = new Map<string, number[]>();
for (let r = 0; r < 200; r++) for (const [n, f] of ops) { const t = performance.now(); const c0 = process.cpuUsage(); let c = 0; while (performance.now() - t < 20) { f(); c++; } const u = process.cpuUsage(c0); (rates.get(n) ?? rates.set(n, []).get(n)!).push(c * 1e6 / (u.user + u.system)); }
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
for (const [n, xs] of rates) console.log(n, (1e6 / med(xs)).toFixed(1), "us/cpu");
console.log("B/A open speedup", med(rates.get("B open")!.map((b, i) => b / rates.get("A open")![i]!)).toFixed(3));
console.log("B/A seal speedup", med(rates.get("B seal")!.map((b, i) => b / rates.get("A seal")![i]!)).toFixed(3));
