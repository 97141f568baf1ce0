// The NATS store layout as `fleetplan store init` creates it, for tests that start agents: agents
// never create buckets, so every test (and the demo and the load bench) creates them first here.
import { connect } from "@nats-io/transport-node";
import { setTimeout as sleep } from "node:timers/promises";
import { ensureStoreLayout } from "../../coordinator/store/nats-layout.ts";
import type { BucketOutcome } from "../../coordinator/store/nats-layout.ts";
import { natsConnectOptions } from "../../shared/nats-options.ts";
import { normalizeStoreConfig } from "../../shared/store-config.ts";
import type { StoreConfig } from "../../shared/types.ts";

/** A store config for a test server URL (comma-separated for a cluster). */
export const testStoreConfig = (url: string, replicas = 1): StoreConfig => {
  const problems: string[] = [];
  const config = normalizeStoreConfig({ url, replicas }, problems, {});
  if (problems.length > 0) throw new Error(problems.join("; "));
  return config;
};

/**
 * Create or update both buckets (idempotent), retrying for up to `ms` while JetStream starts or a
 * cluster elects its leader. A Consul store needs nothing; with `skipUnreachable`, neither does a
 * NATS server that is not listening (tests of agents started against no store).
 */
export const initStoreLayout = async (
  store: string | StoreConfig,
  opts: { ms?: number; skipUnreachable?: boolean } = {},
): Promise<BucketOutcome[]> => {
  const config = typeof store === "string" ? testStoreConfig(store) : store;
  if (config.kind !== "nats") return [];
  for (const deadline = Date.now() + (opts.ms ?? 30_000); ; ) {
    const nc = await connect(natsConnectOptions(config, { name: "fleetplan-test-init", forever: false })).catch((error: unknown) => {
      if (opts.skipUnreachable) return null;
      throw error;
    });
    if (!nc) return [];
    try {
      return await ensureStoreLayout(nc, config, { update: true });
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(250);
    } finally {
      await nc.close();
    }
  }
};
