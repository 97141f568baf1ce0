// Shared pieces of the reliability tests: plans that leave one marker line per execution, a
// coordinator (its own database, the world's admin key) pushing through the real push(), and
// ledger checks that tell "ran exactly once" from "ran twice" or "never ran".
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import Database from "better-sqlite3";
import { openCoordinatorDb } from "../../coordinator/db.ts";
import type { CoordinatorDb } from "../../coordinator/db.ts";
import type { LoadedPlan } from "../../coordinator/plan-source.ts";
import { push } from "../../coordinator/push.ts";
import type { PushEvent, PushSummary } from "../../coordinator/push.ts";
import { createNatsStore } from "../../coordinator/store/nats-store.ts";
import type { Ledger, RunRow } from "../../agent/ledger.ts";
import { silentLogger } from "../../shared/log.ts";
import type { Logger } from "../../shared/log.ts";
import { normalizePlan } from "../../shared/plan.ts";
import { STORE_DEFAULTS } from "../../shared/store-config.ts";
import type { Plan, PlanStore, StoreConfig } from "../../shared/types.ts";
import type { Node, World } from "../helpers/fleet.ts";
import { initStoreLayout, testStoreConfig } from "../helpers/store-layout.ts";

// The file a marker plan appends one line (`<id>`) to per execution.
const markerPath = (node: Node): string => join(node.root, "marker");

/** A plan whose only step appends this run's provisioning id to the node's marker file. */
export const markerPlan = (node: Node, label: string, extraStep = "true"): Plan => ({
  kind: "fleetplan/plan",
  v: 1,
  files: [],
  steps: [{ name: label, run: `${extraStep}\necho "$FLEETPLAN_PROVISIONING_ID" >> ${markerPath(node)}` }],
});

/** Ids in the node's marker file, one per execution, in execution order. */
export const markerIds = (node: Node): number[] =>
  existsSync(markerPath(node)) ? readFileSync(markerPath(node), "utf8").split("\n").filter(Boolean).map(Number) : [];

// A plan as the coordinator loads it from disk.
const loadedPlan = (plan: Plan, source = "test"): LoadedPlan => ({ source, plan: normalizePlan(plan) });

/** A store config for the coordinator side (comma-separated URLs for a cluster). */
export const storeConfig = (url: string, replicas = 1): StoreConfig => testStoreConfig(url, replicas);

export interface Coordinator {
  db: CoordinatorDb;
  /**
   * Push one plan per node through the real push() (ids, sealing, puts with retries), over a
   * store connection of its own, as one `fleetplan push` would.
   */
  push(nodes: Node[], planFor: (node: Node) => Plan, opts?: { emit?: (e: PushEvent) => void; concurrency?: number }): Promise<PushSummary>;
  close(): void;
}

/** A coordinator with its own database in the world dir and every node in its inventory. */
export const createCoordinator = (world: World, nodes: Node[], config: StoreConfig, logger: Logger = silentLogger): Coordinator => {
  const db = openCoordinatorDb(join(world.dir, "coordinator.db"));
  db.addServers(
    nodes.map((n) => ({
      host: n.host,
      nodeKey: readFileSync(n.nodePubPath, "utf8").trim(),
      nodeKeyId: n.keys.keyId,
      metricsUrl: `http://127.0.0.1:${n.metricsPort}/metrics`,
      ssh: null,
      group: null,
      bootstrapped: true,
      addedAt: Date.now(),
    })),
  );
  return {
    db,
    push: async (nodes, planFor, opts = {}) => {
      const opened: { store: Promise<PlanStore> | null } = { store: null };
      try {
        return await push(
          {
            targets: db.servers({ hosts: nodes.map((n) => n.host) }),
            plans: new Map(nodes.map((n) => [n.host, loadedPlan(planFor(n))])),
            dryRun: false,
            force: true,
            wait: false,
            waitTimeoutMs: 0,
            expiresInMs: 3_600_000,
            concurrency: opts.concurrency ?? 4,
            viaSsh: false,
          },
          {
            db,
            signers: [world.admin],
            storeName: "nats",
            now: () => new Date(),
            operator: "test",
            converged: async () => new Set(),
            store: () => (opened.store ??= createNatsStore(config, { logger })),
            emit: opts.emit ?? (() => {}),
          },
        );
      } finally {
        await (await opened.store?.catch(() => null))?.close();
      }
    },
    close: () => db.close(),
  };
};

/** The plan bucket through plain nats.js, as an attacker with store access would use it. */
export const openRawBucket = async (url: string) => {
  // The layout `fleetplan store init` creates (a test cluster: as many replicas as nodes).
  await initStoreLayout(storeConfig(url, url.split(",").length));
  const nc = await connect({ servers: url.split(","), maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  const kvm = new Kvm(nc);
  const kv: KV = await kvm.create(STORE_DEFAULTS.planBucket, { history: 5 }).catch(() => kvm.open(STORE_DEFAULTS.planBucket));
  return {
    nc,
    /** Put, retrying for up to `ms` (a put during an outage times out). */
    put: async (host: string, bytes: Uint8Array, ms = 15_000): Promise<number> => {
      for (const deadline = Date.now() + ms; ; ) {
        try {
          return await kv.put(host, bytes, { timeout: 2_000 });
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(100);
        }
      }
    },
    close: () => nc.close(),
  };
};
export type RawBucket = Awaited<ReturnType<typeof openRawBucket>>;

/** Every run of a ledger, oldest first. */
export const allRuns = (ledger: Ledger): RunRow[] => ledger.runs(1_000_000).reverse();

/** Runs that executed (started), oldest first. */
export const executedRuns = (ledger: Ledger): RunRow[] => allRuns(ledger).filter((r) => r.startedAt !== null);

/** Every row of every table of an SQLite file, as JSON text (to search for leaks). */
export const dumpDatabase = (path: string): string => {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    return JSON.stringify(Object.fromEntries(tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}"`).all()])));
  } finally {
    db.close();
  }
};
