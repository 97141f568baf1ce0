// Fixture of push-batches.test.ts and its child: an inventory of hosts with node keys from seeds
// (fast, reproducible), one admin key, and push() as the CLI calls it with a fixed clock.
import { openCoordinatorDb } from "../../coordinator/db.ts";
import type { CoordinatorDb, ServerRow } from "../../coordinator/db.ts";
import { push } from "../../coordinator/push.ts";
import type { PushEvent, PushSummary, PushTuning } from "../../coordinator/push.ts";
import { createNatsStore } from "../../coordinator/store/nats-store.ts";
import { adminKeyFromSeed, formatNodePublic, keyIdOf, nodeKeyFromSeed, planFromScript } from "../../shared/mod.ts";
import { silentLogger } from "../../shared/log.ts";
import type { NodeKeyPair } from "../../shared/types.ts";
import { testStoreConfig } from "../helpers/store-layout.ts";

export const admin = () => adminKeyFromSeed(new Uint8Array(32).fill(7));

/** Host i's node key: derived from i, so parent and child agree without sharing files. */
export const nodeKeyOf = (i: number): NodeKeyPair => {
  const seed = new Uint8Array(32);
  new DataView(seed.buffer).setUint32(0, i + 1);
  return nodeKeyFromSeed(seed);
};

/** Inventory rows host-0 … host-(n-1). */
export const inventory = (n: number): ServerRow[] =>
  Array.from({ length: n }, (_, i) => {
    const key = nodeKeyOf(i);
    return {
      host: `host-${i}`,
      nodeKey: formatNodePublic(key.publicKey, key.identity.publicKey),
      nodeKeyId: keyIdOf(key.publicKey),
      metricsUrl: null,
      ssh: null,
      group: null,
      bootstrapped: true,
      addedAt: 0,
    };
  });

/** What a test varies in pushAll: batch sizes, events, --force, the script, which hosts converged. */
export interface PushAllOptions {
  tuning?: Partial<PushTuning>;
  emit?: (e: PushEvent) => void;
  force?: boolean;
  script?: string;
  converged?: (servers: ServerRow[]) => Promise<ReadonlySet<string>>;
}

/** push() of one script plan to every server in `db`, at the fixed time `now`, nothing converged unless told. */
export const pushAll = async (db: CoordinatorDb, natsUrl: string, now: Date, opts: PushAllOptions = {}): Promise<PushSummary> => {
  const store = createNatsStore(testStoreConfig(natsUrl), { logger: silentLogger, putBudgetMs: 5_000 });
  const loaded = { source: "plan.sh", plan: planFromScript(opts.script ?? "true\n") };
  try {
    return await push(
      {
        targets: db.servers(),
        plans: new Map(db.servers().map((s) => [s.host, loaded])),
        dryRun: false,
        force: opts.force ?? false,
        wait: false,
        waitTimeoutMs: 0,
        expiresInMs: 3_600_000,
        concurrency: 64,
        viaSsh: false,
        ...(opts.tuning && { tuning: opts.tuning }),
      },
      {
        db,
        store: () => store,
        storeName: "nats",
        signers: [admin()],
        now: () => now,
        converged: opts.converged ?? (async () => new Set()),
        emit: opts.emit ?? (() => {}),
        operator: "test",
      },
    );
  } finally {
    await (await store.catch(() => null))?.close();
  }
};

export { openCoordinatorDb };
