// Consul KV over HTTP without the I/O: request building, reply parsing and the blocking-query
// index rules (developer.hashicorp.com/consul/api-docs/kv and .../features/blocking). The agent
// and the coordinator each own the few lines that put a request on the wire.

import { FleetplanError } from "./errors.ts";
import type { StoreConfig, TlsOptions } from "./types.ts";

export const CONSUL_DEFAULTS = {
  /** Consul's default `limits.kv_max_value_size` (512 KiB). */
  maxValueBytes: 524_288,
  /** Blocking wait asked of the server; Consul caps it at 10 minutes and adds up to wait/16. */
  waitMs: 300_000,
  /** Floor between two blocking queries, so a churning index cannot spin the loop. */
  minIntervalMs: 50,
  /** Tries for one write or read before its error is reported (blocking watches never give up). */
  attempts: 4,
  backoff: { initialMs: 250, maxMs: 30_000 },
} as const;

/** Knobs for one Consul client; every one has a default in CONSUL_DEFAULTS. */
export interface ConsulTuning {
  maxValueBytes?: number;
  waitMs?: number;
  minIntervalMs?: number;
  attempts?: number;
  backoff?: { initialMs?: number; maxMs?: number; random?: () => number };
}

export interface ResolvedTuning {
  maxValueBytes: number;
  waitMs: number;
  minIntervalMs: number;
  attempts: number;
  backoff: { initialMs: number; maxMs: number; random?: () => number };
}

/** One HTTP request, ready for node:http(s). */
export interface ConsulRequest {
  method: "GET" | "PUT" | "DELETE";
  url: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  /** Idle timeout: the store timeout, or for a blocking GET the wait, Consul's jitter and the store timeout. */
  timeoutMs: number;
  /** What the request is about, for errors and logs (never a value). */
  what: string;
}

/** What came back: status, the raw X-Consul-Index header and the body. */
export interface ConsulReply {
  status: number;
  index: string | undefined;
  body: Uint8Array;
}

export interface KvEntry {
  key: string;
  value: Uint8Array;
  modifyIndex: number;
  createIndex: number;
  flags: number;
  lockIndex: number;
}

export interface KvRead {
  /** X-Consul-Index (0 when missing or not a number). */
  index: number;
  /** Empty when the key or prefix does not exist (HTTP 404). */
  entries: KvEntry[];
}

const WAIT_CAP_MS = 600_000;

/** Fill defaults and check each knob, naming the option and the bad value. */
export const resolveTuning = (tuning: ConsulTuning = {}): ResolvedTuning => {
  const given = Object.fromEntries(Object.entries(tuning).filter(([, v]) => v !== undefined)) as ConsulTuning;
  const t = { ...CONSUL_DEFAULTS, ...given, backoff: { ...CONSUL_DEFAULTS.backoff, ...given.backoff } };
  const bad = (name: string, value: number, rule: string) =>
    new FleetplanError("invalid_config", `consul ${name}: ${value} must be ${rule}`);
  if (!(t.maxValueBytes > 0)) throw bad("maxValueBytes", t.maxValueBytes, "positive");
  if (!(t.waitMs >= 1_000 && t.waitMs <= WAIT_CAP_MS)) throw bad("waitMs", t.waitMs, "1000-600000 (Consul's cap)");
  if (!(t.minIntervalMs >= 0)) throw bad("minIntervalMs", t.minIntervalMs, "0 or more");
  if (!(Number.isInteger(t.attempts) && t.attempts >= 1)) throw bad("attempts", t.attempts, "an integer of 1 or more");
  if (!(t.backoff.initialMs > 0 && t.backoff.maxMs >= t.backoff.initialMs)) {
    throw bad("backoff.initialMs", t.backoff.initialMs, "positive and at most backoff.maxMs");
  }
  return t;
};

