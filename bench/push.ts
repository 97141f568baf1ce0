// `fleetplan push` against its ceilings (issue 13 item 2), all in the same run: a real nats-server
// on a random loopback port, an inventory of --hosts hosts with real node keys, one 4 KiB plan.
// Figures: the seal rate on all cores (--hosts seals over one seal worker per core, start-up
// excluded) and on one core, the raw put rate (pipelined KV puts of envelope-sized values), and
// the real push (coordinator/push.ts push(), as the CLI calls it, no agents) from its start to
// every put acknowledged, with ratio = push_rate / min(seal_rate_all_cores, put_rate); then the same push again
// (push_again), whose compare-and-set puts go on the revisions the first one left, with no read.
// main_thread_busy_s: the time the push's main thread ran (event loop utilisation), the share it takes from the sealers.
// cpu_s: CPU seconds the push used (this process, seal workers included; nats-server), beside those sealing alone
// used (the seal_rate_all_cores run); cpu_floor_s: their sum over the cores, the least time the push can take here.
// Target: --hosts 10000 in ≤ 5 s, ratio ≥ 0.8. One JSON line per figure.
// Run: npm run build && npx tsx bench/push.ts [--hosts 10000] [--pool-min N] [--batch N]
// (seal-pool threshold and targets per batch, default PUSH_TUNING's)
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { ServerRow } from "../coordinator/db.ts";
import type { SealItem } from "../coordinator/seal-batch.ts";
import { adminKeyFromSeed, formatNodePublic, keyIdOf, nodeKeyFromSeed, normalizePlan, sodiumReady } from "../shared/mod.ts";
import type { Plan } from "../shared/mod.ts";
import { silentLogger } from "../shared/log.ts";
import { natsConnectOptions } from "../shared/nats-options.ts";
import { mapLimit } from "../shared/pool.ts";
import { startNats } from "../test/helpers/nats.ts";
import { initStoreLayout, testStoreConfig } from "../test/helpers/store-layout.ts";
import { importBuilt } from "../shared/built.mjs";
import { cpuOf } from "./proc.ts";

// The coordinator's code as the CLI runs it: built (dist/), its seal workers included, which under tsx would each
// spend ~0.4 s of a core loading the TypeScript loader first.
const built = async <T>(entry: string) => (await importBuilt(entry)) as T;
const { openCoordinatorDb } = await built<typeof import("../coordinator/db.ts")>("coordinator/db.js");
const { planBinder } = await built<typeof import("../coordinator/plan-binder.ts")>("coordinator/plan-binder.js");
const { planSaltKey } = await built<typeof import("../coordinator/plan-salt.ts")>("coordinator/plan-salt.js");
const { push, PUSH_TUNING } = await built<typeof import("../coordinator/push.ts")>("coordinator/push.js");
const { sealItems } = await built<typeof import("../coordinator/seal-batch.ts")>("coordinator/seal-batch.js");
const { createSealPool } = await built<typeof import("../coordinator/seal-pool.ts")>("coordinator/seal-pool.js");
const { createNatsStore } = await built<typeof import("../coordinator/store/nats-store.ts")>("coordinator/store/nats-store.js");

const { values } = parseArgs({
  options: { hosts: { type: "string", default: "10000" }, "pool-min": { type: "string" }, batch: { type: "string" } },
});
const hosts = Number(values.hosts);
const poolMin = values["pool-min"] === undefined ? PUSH_TUNING.poolMinTargets : Number(values["pool-min"]);
const batchSize = values.batch === undefined ? PUSH_TUNING.batchSize : Number(values.batch);
if (!Number.isInteger(hosts) || hosts < 1 || !Number.isInteger(poolMin) || poolMin < 0 || !Number.isInteger(batchSize) || batchSize < 1) {
  console.error("usage: bench/push.ts [--hosts 10000] [--pool-min N] [--batch N]   (positive integers)");
  process.exit(2);
}
const cores = availableParallelism();
const emit = (figure: Record<string, unknown>) => console.log(JSON.stringify({ bench: "push", hosts, cores, ...figure }));
const round = (x: number, digits = 0) => Number(x.toFixed(digits));
const cpuSeconds = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1e6;

/** A plan of about 4 KiB: one file of pseudo-random base64 (compresses like real payloads), one step. */
const plan4k = (): Plan => {
  const raw = new Uint8Array(2900);
  for (let i = 0, x = 2463534242; i < raw.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    raw[i] = x & 0xff;
  }
  return normalizePlan({
    kind: "fleetplan/plan",
    v: 1,
    files: [{ path: "/etc/app.conf", mode: 0o640, content: Buffer.from(raw).toString("base64") }],
    steps: [{ name: "reload", run: "systemctl reload app" }],
  });
};

