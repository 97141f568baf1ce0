// The coordinator's access to the records beside the plans (shared/trust-layout.ts): trust documents
// and freshness records. NATS: keys of the plan bucket; Consul: their own prefixes. Only the
// coordinator's credentials may write there.
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { createConsulClient, exchange } from "../shared/consul-client.ts";
import { consulTransport } from "../shared/consul-transport.ts";
import { kvGetRequest, kvPutRequest, parseKvCasWrite, parseKvRead } from "../shared/consul-kv.ts";
import { FleetplanError } from "../shared/errors.ts";
import { readPrivateBytes } from "../shared/files.ts";
import { natsConnectOptions } from "../shared/nats-options.ts";
import type { StoreConfig } from "../shared/types.ts";
import { ensureStoreLayout } from "./store/nats-layout.ts";

/** Trust and freshness records on either store kind, so rotation and heartbeat do not depend on NATS or Consul. */
export interface SideStore {
  get(key: string): Promise<Uint8Array | null>;
  /** Write a key that must not exist yet (a trust version is written once): `conflict` otherwise. */
  create(key: string, value: Uint8Array): Promise<void>;
  put(key: string, value: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

const exists = (key: string) => new FleetplanError("conflict", `${key} already exists in the store (another rotation published it?)`);

const openNats = async (config: StoreConfig): Promise<SideStore> => {
  const nc = await connect(natsConnectOptions(config, { name: "fleetplan-trust", forever: false })).catch((error: unknown) => {
    throw new FleetplanError("store_unavailable", `NATS at ${config.servers.join(",")}: ${(error as Error).message}`, { cause: error });
  });
  try {
    await ensureStoreLayout(nc, config, { update: false });
    const kv = await new Kvm(nc).open(config.planBucket, { timeout: config.timeoutMs });
    return {
      get: async (key) => {
        const entry = await kv.get(key);
        return entry?.operation === "PUT" ? entry.value : null;
      },
      create: async (key, value) => {
        await kv.create(key, value).catch((error: unknown) => {
          const code = error instanceof JetStreamApiError ? error.code : 0;
          if (code === JetStreamApiCodes.StreamWrongLastSequence || /wrong last sequence|key exists/i.test((error as Error).message))
            throw exists(key);
          throw error;
        });
      },
      put: async (key, value) => void (await kv.put(key, value)),
      close: async () => void (await nc.drain().catch(() => nc.close())),
    };
  } catch (error) {
    await nc.close();
    throw error;
  }
};

const openConsul = (config: StoreConfig): SideStore => {
  const transport = consulTransport(config, {
    http,
    https,
    readFile: readFileSync,
    readPrivateFile: (path) => readPrivateBytes(path, "TLS key"),
  });
  const { client, close } = createConsulClient(config, {}, transport.send);
  const write = (key: string, value: Uint8Array, cas?: number) =>
    exchange(client, kvPutRequest(config, key, value, key, client.tuning.maxValueBytes, cas), parseKvCasWrite);
  return {
    get: async (key) => {
      const read = await exchange(client, kvGetRequest(config, key, { consistent: true }), parseKvRead);
      return read.entries.find((e) => e.key === key)?.value ?? null;
    },
    create: async (key, value) => {
      if (!(await write(key, value, 0))) throw exists(key);
    },
    put: async (key, value) => void (await write(key, value)),
    close: async () => {
      close();
      transport.destroy();
    },
  };
};

/** Open the side records of the configured store. */
export const openSideStore = async (config: StoreConfig): Promise<SideStore> =>
  config.kind === "consul" ? openConsul(config) : openNats(config);
