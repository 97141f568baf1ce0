import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { STORE_DEFAULTS } from "../../shared/store-config.ts";
import { initStoreLayout } from "./store-layout.ts";

/** The store's plan bucket as the tests see it, through plain nats.js (not fleetplan's store code). */
export const openPlanBucket = async (natsUrl: string, bucket: string = STORE_DEFAULTS.planBucket) => {
  // The layout `fleetplan store init` creates, so agents started later can follow the bucket.
  await initStoreLayout(natsUrl);
  const nc = await connect({ servers: natsUrl });
  const kvm = new Kvm(nc);
  const kv: KV = await kvm.create(bucket, { history: 5, replicas: 1 }).catch(() => kvm.open(bucket));
  return {
    kv,
    /** host → revision of its current envelope (null: never put). */
    revisions: async (hosts: string[]): Promise<Record<string, number | null>> =>
      Object.fromEntries(await Promise.all(hosts.map(async (h) => [h, (await kv.get(h))?.revision ?? null] as const))),
    close: () => nc.close(),
  };
};
