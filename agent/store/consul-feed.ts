// Agent side of Consul KV: follow fleetplan/plans/<host> with blocking queries and publish
// fleetplan/status/<host>. Request rules and the watch loop live in shared/consul-*.ts; this
// file owns only the sockets.

import { readFileSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { type ConsulOptions, type ConsulSend, createConsulClient, exchange, watchKv } from "../../shared/consul-client.ts";
import { consulAgentOptions, type KvEntry, kvGetRequest, kvPutRequest, parseKvWrite, timeoutError, transportError } from "../../shared/consul-kv.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { CONSUL_PREFIX } from "../../shared/store-config.ts";
import { encodeStatus } from "../../shared/status.ts";
import type { AgentStatus, FeedEvents, PlanFeed, StoreConfig } from "../../shared/types.ts";

// The sockets: an agent (keep-alive, TLS files when https) and one HTTP exchange. The
// coordinator's consul-store.ts holds the same lines on purpose: shared/ does no transport
// I/O, and agent/ and coordinator/ never import each other.
const agentFor = (config: StoreConfig): HttpAgent =>
  config.servers[0]?.startsWith("https:") ? new HttpsAgent(consulAgentOptions(config.tls, readFileSync)) : new HttpAgent({ keepAlive: true });
const sendVia = (agent: HttpAgent): ConsulSend => (request, signal) =>
  new Promise((resolve, reject) => {
    const call = (request.url.startsWith("https:") ? httpsRequest : httpRequest) as typeof httpRequest;
    const options = { method: request.method, headers: request.headers, agent, signal, timeout: request.timeoutMs };
    const req = call(request.url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("error", (error) => reject(transportError(error, request)));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, index: res.headers["x-consul-index"] as string | undefined, body: Buffer.concat(chunks) }));
    });
    req.on("timeout", () => req.destroy(timeoutError(request)));
    req.on("error", (error) => reject(transportError(error, request)));
    req.end(request.body);
  });

/**
 * A PlanFeed over Consul KV. `follow` runs until close(): it delivers the key's current value,
 * then each new one, never the same ModifyIndex twice, and never the same bytes twice in a row
 * (a snapshot restore renumbers keys without changing them; the agent would only answer
 * `duplicate`). Store errors, ACL denials included, are logged and retried with backoff.
 */
export const createConsulFeed = (config: StoreConfig, opts: ConsulOptions = {}): PlanFeed => {
  const agent = agentFor(config);
  const { client, close: abort } = createConsulClient(config, opts, sendVia(agent));
  const { tuning, logger } = client;
  let following: Promise<void> | undefined;

  const follow = (host: string, events: FeedEvents): Promise<void> => {
    if (following) return Promise.reject(new FleetplanError("invalid_argument", "consul feed: follow() was already called"));
    const key = CONSUL_PREFIX.plans + host;
    let last: { revision: number; bytes: Uint8Array } | undefined;
    const onRead = async (entries: KvEntry[]) => {
      const entry = entries.find((e) => e.key === key);
      if (!entry || entry.modifyIndex === last?.revision) return;
      const same = last !== undefined && Buffer.compare(entry.value, last.bytes) === 0;
      last = { revision: entry.modifyIndex, bytes: entry.value };
      if (same) return logger.info("consul_same_value_skipped", { path: key, revision: entry.modifyIndex });
      try {
        await events.onEnvelope(entry.value, entry.modifyIndex);
      } catch (error) {
        logger.error("envelope_handler_failed", { path: key, revision: entry.modifyIndex, error });
      }
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

  const putStatus = async (status: AgentStatus): Promise<void> => {
    const key = CONSUL_PREFIX.status + status.host;
    await exchange(client, kvPutRequest(config, key, encodeStatus(status), `status of ${status.host}`, tuning.maxValueBytes), parseKvWrite);
  };

  const close = async (): Promise<void> => {
    abort();
    await following?.catch(() => undefined);
    agent.destroy();
  };

  return { kind: "consul", follow, putStatus, close };
};
