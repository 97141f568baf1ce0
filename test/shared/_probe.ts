import { sodiumReady, sealEnvelope, openEnvelope, generateAdminKey, generateNodeKey, planProblems, sodium } from "../../shared/mod.ts";
await sodiumReady();
const admin = generateAdminKey(); const node = generateNodeKey();
for (const size of [0, 4096, 1 << 20, 16 << 20]) {
  const content = Buffer.alloc(Math.floor(size * 3 / 4)).fill(7).toString("base64");
  const plan = { kind: "fleetplan/plan" as const, v: 1 as const, files: [{ path: "/etc/x", mode: 0o644, content }], steps: [{ name: "s", run: "true" }] };
  let t = performance.now();
  const env = sealEnvelope(plan, { id: 5, target: "h1", nodePublicKey: node.publicKey, signers: [admin], expires: Date.now() + 60000 });
  const t1 = performance.now();
  try {
  const o = openEnvelope(env, { hostname: "h1", nodeKeys: node, trust: { keys: new Map([[admin.keyId, admin.publicKey]]), threshold: 1 }, highWaterMark: { id: 0, planHash: null }, now: Date.now() });
  console.log(size, env.length, o.planBytes.length, (t1 - t).toFixed(1), (performance.now() - t1).toFixed(1));
  } catch (e) { console.log(size, "ERR", e); }
}
