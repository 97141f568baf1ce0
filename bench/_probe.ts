import { scrapeAgents } from "../coordinator/metrics-source.ts";
import { agentExposition, startExposer } from "../test/helpers/metrics-server.ts";
const body = await agentExposition({ bootTime: 1 });
const exps = [];
const targets = [];
for (let s = 0; s < 20; s++) { const routes: Record<string, {body: string}> = {}; for (let j = 0; j < 50; j++) routes[`/a${j}/metrics`] = { body }; const e = await startExposer(routes); exps.push(e); for (const p of Object.keys(routes)) targets.push({ host: `h${targets.length}`, metricsUrl: e.origin + p }); }
for (let r = 0; r < 8; r++) { const t = performance.now(); const res = await scrapeAgents(targets, { timeoutMs: 5000 }); console.log(r, (performance.now() - t).toFixed(0), res.reported.size, [...res.errors.values()].slice(0, 2)); }
for (const e of exps) await e.close();
