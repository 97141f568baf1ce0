// A FAKE of Consul's documented KV HTTP API (/v1/kv, developer.hashicorp.com/consul/api-docs/kv
// and .../features/blocking) for tests. It is NOT Consul: Consul cannot be installed here.
// It covers GET (single key, ?recurse, blocking ?index=&wait=), PUT (raw body, 413 over the
// value limit, Create/ModifyIndex, ?cas=), DELETE, X-Consul-Index, one ACL token (403) or KV ACL
// policies per token (consul-acl.ts), and a restart that can lower every index (a snapshot
// restore). Not covered: raft and consistency modes (?stale, ?consistent are accepted and
// ignored), ACL rules other than key/key_prefix, token kinds, sessions and locks, ?cas= on DELETE, ?flags= on reads, ?keys/?separator, transactions, several
// datacenters (?dc= is accepted and ignored), real TLS, wait jitter (the fake never adds any),
// and index resets other than the simulated restart. See test/fakes/README.md.

import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach } from "node:test";
import { normalizeStoreConfig } from "../../shared/store-config.ts";
import type { StoreConfig } from "../../shared/types.ts";
import { mayRead, mayWrite, mayWritePrefix, parseKeyRules } from "./consul-acl.ts";
import type { KeyRule } from "./consul-acl.ts";

export interface FakeConsulOptions {
  /** When set, every request must carry it in X-Consul-Token, else 403. */
  token?: string;
  /** ACL token → its policy in HCL (key / key_prefix rules, default deny); a request with another token gets 403. */
  policies?: Record<string, string>;
  /** Largest value a PUT may carry, bytes (Consul's default kv_max_value_size: 512 KiB). */
  maxValueBytes?: number;
  port?: number;
  /** Raft index before the first write (default 10). */
  initialIndex?: number;
}

export interface FakeRequest {
  method: string;
  /** URL path, e.g. /v1/kv/fleetplan/plans/web1 */
  path: string;
  /** The blocking ?index= asked for, when any. */
  index?: number;
  /** Date.now() on arrival. */
  at: number;
}

export interface FakeConsul {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** Stop (dropping every connection) and listen again on the same port; `lowerIndex` renumbers all keys from 1. */
  restart(opts?: { lowerIndex?: boolean }): Promise<void>;
  requests: FakeRequest[];
}

interface Entry {
  value: Buffer;
  createIndex: number;
  modifyIndex: number;
  flags: number;
}

const WAIT_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const MAX_WAIT_MS = 600_000;

// Go duration subset Consul accepts for ?wait=; default 5 minutes, capped at 10.
const parseWait = (text: string | null): number | null => {
  if (text === null) return 300_000;
  const match = /^(\d+)(ms|s|m|h)$/.exec(text);
  return match ? Math.min(Number(match[1]) * WAIT_UNITS[match[2]!]!, MAX_WAIT_MS) : null;
};

const reply = (res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8"): void => {
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
};

// Consul's 403 for a token whose policy does not grant the access.
const denied = (res: ServerResponse, permission: string, key: string): void =>
  reply(res, 403, `Permission denied: token lacks permission '${permission}' on ${JSON.stringify(key)}`);

