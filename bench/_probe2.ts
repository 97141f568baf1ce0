import { request, Agent } from "node:http";
import { mapLimit } from "../shared/pool.ts";
import { parseAgentMetrics } from "../coordinator/metrics-parse.ts";
import { agentExposition, startExposer } from "../test/helpers/metrics-server.ts";
const body = await agentExposition({ bootTime: 1 });
const exps = [];
const targets: {host: string; metricsUrl: string}[] = [];
for (let s = 0; s < 20; s++) { const routes: Record<string, {body: string}> = {}; for (let j = 0; j < 50; j++) routes[`/a${j}/metrics`] = { body }; const e = await startExposer(routes); exps.push(e); for (const p of Object.keys(routes)) targets.push({ host: `h${targets.length}`, metricsUrl: e.origin + p }); }
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const get = (url: string) => new Promise<string>((resolve, reject) => {
  const req = request(url, { agent, signal: AbortSignal.timeout(5000) }, (res) => { const chunks: Buffer[] = []; res.on("data", (c) => chunks.push(c)); res.on("end", () => resolve(Buffer.concat(chunks).toString())); res.on("error", reject); });
  req.on("error", reject); req.end();
});
for (let r = 0; r < 8; r++) { const t = performance.now(); let n = 0; await mapLimit(targets, 64, async (x) => { parseAgentMetrics(await get(x.metricsUrl), 0); n++; }); console.log(r, (performance.now() - t).toFixed(0), n); }
for (const e of exps) await e.close();
