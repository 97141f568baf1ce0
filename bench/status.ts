// `fleetplan status` for 1,000 servers: the direct scrape of 1,000 agents' /metrics, the one
// Prometheus query for the same fleet (a real Prometheus scraping them), and 1,000 verdicts.
// The fake agents are 20 loopback HTTP servers answering 50 paths each with the exposition the
// agent's own metrics code renders. Target: about one second for the whole fleet.
// Prints one JSON line per figure. Run: npx tsx bench/status.ts [--runs 5] [--no-prometheus]
import { parseArgs } from "node:util";
import { parseAgentMetrics } from "../coordinator/metrics-parse.ts";
import type { Reported } from "../coordinator/metrics-parse.ts";
import { queryPrometheus, scrapeAgents } from "../coordinator/metrics-source.ts";
import type { MetricsTarget } from "../coordinator/metrics-source.ts";
import { verdict } from "../coordinator/verdict.ts";
import { agentExposition, startExposer } from "../test/helpers/metrics-server.ts";
import type { Exposer } from "../test/helpers/metrics-server.ts";
import { startPrometheus } from "../test/helpers/prometheus.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" }, "no-prometheus": { type: "boolean", default: false } } });
const runs = Number(values.runs);
if (!(Number.isInteger(runs) && runs > 0)) throw new RangeError(`--runs must be a positive integer, got ${values.runs}`);
const AGENTS = 1000;
const PER_SERVER = 50;
const MAX_AGE_MS = 30 * 60_000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const emit = (figure: string, samplesMs: number[], extra: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ bench: "status", figure, agents: AGENTS, runs: samplesMs.length, median_ms: +median(samplesMs).toFixed(2), max_ms: +Math.max(...samplesMs).toFixed(2), ...extra }));
const timed = async (fn: () => Promise<unknown> | unknown): Promise<number> => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};

const planHash = (i: number) => (i % 16).toString(16).repeat(64);
const exposers: Exposer[] = [];
const targets: MetricsTarget[] = [];
for (let s = 0; s < AGENTS / PER_SERVER; s++) {
  const routes: Record<string, { body: string }> = {};
  for (let j = 0; j < PER_SERVER; j++) {
    const i = s * PER_SERVER + j;
    routes[`/agent-${i}/metrics`] = {
      body: await agentExposition({
        applied: { id: 20250307090501 + i, planHash: planHash(i), bootTime: 1_741_330_000 },
        acceptedId: 20250307090501 + i,
        bootTime: 1_741_330_000,
        lastRun: { success: true, finishedAt: Date.now(), durationMs: 1200 },
      }),
    };
  }
  const exposer = await startExposer(routes);
  exposers.push(exposer);
  for (const path of Object.keys(routes)) targets.push({ host: `web-${targets.length}`, metricsUrl: `${exposer.origin}${path}` });
}
const expected = new Map(targets.map((t, i) => [t.host, { id: 20250307090501 + i, planHash: planHash(i) }]));
const verdictsOf = (reported: Map<string, Reported>) => targets.map((t) => verdict(expected.get(t.host)!, reported.get(t.host) ?? null, null, Date.now(), MAX_AGE_MS));

try {
  const body = exposers[0]!.routes.values().next().value!.body;
  const parseMs: number[] = [];
  for (let r = 0; r < runs; r++) parseMs.push(await timed(() => { for (let i = 0; i < AGENTS; i++) parseAgentMetrics(body, 0); }));
  emit("parse_1000_expositions", parseMs, { body_bytes: body.length });

  const scrapeMs: number[] = [];
  let scraped = 0;
  for (let r = 0; r < runs; r++) {
    scrapeMs.push(await timed(async () => (scraped = (await scrapeAgents(targets, { timeoutMs: 5000 })).reported.size)));
  }
  emit("scrape_1000_agents", scrapeMs, { concurrency: 64, answered: scraped });

  const { reported } = await scrapeAgents(targets);
  const verdictMs: number[] = [];
  let converged = 0;
  for (let r = 0; r < runs; r++) verdictMs.push(await timed(() => (converged = verdictsOf(reported).filter((v) => v.verdict === "converged").length)));
  emit("verdict_1000_rows", verdictMs, { converged });

  if (!values["no-prometheus"]) {
    const prom = await startPrometheus({
      scrapeIntervalS: 5,
      targets: targets.map((t) => {
        const url = new URL(t.metricsUrl!);
        return { target: url.host, metricsPath: url.pathname, labels: { host: t.host } };
      }),
    });
    try {
      await prom.waitForTargetsUp(60_000);
      const queryMs: number[] = [];
      let answered = 0;
      for (let r = 0; r < runs; r++) {
        queryMs.push(await timed(async () => (answered = (await queryPrometheus(prom.url, targets, { timeoutMs: 10_000 })).reported.size)));
      }
      emit("prometheus_query_1000_agents", queryMs, { answered, queries_per_status: 1 });
    } finally {
      await prom.stop();
    }
  }
} finally {
  for (const e of exposers) await e.close();
}