const readBody = async (req: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

/** Start the fake on 127.0.0.1 (a random free port unless `port` is given). */
export const startFakeConsul = async (options: FakeConsulOptions = {}): Promise<FakeConsul> => {
  const maxValueBytes = options.maxValueBytes ?? 524_288;
  const kv = new Map<string, Entry>();
  const tombstones = new Map<string, number>();
  const waiters = new Set<() => void>();
  const requests: FakeRequest[] = [];
  let raftIndex = options.initialIndex ?? 10;
  let server: Server | undefined;
  let port = options.port ?? 0;

  const wake = () => {
    for (const check of [...waiters]) check();
  };
  const select = (key: string, recurse: boolean): [string, Entry][] =>
    recurse ? [...kv].filter(([k]) => k.startsWith(key)).sort(([a], [b]) => (a < b ? -1 : 1)) : kv.has(key) ? [[key, kv.get(key)!]] : [];
  // As Consul: a key answers its ModifyIndex, a prefix the highest ModifyIndex under it
  // (deletions included), and anything missing the KV table's index, never 0.
  const indexOf = (key: string, recurse: boolean): number => {
    const deleted = recurse ? [...tombstones].filter(([k]) => k.startsWith(key)).map(([, i]) => i) : [];
    const found = Math.max(0, ...select(key, recurse).map(([, e]) => e.modifyIndex), ...deleted);
    return found > 0 ? found : Math.max(raftIndex, 1);
  };

  // Hold a blocking query until its index passes `min`, the wait runs out, or the client leaves.
  const block = (ready: () => boolean, ms: number, res: ServerResponse) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      const check = () => ready() && done();
      const timer = setTimeout(done, ms);
      waiters.add(check);
      res.on("close", done);
      // As Consul: an index already passed when the query arrives answers at once, not at the next write.
      check();
    });

  const handleGet = async (res: ServerResponse, key: string, params: URLSearchParams, rules: KeyRule[] | null) => {
    const recurse = params.has("recurse");
    // Consul refuses a single key the token cannot read, and leaves such keys out of a listing.
    if (rules && !recurse && !mayRead(rules, key)) return denied(res, "key:read", key);
    const min = Number(params.get("index") ?? 0);
    const waitMs = parseWait(params.get("wait"));
    if (waitMs === null) return reply(res, 400, "Invalid wait time");
    if (min > 0) await block(() => indexOf(key, recurse) > min || !server?.listening, waitMs, res);
    if (res.destroyed) return;
    const entries = select(key, recurse).filter(([k]) => rules === null || mayRead(rules, k));
    res.setHeader("X-Consul-Index", String(indexOf(key, recurse)));
    if (entries.length === 0) return reply(res, 404, "");
    const body = entries.map(([k, e]) => ({
      Key: k,
      Value: e.value.length ? e.value.toString("base64") : null,
      CreateIndex: e.createIndex,
      ModifyIndex: e.modifyIndex,
      LockIndex: 0,
      Flags: e.flags,
    }));
    reply(res, 200, JSON.stringify(body), "application/json");
  };

  const handlePut = async (req: IncomingMessage, res: ServerResponse, key: string, params: URLSearchParams) => {
    const body = await readBody(req);
    if (key === "") return reply(res, 400, "Missing key name");
    if (body.length > maxValueBytes) {
      return reply(res, 413, `Request body(${body.length} bytes) too large, max size: ${maxValueBytes} bytes. See kv_max_value_size.`);
    }
    // ?cas=N: applied only if the key's ModifyIndex is N, or if it does not exist for N = 0.
    const cas = params.get("cas");
    if (cas !== null && Number(cas) !== (kv.get(key)?.modifyIndex ?? 0)) return reply(res, 200, "false", "application/json");
    raftIndex += 1;
    const createIndex = kv.get(key)?.createIndex ?? raftIndex;
    kv.set(key, { value: body, createIndex, modifyIndex: raftIndex, flags: Number(params.get("flags") ?? 0) });
    wake();
    reply(res, 200, "true", "application/json");
  };

  const handleDelete = (res: ServerResponse, key: string, params: URLSearchParams) => {
    raftIndex += 1;
    for (const [k] of select(key, params.has("recurse"))) {
      kv.delete(k);
      tombstones.set(k, raftIndex);
    }
    wake();
    reply(res, 200, "true", "application/json");
  };

  const aclRules = new Map(Object.entries(options.policies ?? {}).map(([token, hcl]) => [token, parseKeyRules(hcl)]));

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://fake");
    const index = url.searchParams.get("index");
    requests.push({ method: req.method ?? "", path: url.pathname, ...(index !== null && { index: Number(index) }), at: Date.now() });
    if (!url.pathname.startsWith("/v1/kv/")) return reply(res, 404, "404 page not found");
    if (options.token !== undefined && req.headers["x-consul-token"] !== options.token) return reply(res, 403, "Permission denied");
    const key = decodeURIComponent(url.pathname.slice("/v1/kv/".length));
    const token = req.headers["x-consul-token"] ?? url.searchParams.get("token") ?? "";
    const rules = options.policies ? aclRules.get(String(token)) : null;
    if (rules === undefined) return reply(res, 403, "ACL not found");
    if (rules && req.method === "PUT" && !mayWrite(rules, key)) return denied(res, "key:write", key);
    if (rules && req.method === "DELETE" && !(url.searchParams.has("recurse") ? mayWritePrefix(rules, key) : mayWrite(rules, key))) {
      return denied(res, "key:write", key);
    }
    if (req.method === "GET") return handleGet(res, key, url.searchParams, rules);
    if (req.method === "PUT") return handlePut(req, res, key, url.searchParams);
    if (req.method === "DELETE") return handleDelete(res, key, url.searchParams);
    reply(res, 405, "method not allowed");
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        port = (server!.address() as AddressInfo).port;
        resolve();
      });
    });

  const stop = async () => {
    const closing = server;
    if (!closing?.listening) return;
    await new Promise<void>((resolve) => {
      closing.close(() => resolve());
      closing.closeAllConnections();
      wake();
    });
  };

  // A snapshot restore: the same data under indexes counted again from 1.
  const lowerIndexes = () => {
    const ordered = [...kv.values()].sort((a, b) => a.modifyIndex - b.modifyIndex);
    for (const [i, entry] of ordered.entries()) Object.assign(entry, { createIndex: i + 1, modifyIndex: i + 1 });
    tombstones.clear();
    raftIndex = Math.max(ordered.length, 1);
  };

  await listen();
  return {
    url: `http://127.0.0.1:${port}`,
    get port() {
      return port;
    },
    requests,
    stop,
    restart: async (opts = {}) => {
      await stop();
      if (opts.lowerIndex) lowerIndexes();
      await listen();
    },
  };
};

/** PUT `body` at `key` over a fresh connection (a pooled one may be a socket the last restart cut); resolves to the status. */
export const putKey = (url: string, key: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<number> =>
  new Promise((resolve, reject) => {
    const req = request(`${url}/v1/kv/${key}`, { method: "PUT", agent: false, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
  });

/** The store config a fleetplan client uses to reach `fake` (consul://, 2 s request timeout). */
export const storeConfigFor = (fake: FakeConsul, token?: string): StoreConfig => {
  const problems: string[] = [];
  const store = normalizeStoreConfig({ url: `consul://127.0.0.1:${fake.port}`, timeoutMs: 2_000, ...(token && { token }) }, problems, {});
  if (problems.length > 0) throw new Error(problems.join("; "));
  return store;
};

/** For a test file: fakes started and clients deferred here are closed after each test, even a failed one. */
export const consulTestScope = () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return {
    start: async (opts: FakeConsulOptions = {}): Promise<FakeConsul> => {
      const fake = await startFakeConsul(opts);
      cleanups.push(() => fake.stop());
      return fake;
    },
    defer: <T extends { close(): Promise<void> }>(client: T): T => {
      cleanups.push(() => client.close());
      return client;
    },
  };
};
