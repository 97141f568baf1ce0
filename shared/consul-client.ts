// The two ways fleetplan talks to Consul KV, over a `send` its caller supplies (shared/ does no
// transport I/O): one request retried with backoff, and a blocking-query watch that never
// gives up. Index rules and parsing are in consul-kv.ts.

import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type ConsulReply,
  type ConsulRequest,
  type ConsulTuning,
  type KvEntry,
  type KvRead,
  nextIndex,
  parseKvRead,
  type ResolvedTuning,
  resolveTuning,
} from "./consul-kv.ts";
import { reasonOf } from "./errors.ts";
import { type Logger, silentLogger } from "./log.ts";
import { backoffDelay, withRetry } from "./retry.ts";
import { describeStore } from "./store-config.ts";
import type { StoreConfig } from "./types.ts";

/** Puts one request on the wire (node:http/https in the agent and coordinator adapters). */
export type ConsulSend = (request: ConsulRequest, signal: AbortSignal) => Promise<ConsulReply>;

export interface ConsulClient {
  send: ConsulSend;
  tuning: ResolvedTuning;
  logger: Logger;
  /** Aborted by the owner's close(): ends retries and in-flight requests. */
  signal: AbortSignal;
}

/** What the Consul feed and store accept beside the store config. */
export interface ConsulOptions extends ConsulTuning {
  logger?: Logger;
}

/** A client over `send` for one store, and the close() that aborts its retries and watches. */
export const createConsulClient = (
  config: StoreConfig,
  opts: ConsulOptions,
  send: ConsulSend,
): { client: ConsulClient; close: () => void } => {
  const closed = new AbortController();
  // Every request in flight (a push has hundreds) listens on this one signal while it runs and
  // lets go when it ends: many listeners are expected, not a leak, so Node is told not to warn.
  setMaxListeners(0, closed.signal);
  const logger = (opts.logger ?? silentLogger).child({ store: describeStore(config) });
  return { client: { send, tuning: resolveTuning(opts), logger, signal: closed.signal }, close: () => closed.abort() };
};

export interface WatchOptions {
  /** The read for a given index (0: a plain read, answered at once). */
  request: (index: number) => ConsulRequest;
  /** Called when X-Consul-Index moved (first read and resets included); awaited, one call at a time. */
  onRead: (entries: KvEntry[]) => Promise<void> | void;
  onConnection?: (connected: boolean) => void;
  signal: AbortSignal;
}

// Retrying cannot help these: the value, the arguments or the config must change first.
const PERMANENT = new Set(["value_too_large", "invalid_argument", "invalid_config", "conflict"]);

/** Send `request` and parse its reply, retrying transient failures and ACL denials a bounded number of times. */
export const exchange = <T>(client: ConsulClient, request: ConsulRequest, parse: (reply: ConsulReply, what: string) => T): Promise<T> =>
  withRetry(async () => parse(await client.send(request, client.signal), request.what), {
    ...client.tuning.backoff,
    attempts: client.tuning.attempts,
    signal: client.signal,
    isPermanent: (error) => PERMANENT.has(reasonOf(error)),
    onRetry: (error, attempt, delayMs) =>
      client.logger.warn("consul_retry", {
        path: request.what,
        method: request.method,
        attempt,
        retry_in_ms: delayMs,
        reason: reasonOf(error),
        error,
      }),
  });

const pause = async (ms: number, signal: AbortSignal): Promise<void> => {
  if (ms > 0) await sleep(ms, undefined, { signal }).catch(() => undefined);
};

/**
 * Follow a key or prefix with blocking queries until `signal` aborts. A reply whose index did
 * not move (the wait ran out) calls nothing; store errors are logged and retried forever with
 * jittered backoff; successive queries are at least `minIntervalMs` apart.
 */
export const watchKv = async (client: ConsulClient, options: WatchOptions): Promise<void> => {
  const { tuning, logger } = client;
  const { signal } = options;
  let index = 0;
  let failures = 0;
  let lastStart = -Infinity;
  let connected: boolean | undefined;
  const setConnected = (now: boolean) => {
    if (now !== connected) options.onConnection?.((connected = now));
  };
  while (!signal.aborted) {
    await pause(lastStart + tuning.minIntervalMs - Date.now(), signal);
    if (signal.aborted) break;
    lastStart = Date.now();
    const request = options.request(index);
    let read: KvRead;
    try {
      read = parseKvRead(await client.send(request, signal), request.what);
    } catch (error) {
      if (signal.aborted) break;
      setConnected(false);
      const delayMs = backoffDelay(failures++, tuning.backoff);
      logger.warn("consul_watch_failed", { path: request.what, reason: reasonOf(error), error, retry_in_ms: delayMs });
      await pause(delayMs, signal);
      continue;
    }
    failures = 0;
    setConnected(true);
    if (read.index < index) logger.warn("consul_index_reset", { path: request.what, from: index, to: read.index });
    if (read.index !== index || index === 0) await options.onRead(read.entries);
    index = nextIndex(index, read.index);
  }
};
