// Coordinator side of Consul KV: publish envelopes to fleetplan/plans/<host>, read and follow
// fleetplan/status/. Request rules and the watch loop live in shared/consul-*.ts; this file
// owns only the sockets.

import { readFileSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { type ConsulOptions, type ConsulSend, createConsulClient, exchange, watchKv } from "../../shared/consul-client.ts";
import {
  consulAgentOptions, type KvEntry, kvGetRequest, kvPutRequest, parseKvRead, parseKvWrite, timeoutError, transportError,
} from "../../shared/consul-kv.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { decodeStatus } from "../../shared/status.ts";
import { CONSUL_PREFIX } from "../../shared/store-config.ts";
import type { AgentStatus, PlanStore, PutResult, StoreConfig } from "../../shared/types.ts";

// The sockets: an agent (keep-alive, TLS files when https) and one HTTP exchange. The
// agent's consul-feed.ts holds the same lines on purpose: shared/ does no transport I/O,
// and agent/ and coordinator/ never import each other.
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
 * A PlanStore over Consul KV. A put is refused before upload when over `maxValueBytes`; its
 * revision is the key's ModifyIndex, read back (consistent) after the write because Consul's
 * PUT answers only `true`. `watchStatuses` hands over every current status first, then each
 * key whose ModifyIndex changed, until its signal or close() aborts it.
 */
export const createConsulStore = (config: StoreConfig, opts: ConsulOptions = {}): PlanStore => {
  const agent = agentFor(config);
  const { client, close: abort } = createConsulClient(config, opts, sendVia(agent));
  const { tuning, logger } = client;
  const watches = new Set<Promise<void>>();

  const read = (key: string, recurse = false) => exchange(client, kvGetRequest(config, key, { recurse, consistent: !recurse }), parseKvRead);

  const put = async (host: string, envelope: Uint8Array): Promise<PutResult> => {
    const key = CONSUL_PREFIX.plans + host;
    const request = kvPutRequest(config, key, envelope, `plan envelope for ${host}`, tuning.maxValueBytes);
    await exchange(client, request, parseKvWrite);
    const entry = (await read(key)).entries.find((e) => e.key === key);
    if (!entry || Buffer.compare(entry.value, envelope) !== 0) {
      throw new FleetplanError("conflict", `consul: ${key} changed again before its revision could be read (another coordinator publishing?)`);
    }
    return { revision: entry.modifyIndex };
  };

  const revision = async (host: string): Promise<number | null> => {
    const key = CONSUL_PREFIX.plans + host;
    return (await read(key)).entries.find((e) => e.key === key)?.modifyIndex ?? null;
  };

  // A status counts only under its own host's key: an agent cannot speak for another host.
  const toStatus = (entry: KvEntry): AgentStatus | null => {
    const status = decodeStatus(entry.value);
    if (status && CONSUL_PREFIX.status + status.host === entry.key) return status;
    logger.warn("status_malformed", { path: entry.key });
    return null;
  };

  const statuses = async (): Promise<Map<string, AgentStatus>> => {
    const result = new Map<string, AgentStatus>();
    for (const entry of (await read(CONSUL_PREFIX.status, true)).entries) {
      const status = toStatus(entry);
      if (status) result.set(status.host, status);
    }
    return result;
  };

  const watchStatuses = async (onStatus: (status: AgentStatus) => void, signal: AbortSignal): Promise<void> => {
    const seen = new Map<string, number>();
    const watch = watchKv(client, {
      request: (index) => kvGetRequest(config, CONSUL_PREFIX.status, { recurse: true, index, waitMs: tuning.waitMs }),
      onRead: (entries) => {
        for (const entry of entries) {
          if (seen.get(entry.key) === entry.modifyIndex) continue;
          seen.set(entry.key, entry.modifyIndex);
          const status = toStatus(entry);
          if (status) onStatus(status);
        }
      },
      signal: AbortSignal.any([signal, client.signal]),
    });
    watches.add(watch);
    await watch.finally(() => watches.delete(watch));
  };

  const close = async (): Promise<void> => {
    abort();
    await Promise.allSettled(watches);
    agent.destroy();
  };

  return { kind: "consul", put, revision, statuses, watchStatuses, close };
};
