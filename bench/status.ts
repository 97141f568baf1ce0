// `fleetplan status` for 1,000 servers: the direct scrape of 1,000 agents' /metrics, the one
// Prometheus query for the same fleet (a real Prometheus scraping them), and 1,000 verdicts.
// The fake agents live in a child process (this file with --serve): 20 loopback HTTP servers
// answering 50 paths each with the exposition the agent's own metrics code renders, so the
// figures are the coordinator's side alone. Wall time and this process's CPU time are both
// printed: on a shared machine CPU time is the steadier figure. Target: about one second.
// Prints one JSON line per figure. Run: npx tsx bench/status.ts [--runs 5] [--no-prometheus]
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { parseAgentMetrics } from "../coordinator/metrics-parse.ts";
import { queryPrometheus, scrapeAgents } from "../coordinator/metrics-source.ts";
import type { MetricsTarget } from "../coordinator/metrics-source.ts";
import { verdict } from "../coordinator/verdict.ts";
import { agentExposition, startExposer } from "../test/helpers/metrics-server.ts";
import { startPrometheus } from "../test/helpers/prometheus.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    "no-prometheus": { type: "boolean", default: false },
    serve: { type: "boolean", default: false },
  },
});
const AGENTS = 1000;
const PER_SERVER = 50;
const MAX_AGE_MS = 30 * 60_000;
const FIRST_ID = 20250307090501;
const planHash = (i: number) => (i % 16).toString(16).repeat(64);

/** Child mode: serve the fake fleet, print its URLs as one JSON line, run until killed. */
const serveFleet = async (): Promise<void> => {
  const urls: string[] = [];
  for (let s = 0; s < AGENTS / PER_SERVER; s++) {
    const routes: Record<string, { body: string }> = {};
    for (let j = 0; j < PER_SERVER; j++) {
      const i = s * PER_SERVER + j;
      const applied = { id: FIRST_ID + i, planHash: planHash(i), bootTime: 1_741_330_000 };
      const lastRun = { success: true, finishedAt: Date.now(), durationMs: 1200 };
      routes[`/agent-${i}/metrics`] = {
        body: await agentExposition({ applied, acceptedId: applied.id, bootTime: applied.bootTime, lastRun }),
      };
    }
    const exposer = await startExposer(routes);
    urls.push(...Object.keys(routes).map((path) => `${exposer.origin}${path}`));
  }
  process.stdout.write(`${JSON.stringify(urls)}\n`);
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
interface Sample {
  wallMs: number;
  cpuMs: number;
}
const timed = async (fn: () => unknown): Promise<Sample> => {
  const cpu = process.cpuUsage();
  const t = performance.now();
  await fn();
  const used = process.cpuUsage(cpu);
  return { wallMs: performance.now() - t, cpuMs: (used.user + used.system) / 1000 };
};
const emit = (figure: string, samples: Sample[], extra: Record<string, unknown> = {}) => {
  const round = (x: number) => +x.toFixed(2);
  console.log(
    JSON.stringify({
      bench: "status",
      figure,
      agents: AGENTS,
      runs: samples.length,
      median_wall_ms: round(median(samples.map((s) => s.wallMs))),
      max_wall_ms: round(Math.max(...samples.map((s) => s.wallMs))),
      median_cpu_ms: round(median(samples.map((s) => s.cpuMs))),
      ...extra,
    }),
  );
};
const repeat = async (runs: number, fn: () => unknown): Promise<Sample[]> => {
  const out: Sample[] = [];
  for (let r = 0; r < runs; r++) out.push(await timed(fn));
  return out;
};

const measure = async (urls: string[], runs: number): Promise<void> => {
  const targets: MetricsTarget[] = urls.map((metricsUrl, i) => ({ host: `web-${i}`, metricsUrl }));
  const expected = new Map(targets.map((t, i) => [t.host, { id: FIRST_ID + i, planHash: planHash(i) }]));

  let answered = 0;
  const scrape = await repeat(runs, async () => (answered = (await scrapeAgents(targets, { timeoutMs: 5000 })).reported.size));
  // The first run is what one `fleetplan status` pays: a cold process, no connections yet.
  emit("scrape_1000_agents_cold", scrape.slice(0, 1), { concurrency: 64, answered });
  if (runs > 1) emit("scrape_1000_agents_warm", scrape.slice(1), { concurrency: 64, answered });

  const { reported } = await scrapeAgents(targets);
  const body = await fetch(urls[0]!).then((r) => r.text());
  emit(
    "parse_1000_expositions",
    await repeat(runs, () => {
      for (let i = 0; i < AGENTS; i++) parseAgentMetrics(body, 0);
    }),
    { body_bytes: body.length },
  );
  let converged = 0;
  const verdicts = await repeat(runs, () => {
    converged = targets.filter(
      (t) => verdict(expected.get(t.host)!, reported.get(t.host) ?? null, null, Date.now(), MAX_AGE_MS).verdict === "converged",
    ).length;
  });
  emit("verdict_1000_rows", verdicts, { converged });

  if (values["no-prometheus"]) return;
  const prom = await startPrometheus({
    scrapeIntervalS: 5,
    targets: targets.map((t) => {
      const url = new URL(t.metricsUrl!);
      return { target: url.host, metricsPath: url.pathname, labels: { host: t.host } };
    }),
  });
  try {
    await prom.waitForTargetsUp(60_000);
    const query = await repeat(
      runs,
      async () => (answered = (await queryPrometheus(prom.url, targets, { timeoutMs: 10_000 })).reported.size),
    );
    emit("prometheus_query_1000_agents", query, { answered, queries_per_status: 1 });
  } finally {
    await prom.stop();
  }
};

if (values.serve) {
  await serveFleet();
} else {
  const runs = Number(values.runs);
  if (!(Number.isInteger(runs) && runs > 0)) throw new RangeError(`--runs must be a positive integer, got ${values.runs}`);
  const child = spawn(process.execPath, ["--import", "tsx", import.meta.filename, "--serve"], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout }).once("line", resolve));
    await measure(JSON.parse(line) as string[], runs);
  } finally {
    child.kill();
  }
}
