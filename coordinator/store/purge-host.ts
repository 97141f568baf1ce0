// Decommission in the store: every key one host has (its plan, freshness record, status, sealed
// run output and enrollment announcement) removed with its history, for `server remove --purge`.
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createConsulClient, exchange } from "../../shared/consul-client.ts";
import { kvGetRequest, parseKvWrite } from "../../shared/consul-kv.ts";
import { consulTransport } from "../../shared/consul-transport.ts";
import { CONSUL_ENROLL_PREFIX, ENROLL_BUCKET } from "../../shared/enrollment.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { readPrivateBytes } from "../../shared/files.ts";
import { natsConnectOptions } from "../../shared/nats-options.ts";
import { CONSUL_PREFIX, describeStore } from "../../shared/store-config.ts";
import { kvStream, kvSubject, logsBucket } from "../../shared/store-layout.ts";
import { consulFreshKey, freshKey, isReservedHost } from "../../shared/trust-layout.ts";
import type { StoreConfig } from "../../shared/types.ts";
import { isValidHostname } from "../../shared/wire.ts";

/** One purged key: where it was, and how many stored values went (NATS; null on Consul, which does not say). */
export interface PurgedKey {
  key: string;
  removed: number | null;
}

/** The host's NATS keys as bucket and key (pure): every per-host key of the store layout. */
export const natsHostKeys = (config: StoreConfig, host: string): Array<{ bucket: string; key: string }> => [
  { bucket: config.planBucket, key: host },
  { bucket: config.planBucket, key: freshKey(host) },
  { bucket: config.statusBucket, key: host },
  { bucket: logsBucket(config), key: host },
  { bucket: ENROLL_BUCKET, key: host },
];

/** The host's Consul keys (pure). */
export const consulHostKeys = (host: string): string[] => [
  CONSUL_PREFIX.plans + host,
  consulFreshKey(host),
  CONSUL_PREFIX.status + host,
  CONSUL_PREFIX.logs + host,
  CONSUL_ENROLL_PREFIX + host,
];

const isStreamMissing = (error: unknown): boolean => error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;

// A stream purge filtered to the key's subject: every revision and no delete marker is left.
const purgeNats = async (config: StoreConfig, host: string): Promise<PurgedKey[]> => {
  const nc = await connect(natsConnectOptions(config, { name: "fleetplan-purge", forever: false }));
  try {
    const jsm = await jetstreamManager(nc, { timeout: config.timeoutMs });
    const purged: PurgedKey[] = [];
    for (const { bucket, key } of natsHostKeys(config, host)) {
      const removed = await jsm.streams.purge(kvStream(bucket), { filter: kvSubject(bucket, key) }).then(
        (r) => r.purged,
        (error: unknown) => {
          if (isStreamMissing(error)) return 0;
          throw error;
        },
      );
      purged.push({ key: `${bucket}/${key}`, removed });
    }
    return purged;
  } finally {
    await nc.close();
  }
};

// DELETE of each key; Consul keeps no history of a deleted key.
const purgeConsul = async (config: StoreConfig, host: string): Promise<PurgedKey[]> => {
  const files = { http, https, readFile: readFileSync, readPrivateFile: (path: string) => readPrivateBytes(path, "TLS key") };
  const transport = consulTransport(config, files);
  const { client, close } = createConsulClient(config, {}, transport.send);
  try {
    const purged: PurgedKey[] = [];
    for (const key of consulHostKeys(host)) {
      const { url, headers, timeoutMs } = kvGetRequest(config, key);
      await exchange(client, { method: "DELETE", url, headers, timeoutMs, what: key }, parseKvWrite);
      purged.push({ key, removed: null });
    }
    return purged;
  } finally {
    close();
    transport.destroy();
  }
};

/**
 * A purge filter is a NATS subject and a Consul path: `*` or `>` would match every host's key, `_trust.N`
 * a trust version, `..` or `/` another prefix. Only a name the inventory could hold is purged (pure).
 */
const checkPurgeHost = (host: string): string => {
  if (isValidHostname(host) && !isReservedHost(host)) return host;
  throw new FleetplanError(
    "invalid_argument",
    `${JSON.stringify(host)} is not a host name the inventory can hold (letters, digits, _ . -; not _trust. or _fresh.): nothing purged`,
  );
};

/** Remove every key of `host` from the store; store_unavailable when it cannot be reached (nothing is half-claimed). */
export const purgeHostKeys = async (config: StoreConfig, host: string): Promise<PurgedKey[]> => {
  checkPurgeHost(host);
  return (config.kind === "consul" ? purgeConsul(config, host) : purgeNats(config, host)).catch((error: unknown) => {
    if (error instanceof FleetplanError) throw error;
    const why = `purge of ${host} on ${describeStore(config)}: ${(error as Error).message}`;
    throw new FleetplanError("store_unavailable", why, { cause: error });
  });
};
