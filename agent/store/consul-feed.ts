// Agent side of Consul KV: follow fleetplan/plans/<host> with blocking queries and publish
// fleetplan/status/<host>. Request rules and the watch loop live in shared/consul-*.ts; this
// file only hands node:http(s) to shared/consul-transport.ts.

import { readFileSync } from "node:fs";
import { readPrivateBytes } from "../../shared/files.ts";
import * as http from "node:http";
import * as https from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import { type ConsulOptions, createConsulClient, exchange, watchKv } from "../../shared/consul-client.ts";
import { consulTransport, singleKeyReplyBytes } from "../../shared/consul-transport.ts";
import { type KvEntry, kvGetRequest, kvPutRequest, parseKvRead, parseKvWrite, resolveTuning } from "../../shared/consul-kv.ts";
import { FleetplanError, reasonOf } from "../../shared/errors.ts";
import { backoffDelay } from "../../shared/retry.ts";
import { CONSUL_PREFIX } from "../../shared/store-config.ts";
import type { FeedEvents, PlanFeed, StoreConfig } from "../../shared/types.ts";

/**
 * A PlanFeed over Consul KV. `follow` runs until close(): it delivers the key's current value,
 * then each new one, never the same ModifyIndex twice, and never the same bytes twice in a row
 * (a snapshot restore renumbers keys without changing them; the agent would only answer
 * `duplicate`). Store errors, ACL denials included, are logged and retried with backoff; so
 * is a value whose handler rejected: it counts as delivered only once onEnvelope resolves.
 */
export const createConsulFeed = (config: StoreConfig, opts: ConsulOptions = {}): PlanFeed => {
  // The feed only reads its own key, so a reply never needs more room than one value.
  const maxReplyBytes = singleKeyReplyBytes(resolveTuning(opts).maxValueBytes);
  const transport = consulTransport(
    config,
    { http, https, readFile: readFileSync, readPrivateFile: (path) => readPrivateBytes(path, "TLS key") },
    maxReplyBytes,
  );
  const { client, close: abort } = createConsulClient(config, opts, transport.send);
  const { tuning, logger } = client;
  let following: Promise<void> | undefined;

  const follow = (host: string, events: FeedEvents): Promise<void> => {
    if (following) return Promise.reject(new FleetplanError("invalid_argument", "consul feed: follow() was already called"));
    const key = CONSUL_PREFIX.plans + host;
    let last: { revision: number; bytes: Uint8Array } | undefined;
    // Until the handler takes the value (e.g. the ledger was busy), try it again after a backoff;
    // the watch waits meanwhile, so values stay in order. close() ends the waiting.
    const deliver = async (entry: KvEntry): Promise<void> => {
      for (let failures = 0; !client.signal.aborted; failures++) {
        try {
          await events.onEnvelope(entry.value, entry.modifyIndex);
          last = { revision: entry.modifyIndex, bytes: entry.value };
          return;
        } catch (error) {
          const delayMs = backoffDelay(failures, tuning.backoff);
          logger.error("store_deliver_failed", {
            path: key,
            revision: entry.modifyIndex,
            reason: reasonOf(error),
            error,
            retry_in_ms: delayMs,
          });
          await sleep(delayMs, undefined, { signal: client.signal }).catch(() => undefined);
        }
      }
    };
    const onRead = async (entries: KvEntry[]) => {
      const entry = entries.find((e) => e.key === key);
      if (!entry || entry.modifyIndex === last?.revision) return;
      if (last !== undefined && Buffer.compare(entry.value, last.bytes) === 0) {
        last = { revision: entry.modifyIndex, bytes: entry.value };
        return logger.info("consul_same_value_skipped", { path: key, revision: entry.modifyIndex });
      }
      await deliver(entry);
    };
    following = watchKv(client, {
      request: (index) => kvGetRequest(config, key, { index, waitMs: tuning.waitMs }),
      onRead,
      onConnection: (up) => {
        logger.info(up ? "store_connected" : "store_disconnected", {});
        events.onConnection?.(up);
      },
      signal: client.signal,
    });
    return following;
  };

  const putStatus = async (host: string, record: Uint8Array): Promise<void> => {
    const key = CONSUL_PREFIX.status + host;
    await exchange(client, kvPutRequest(config, key, record, `status of ${host}`, tuning.maxValueBytes), parseKvWrite);
  };

  const putOutput = async (host: string, record: Uint8Array): Promise<void> => {
    const key = CONSUL_PREFIX.logs + host;
    await exchange(client, kvPutRequest(config, key, record, `output of ${host}`, tuning.maxValueBytes), parseKvWrite);
  };

  // A trust document or this host's freshness record: polled by agent/trust-chain.ts (Consul sends no notices).
  const readSide = async (key: string): Promise<Uint8Array | null> =>
    (await exchange(client, kvGetRequest(config, key, { consistent: true }), parseKvRead)).entries.find((e) => e.key === key)?.value ??
    null;

  const close = async (): Promise<void> => {
    abort();
    await following?.catch(() => undefined);
    transport.destroy();
  };

  return { kind: "consul", follow, putStatus, putOutput, readSide, close };
};
