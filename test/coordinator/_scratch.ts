import { startPrometheus } from "../helpers/prometheus.ts";
import { agentExposition, startExposer } from "../helpers/metrics-server.ts";
import { queryPrometheus, fleetQuery } from "../../coordinator/metrics-source.ts";
const body = await agentExposition({ applied: { id: 20250101000000, planHash: "a".repeat(64), bootTime: 1700000000 }, acceptedId: 20250101000000, lastRun: { success: true, finishedAt: Date.now(), durationMs: 100 }, bootTime: 1700000000 });
const e1 = await startExposer({ "/metrics": { body } });
const e2 = await startExposer({ "/metrics": { body } });
const prom = await startPrometheus({ targets: [`127.0.0.1:${e1.port}`, `127.0.0.1:${e2.port}`] });
try {
  await prom.waitForTargetsUp();
  const t0 = Date.now();
  const targets = [{ host: "a", metricsUrl: `${e1.origin}/metrics` }, { host: "b", metricsUrl: `${e2.origin}/metrics` }];
  let r = await queryPrometheus(prom.url, targets, { lookbackMs: 60000 });
  console.log(Date.now() - t0, r);
  await e2.close();
  await new Promise((r) => setTimeout(r, 3000));
  r = await queryPrometheus(prom.url, targets, { lookbackMs: 60000 });
  console.log(Date.now(), r);
  const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(fleetQuery(60000, 1000))}`);
  console.log(JSON.stringify(await res.json()).slice(0, 3000));
} finally { await prom.stop(); await e1.close(); }
