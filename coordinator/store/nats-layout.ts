// The NATS store layout, owned by the coordinator: the stream settings of both KV buckets, whether
// an existing bucket has them, and create-or-update. Agents never create or change a bucket.
import { DiscardPolicy, JetStreamApiCodes, JetStreamApiError, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import type { JetStreamManager, StreamConfig } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { ENROLL_BUCKET, MAX_ENROLLMENT_BYTES } from "../../shared/enrollment.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { kvStream, kvWildcard, logsBucket, notifyWildcard } from "../../shared/store-layout.ts";
import type { StoreConfig } from "../../shared/types.ts";

/** Only coordinators hold consumers (status watches), so a small cap costs nothing and stops a consumer per agent. */
export const MAX_CONSUMERS = 64;

/** The settings `store init` owns on an existing bucket; everything else (history, replicas) is kept. */
export type LayoutFields = Pick<StreamConfig, "allow_direct" | "max_consumers"> &
  Partial<Pick<StreamConfig, "republish" | "max_msg_size" | "max_bytes" | "allow_rollup_hdrs">>;

/** A stream configuration as JetStream takes it: a name and any settings. */
export type StreamSettings = Partial<StreamConfig> & { name: string };

export interface BucketLayout {
  bucket: string;
  history: number;
  fields: LayoutFields;
}

export type LayoutAction = "created" | "current" | "updated" | "recreated";

export interface BucketOutcome {
  bucket: string;
  stream: string;
  action: LayoutAction;
  /** What was out of date before (empty when created or current). */
  drift: string[];
}

/** The buckets' layouts (pure): the plan bucket republishes a headers-only notice of every put. */
export const storeLayout = (config: StoreConfig): BucketLayout[] => [
  {
    bucket: config.planBucket,
    history: 5,
    fields: {
      allow_direct: true,
      max_consumers: MAX_CONSUMERS,
      republish: { src: kvWildcard(config.planBucket), dest: notifyWildcard(config), headers_only: true },
    },
  },
  { bucket: config.statusBucket, history: 1, fields: { allow_direct: true, max_consumers: MAX_CONSUMERS } },
  // Sealed output of failed runs: the last 5 per host, so `fleetplan logs HOST --id N` can reach back a little.
  { bucket: logsBucket(config), history: 5, fields: { allow_direct: true, max_consumers: MAX_CONSUMERS } },
];

/**
 * The enrollment bucket (`store init` only: push never needs it). Anyone holding the bootstrap
 * credential may put there, so values are capped, the bucket is capped, and rollup headers are
 * off (a `Nats-Rollup: all` put would otherwise purge every announcement).
 */
const enrollLayout = (): BucketLayout => ({
  bucket: ENROLL_BUCKET,
  history: 1,
  fields: {
    allow_direct: true,
    max_consumers: MAX_CONSUMERS,
    max_msg_size: 2 * MAX_ENROLLMENT_BYTES,
    max_bytes: 64 * 1024 * 1024,
    allow_rollup_hdrs: false,
  },
});

/** The full stream of a new bucket: what nats.js's Kvm.create writes, plus the layout fields (pure). */
export const bucketStreamConfig = (layout: BucketLayout, replicas: number): StreamSettings => ({
  name: kvStream(layout.bucket),
  subjects: [kvWildcard(layout.bucket)],
  retention: RetentionPolicy.Limits,
  max_msgs_per_subject: layout.history,
  max_msg_size: -1,
  discard: DiscardPolicy.New,
  storage: StorageType.File,
  num_replicas: replicas,
  allow_rollup_hdrs: true,
  ...layout.fields,
});

/** How an existing stream differs from the layout (pure); empty when it is current. */
export const layoutDrift = (current: Partial<StreamConfig>, fields: LayoutFields): string[] => {
  const drift: string[] = [];
  if (current.allow_direct !== true) drift.push("direct get is off");
  if (current.max_consumers !== fields.max_consumers) {
    drift.push(`max_consumers is ${current.max_consumers === -1 ? "unlimited" : current.max_consumers}, not ${fields.max_consumers}`);
  }
  const want = fields.republish;
  const have = current.republish;
  if (want && (have?.src !== want.src || have?.dest !== want.dest || have?.headers_only !== true)) {
    drift.push(
      have ? `republishes ${have.src} to ${have.dest}, not headers of ${want.src} to ${want.dest}` : `no republish to ${want.dest}`,
    );
  }
  return drift;
};

const isNotFound = (error: unknown): boolean => error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;

const streamInfo = (jsm: JetStreamManager, name: string) =>
  jsm.streams.info(name).catch((error: unknown) => {
    if (isNotFound(error)) return null;
    throw error;
  });

/** Refused in place (nats-server 2.9 cannot change republish or max_consumers of a stream). */
const isUnchangeable = (error: unknown): boolean => error instanceof JetStreamApiError && /can not change/i.test(error.message);

// Copy the live values out, delete the stream, create it with the layout and put them back. Sequences
// start again: agents see younger messages under lower sequences and reset (a redelivered envelope
// is a benign duplicate). A push in between may be lost: run `store init` when no push is in flight.
const recreate = async (nc: NatsConnection, jsm: JetStreamManager, config: StreamSettings, bucket: string): Promise<void> => {
  const kv = await new Kvm(nc).open(bucket);
  const values: [string, Uint8Array][] = [];
  for await (const key of await kv.keys()) {
    const entry = await kv.get(key);
    if (entry?.operation === "PUT") values.push([key, entry.value]);
  }
  await jsm.streams.delete(config.name);
  await jsm.streams.add(config);
  for (const [key, value] of values) await kv.put(key, value);
};

/**
 * Create missing buckets with the layout; an existing bucket whose layout is outdated is updated
 * (in place, or recreated with its values where the server refuses) when `update`, else refused
 * with store_layout_outdated naming `fleetplan store init`.
 */
export const ensureStoreLayout = async (nc: NatsConnection, config: StoreConfig, opts: { update: boolean }): Promise<BucketOutcome[]> => {
  const jsm = await jetstreamManager(nc, { timeout: config.timeoutMs });
  const outcomes: BucketOutcome[] = [];
  for (const layout of opts.update ? [...storeLayout(config), enrollLayout()] : storeLayout(config)) {
    const stream = kvStream(layout.bucket);
    const info = await streamInfo(jsm, stream);
    if (!info) {
      // A coordinator racing us with the same settings makes this add a no-op, not an error.
      await jsm.streams.add(bucketStreamConfig(layout, config.replicas));
      outcomes.push({ bucket: layout.bucket, stream, action: "created", drift: [] });
      continue;
    }
    const drift = layoutDrift(info.config, layout.fields);
    if (drift.length === 0) {
      outcomes.push({ bucket: layout.bucket, stream, action: "current", drift });
      continue;
    }
    if (!opts.update) {
      throw new FleetplanError(
        "store_layout_outdated",
        `bucket ${layout.bucket} has an outdated layout (${drift.join("; ")}): ` +
          "agents cannot follow it; run `fleetplan store init` to update it",
      );
    }
    const wanted = { ...info.config, ...layout.fields };
    const action = await jsm.streams.update(stream, wanted).then(
      () => "updated" as const,
      async (error: unknown) => {
        if (!isUnchangeable(error)) throw error;
        await recreate(nc, jsm, wanted, layout.bucket);
        return "recreated" as const;
      },
    );
    outcomes.push({ bucket: layout.bucket, stream, action, drift });
  }
  return outcomes;
};
