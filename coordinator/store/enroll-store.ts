// The coordinator's side of the enrollment bucket (NATS) or prefix (Consul): read every
// announcement, remove one. The bucket is created by `fleetplan store init`, never here.
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { createConsulClient, exchange } from "../../shared/consul-client.ts";
import { kvGetRequest, parseKvRead, parseKvWrite } from "../../shared/consul-kv.ts";
import { consulTransport } from "../../shared/consul-transport.ts";
import { CONSUL_ENROLL_PREFIX, ENROLL_BUCKET } from "../../shared/enrollment.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { readPrivateBytes } from "../../shared/files.ts";
import { natsConnectOptions } from "../../shared/nats-options.ts";
import type { StoreConfig } from "../../shared/types.ts";
import type { StoredAnnouncement } from "../enrollment.ts";

/** The announcement keys of either store kind, so enrollment decisions do not depend on NATS or Consul. */
export interface EnrollStore {
  /** Every live announcement (deleted keys left out). */
  list(): Promise<StoredAnnouncement[]>;
  /** Remove HOST's announcement; with `revision`, only while it is still that one (a newer one is kept). */
  remove(host: string, revision?: number): Promise<void>;
  close(): Promise<void>;
}

const unavailable = (config: StoreConfig, error: unknown) =>
  new FleetplanError("store_unavailable", `NATS at ${config.servers.join(",")}: ${(error as Error).message}`, { cause: error });

const openBucket = (nc: Awaited<ReturnType<typeof connect>>, config: StoreConfig): Promise<KV> =>
  new Kvm(nc).open(ENROLL_BUCKET, { timeout: config.timeoutMs }).catch((error: unknown) => {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) {
      throw new FleetplanError("store_bucket_missing", `no enrollment bucket ${ENROLL_BUCKET}: run \`fleetplan store init\` to create it`);
    }
    throw unavailable(config, error);
  });

const natsEnrollStore = async (config: StoreConfig): Promise<EnrollStore> => {
  const nc = await connect(natsConnectOptions(config, { name: "fleetplan-enroll", forever: false })).catch((e: unknown) => {
    throw unavailable(config, e);
  });
  const kv = await openBucket(nc, config).catch(async (error: unknown) => {
    await nc.close();
    throw error;
  });
  // One ordered watch of the last values: one round trip for every announcement.
  const list = async (): Promise<StoredAnnouncement[]> => {
    const out: StoredAnnouncement[] = [];
    if ((await kv.status()).values === 0) return out;
    const watcher = await kv.watch({ include: KvWatchInclude.LastValue });
    const timer = setTimeout(() => watcher.stop(), config.timeoutMs);
    for await (const e of watcher) {
      if (e.operation === "PUT") out.push({ key: e.key, value: e.value, revision: e.revision, storedAt: e.created.getTime() });
      if (e.delta === 0) break;
    }
    clearTimeout(timer);
    watcher.stop();
    return out;
  };
  const remove = async (host: string, revision?: number): Promise<void> => {
    await kv.delete(host, revision === undefined ? {} : { previousSeq: revision }).catch((error: unknown) => {
      const changed = error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamWrongLastSequence;
      if (!changed) throw error;
    });
  };
  return { list, remove, close: () => nc.close() };
};

const consulEnrollStore = (config: StoreConfig): EnrollStore => {
  const files = { http, https, readFile: readFileSync, readPrivateFile: (path: string) => readPrivateBytes(path, "TLS key") };
  const transport = consulTransport(config, files);
  const { client, close } = createConsulClient(config, {}, transport.send);
  const list = async (): Promise<StoredAnnouncement[]> => {
    const read = await exchange(client, kvGetRequest(config, CONSUL_ENROLL_PREFIX, { recurse: true }), parseKvRead);
    return read.entries
      .filter((e) => e.key.length > CONSUL_ENROLL_PREFIX.length)
      .map((e) => ({ key: e.key.slice(CONSUL_ENROLL_PREFIX.length), value: e.value, revision: e.modifyIndex, storedAt: null }));
  };
  // Unconditional (no ?cas=): test/fakes/consul.ts does not model ?cas= on DELETE, so it could not be tested.
  const remove = async (host: string): Promise<void> => {
    const { url, headers, timeoutMs } = kvGetRequest(config, CONSUL_ENROLL_PREFIX + host);
    const request = { method: "DELETE" as const, url, headers, timeoutMs, what: `announcement of ${host}` };
    await exchange(client, request, parseKvWrite);
  };
  return {
    list,
    remove,
    close: async () => {
      close();
      transport.destroy();
    },
  };
};

/** The enrollment store of the configured backend. */
export const openEnrollStore = async (config: StoreConfig): Promise<EnrollStore> =>
  config.kind === "consul" ? consulEnrollStore(config) : natsEnrollStore(config);
