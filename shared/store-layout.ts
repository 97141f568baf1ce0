import type { StoreConfig } from "./types.ts";

// Subjects and keys of the store layout (docs/protocol.md, "Store layout"). The coordinator
// creates the buckets; agents only use the subjects below, which is what lets a node's
// credentials name exactly its own keys.

/** JetStream stream behind a KV bucket. */
export const kvStream = (bucket: string): string => `KV_${bucket}`;

/** The subject a KV key is stored under (a put publishes here). */
export const kvSubject = (bucket: string, key: string): string => `$KV.${bucket}.${key}`;

/** Every subject of a bucket's keys: the stream's subject and the republish source. */
export const kvWildcard = (bucket: string): string => `$KV.${bucket}.>`;

/** Direct get of a key's last value by subject: no consumer, one request. */
export const directGetSubject = (bucket: string, key: string): string => `$JS.API.DIRECT.GET.${kvStream(bucket)}.${kvSubject(bucket, key)}`;

/** Where the plan bucket republishes a headers-only notice of every put to `host`'s key. */
export const notifySubject = (config: Pick<StoreConfig, "notifyPrefix">, host: string): string => `${config.notifyPrefix}.${host}`;

/** The republish destination: `>` keeps every token of the key, so host names with dots work. */
export const notifyWildcard = (config: Pick<StoreConfig, "notifyPrefix">): string => `${config.notifyPrefix}.>`;

/**
 * A host's private reply prefix. Host names may hold dots (several subject tokens) but never
 * `~`, so mapping `.` to `~` gives one token per host and no host's prefix can contain another's.
 */
export const defaultInboxPrefix = (host: string): string => `fleetplan.inbox.${host.replaceAll(".", "~")}`;

/** The bucket of sealed run output (failed runs' tails): beside the status bucket, e.g. fleetplan-logs. */
export const logsBucket = (config: Pick<StoreConfig, "statusBucket">): string =>
  config.statusBucket.endsWith("-status") ? `${config.statusBucket.slice(0, -"-status".length)}-logs` : `${config.statusBucket}-logs`;