await sodiumReady();
const server = await startNats();
const dir = mkdtempSync(join(tmpdir(), "fleetplan-bench-push-"));
try {
  const config = testStoreConfig(server.url);
  await initStoreLayout(config);
  const admin = adminKeyFromSeed(new Uint8Array(32).fill(1));
  const plan = plan4k();
  const rows: ServerRow[] = Array.from({ length: hosts }, (_, i) => {
    const seed = new Uint8Array(32);
    new DataView(seed.buffer).setUint32(0, i + 1);
    const node = nodeKeyFromSeed(seed);
    return {
      host: `host-${i}`,
      nodeKey: formatNodePublic(node.publicKey, node.identity.publicKey),
      nodeKeyId: keyIdOf(node.publicKey),
      metricsUrl: null,
      ssh: null,
      group: null,
      bootstrapped: true,
      addedAt: 0,
    };
  });
  const db = openCoordinatorDb(join(dir, "fleetplan.db"));
  db.addServers(rows);

  // Seal ceilings: the same items push seals, on one core (a sample) and on every core (all of them, workers warm).
  const bind = planBinder(plan, planSaltKey(admin));
  const items: SealItem[] = rows.map((r, i) => ({ bytes: bind(r.host).bytes, id: 20260101000000 + i, target: r.host, nodeKey: r.nodeKey }));
  const shared = { issued: Date.now(), expires: Date.now() + 3_600_000 };
  const sample = items.slice(0, Math.min(items.length, 1000));
  sealItems(sample.slice(0, 50), shared, [admin]);
  let t = performance.now();
  const envelope = sealItems(sample, shared, [admin])[0] as Uint8Array;
  const oneCore = sample.length / ((performance.now() - t) / 1000);
  emit({ figure: "seal_rate_one_core", value: round(oneCore), unit: "envelopes/s", envelope_bytes: envelope.length });
  t = performance.now();
  const pool = createSealPool([admin], cores);
  await pool.started;
  const startupMs = performance.now() - t;
  await pool.seal(items.slice(0, cores * 64), shared);
  t = performance.now();
  const sealCpu = process.cpuUsage();
  await pool.seal(items, shared);
  const sealAll = items.length / ((performance.now() - t) / 1000);
  const sealCpuS = cpuSeconds(process.cpuUsage(sealCpu));
  await pool.close();
  emit({ figure: "seal_pool_startup_ms", value: round(startupMs), note: "until every worker (one per core) can seal" });
  emit({
    figure: "seal_rate_all_cores",
    value: round(sealAll),
    unit: "envelopes/s",
    workers: cores,
    one_core: round(oneCore),
    cpu_s: round(sealCpuS, 2),
  });

  // Put ceiling: plain pipelined KV puts of envelope-sized values to a bucket of their own, 256 in flight.
  const nc = await connect(natsConnectOptions(config, { name: "bench-push", forever: false }));
  const raw = await new Kvm(nc).create("bench-raw-puts", { history: 5 });
  await mapLimit(rows.slice(0, 200), 256, (r) => raw.put(r.host, envelope));
  t = performance.now();
  await mapLimit(rows, 256, (r) => raw.put(r.host, envelope));
  const putRate = hosts / ((performance.now() - t) / 1000);
  await nc.close();
  emit({ figure: "put_rate", value: round(putRate), unit: "puts/s", in_flight: 256, value_bytes: envelope.length });

  // The real push: push() as `fleetplan push --plan FILE --all` calls it (store opened inside it, no agents, nothing converged).
  // Twice: the first push finds every key empty (a read, then a put); the second puts on the revisions the first left.
  const loaded = { source: "plan.json", plan };
  for (const figure of ["push", "push_again"]) {
    const store = createNatsStore(config, { logger: silentLogger });
    // Where the time goes: ms from the start to the first and last id reserved ("plan") and put acknowledged.
    const seen: Record<string, [number, number]> = {};
    const mark = (event: string) => {
      const ms = Math.round(performance.now() - t);
      seen[event] = [seen[event]?.[0] ?? ms, ms];
    };
    const busy = performance.eventLoopUtilization();
    const cpu = process.cpuUsage();
    const serverCpu = cpuOf(server.pid());
    t = performance.now();
    const summary = await push(
      {
        targets: db.servers(),
        plans: new Map(rows.map((r) => [r.host, loaded])),
        dryRun: false,
        force: false,
        wait: false,
        waitTimeoutMs: 0,
        expiresInMs: 3_600_000,
        concurrency: 256,
        viaSsh: false,
        tuning: { poolMinTargets: poolMin, batchSize },
      },
      {
        db,
        store: () => store,
        storeName: "nats",
        signers: [admin],
        now: () => new Date(),
        converged: async () => new Set(),
        emit: (e) => mark(e.event),
        operator: "bench",
      },
    );
    const pushS = (performance.now() - t) / 1000;
    const mainBusyS = performance.eventLoopUtilization(busy).active / 1000;
    const cpuS = { coordinator: cpuSeconds(process.cpuUsage(cpu)), nats_server: cpuOf(server.pid()) - serverCpu };
    await (await store).close();
    if (summary.counts.pushed !== hosts) throw new Error(`${figure}: ${JSON.stringify(summary.counts)}`);
    const pushRate = hosts / pushS;
    const ceiling = Math.min(sealAll, putRate);
    emit({
      figure,
      value: round(pushS, 2),
      unit: "s",
      rate: round(pushRate),
      seal_rate_all_cores: round(sealAll),
      put_rate: round(putRate),
      ratio: round(pushRate / ceiling, 2),
      bound: sealAll < putRate ? "seal" : "put",
      seal_workers: hosts >= poolMin ? cores : 0,
      batch: batchSize,
      main_thread_busy_s: round(mainBusyS, 2),
      cpu_s: { coordinator: round(cpuS.coordinator, 2), nats_server: round(cpuS.nats_server, 2), sealing_alone: round(sealCpuS, 2) },
      cpu_floor_s: round((cpuS.coordinator + cpuS.nats_server) / cores, 2),
      first_last_ms: seen,
      via: "coordinator/push.ts push()",
    });
  }
  db.close();
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