/** node:https agent options for the store: TLS files are read through `read`, naming a file that fails. */
export const consulAgentOptions = (tls: TlsOptions | undefined, read: (path: string) => Buffer, readKey = read) => {
  const load = (what: string, path: string | undefined) => {
    if (path === undefined) return {};
    try {
      return { [what]: (what === "key" ? readKey : read)(path) };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new FleetplanError("invalid_config", `consul tls ${what}: cannot read ${path}: ${code}`);
    }
  };
  return { keepAlive: true, ...load("ca", tls?.ca), ...load("cert", tls?.cert), ...load("key", tls?.key) };
};

const kvUrl = (config: StoreConfig, key: string, params: Record<string, string | undefined>): string => {
  const url = new URL(`/v1/kv/${key.split("/").map(encodeURIComponent).join("/")}`, config.servers[0]);
  if (config.datacenter) url.searchParams.set("dc", config.datacenter);
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value);
  return url.toString();
};

const headers = (config: StoreConfig, extra: Record<string, string>): Record<string, string> =>
  config.token ? { ...extra, "X-Consul-Token": config.token } : extra;

/** Idle timeout of a blocking GET: the wait, the server's jitter (wait/16) and one store timeout. */
export const blockingTimeoutMs = (waitMs: number, timeoutMs: number): number => waitMs + Math.ceil(waitMs / 16) + timeoutMs;

/** GET a key, or a prefix with `recurse`; with `index` > 0 the server holds it up to `waitMs` for a change. */
export const kvGetRequest = (
  config: StoreConfig,
  key: string,
  opts: { recurse?: boolean; index?: number; waitMs?: number; consistent?: boolean } = {},
): ConsulRequest => {
  const blocking = (opts.index ?? 0) > 0;
  const waitMs = opts.waitMs ?? CONSUL_DEFAULTS.waitMs;
  return {
    method: "GET",
    url: kvUrl(config, key, {
      recurse: opts.recurse ? "true" : undefined,
      consistent: opts.consistent ? "true" : undefined,
      index: blocking ? String(opts.index) : undefined,
      wait: blocking ? `${waitMs}ms` : undefined,
    }),
    headers: headers(config, { Accept: "application/json" }),
    timeoutMs: blocking ? blockingTimeoutMs(waitMs, config.timeoutMs) : config.timeoutMs,
    what: key,
  };
};

/** Refuse a value over Consul's limit before it is sent: the server would only answer 413. */
export const checkValueSize = (what: string, size: number, maxValueBytes: number): void => {
  if (size <= maxValueBytes) return;
  throw new FleetplanError(
    "value_too_large",
    `consul: ${what} is ${size} bytes, Consul's KV value limit is ${maxValueBytes} bytes ` +
      "(raise limits.kv_max_value_size on every Consul server and maxValueBytes to match, or shrink the plan)",
  );
};

/** PUT raw bytes as the value of `key` (Consul stores them as given; reads return them base64). */
/** `cas`: apply only if the key's ModifyIndex is this (0: only if the key does not exist). */
export const kvPutRequest = (
  config: StoreConfig,
  key: string,
  value: Uint8Array,
  what: string,
  maxValueBytes: number,
  cas?: number,
): ConsulRequest => {
  checkValueSize(what, value.byteLength, maxValueBytes);
  return {
    method: "PUT",
    url: kvUrl(config, key, { cas: cas?.toString() }),
    headers: headers(config, { "Content-Type": "application/octet-stream" }),
    body: value,
    timeoutMs: config.timeoutMs,
    what: key,
  };
};

// Server text is echoed short and printable only: enough to diagnose, never a whole body.
const excerpt = (body: Uint8Array): string =>
  Buffer.from(body.subarray(0, 200))
    .toString("utf8")
    .replace(/[^\x20-\x7e]+/g, " ")
    .trim();

/** The coded error for a non-success reply, or null (200, and 404 on a read). */
export const replyError = (reply: ConsulReply, what: string, read: boolean): FleetplanError | null => {
  const { status } = reply;
  if (status === 200 || (read && status === 404)) return null;
  if (status === 403) return new FleetplanError("store_rejected", "consul: permission denied (check the ACL token)");
  if (status === 413)
    return new FleetplanError("value_too_large", `consul: ${what} refused as too large (HTTP 413: ${excerpt(reply.body)})`);
  const reason = status === 429 || status >= 500 ? "store_unavailable" : "store_rejected";
  return new FleetplanError(reason, `consul: ${what} failed with HTTP ${status}: ${excerpt(reply.body)}`);
};

/** X-Consul-Index as a number; 0 when missing or malformed (nextIndex then never blocks on it). */
export const parseIndex = (header: string | undefined): number => {
  const n = Number(header);
  return header !== undefined && Number.isSafeInteger(n) && n > 0 ? n : 0;
};

const malformed = (what: string, detail: string) =>
  new FleetplanError("store_unavailable", `consul: unreadable KV reply for ${what}: ${detail}`);

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const uint = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

const parseEntry = (raw: unknown, what: string): KvEntry => {
  const e = raw as Record<string, unknown>;
  const value = e?.Value ?? "";
  if (typeof e?.Key !== "string" || typeof value !== "string" || !BASE64.test(value) || !uint(e.ModifyIndex) || !uint(e.CreateIndex)) {
    throw malformed(what, "an entry lacks Key, Value (base64) or its indexes");
  }
  return {
    key: e.Key,
    value: new Uint8Array(Buffer.from(value, "base64")),
    modifyIndex: e.ModifyIndex as number,
    createIndex: e.CreateIndex as number,
    flags: uint(e.Flags) ? (e.Flags as number) : 0,
    lockIndex: uint(e.LockIndex) ? (e.LockIndex as number) : 0,
  };
};

/** Parse a KV read: `[{Key, Value (base64), ModifyIndex, ...}]`, or no entries on 404. */
export const parseKvRead = (reply: ConsulReply, what: string): KvRead => {
  const error = replyError(reply, what, true);
  if (error) throw error;
  const index = parseIndex(reply.index);
  if (reply.status === 404) return { index, entries: [] };
  let list: unknown;
  try {
    list = JSON.parse(Buffer.from(reply.body).toString("utf8"));
  } catch {
    throw malformed(what, "not JSON");
  }
  if (!Array.isArray(list)) throw malformed(what, "not a JSON array");
  return { index, entries: list.map((raw) => parseEntry(raw, what)) };
};

/** Check a KV write's reply: Consul answers `true`, or `false` when it did not apply the write. */
/** Whether a write was applied: `false` only answers a `?cas=` write whose index no longer matched. */
export const parseKvCasWrite = (reply: ConsulReply, what: string): boolean => {
  const error = replyError(reply, what, false);
  if (error) throw error;
  return Buffer.from(reply.body).toString("utf8").trim() === "true";
};

export const parseKvWrite = (reply: ConsulReply, what: string): void => {
  if (!parseKvCasWrite(reply, what)) throw new FleetplanError("store_rejected", `consul: the write of ${what} was not applied`);
};

/**
 * The index for the next blocking query, per Consul's implementation notes: reset to 0 (a
 * plain read) when the index goes backwards, e.g. after a snapshot restore, and never block on
 * 0 — index 1 is always safe to wait on.
 */
export const nextIndex = (previous: number, reported: number): number => (reported < previous ? 0 : Math.max(reported, 1));

/** A transport failure as a coded error: timeouts apart, everything else means the store is unreachable. */
export const transportError = (error: unknown, request: Pick<ConsulRequest, "what" | "timeoutMs">): Error => {
  if (error instanceof FleetplanError || (error as Error)?.name === "AbortError") return error as Error;
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === "ETIMEDOUT") return timeoutError(request);
  return new FleetplanError("store_unavailable", `consul: ${request.what} failed: ${code ?? (error as Error)?.message}`, { cause: error });
};

/** The error for a request that saw no byte for its whole timeout. */
export const timeoutError = (request: Pick<ConsulRequest, "what" | "timeoutMs">): FleetplanError =>
  new FleetplanError("store_timeout", `consul: ${request.what} timed out after ${request.timeoutMs} ms`);
