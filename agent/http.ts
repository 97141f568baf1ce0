import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Registry } from "prom-client";
import type { Logger } from "../shared/log.ts";
import { backoffDelay } from "../shared/retry.ts";

export interface MetricsServer {
  /** Where metrics are (or will be, while the port is taken) served. */
  url: string;
  close(): Promise<void>;
}

// Scrapers are few: a handful of connections at once, each idle briefly. Beyond this the
// endpoint refuses connections instead of spending the descriptors plans need.
const MAX_CONNECTIONS = 32;
const IDLE_MS = 10_000;

const urlOf = (host: string, port: number): string => `http://${host.includes(":") ? `[${host}]` : host}:${port}/metrics`;

const createMetricsHttp = (registry: Registry, healthy: () => { ok: boolean; detail: Record<string, unknown> }): Server => {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405).end();
    } else if (path === "/metrics") {
      registry.metrics().then(
        (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
    } else if (path === "/healthz") {
      const h = healthy();
      res.writeHead(h.ok ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify({ ok: h.ok, ...h.detail }));
    } else {
      res.writeHead(404).end();
    }
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.keepAliveTimeout = IDLE_MS;
  server.headersTimeout = IDLE_MS;
  server.requestTimeout = IDLE_MS;
  server.timeout = IDLE_MS;
  return server;
};

const listenOnce = (server: Server, listen: { host: string; port: number }): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen(listen.port, listen.host, () => {
      server.off("error", onError);
      resolve();
    });
  });

/**
 * Serve /metrics and /healthz; `healthy()` decides the health answer. The agent's job is to run
 * plans: a port another process holds (or any bind failure) is logged and retried with backoff
 * in the background, never a reason not to start.
 */
export const serveMetrics = async (
  listen: { host: string; port: number },
  registry: Registry,
  healthy: () => { ok: boolean; detail: Record<string, unknown> },
  log: Logger,
): Promise<MetricsServer> => {
  const server = createMetricsHttp(registry, healthy);
  const closed = new AbortController();
  let url = urlOf(listen.host, listen.port);
  const bound = (): void => {
    const { address, port } = server.address() as AddressInfo;
    url = urlOf(address, port);
  };
  try {
    await listenOnce(server, listen);
    bound();
  } catch (first) {
    void (async () => {
      let error = first as Error;
      for (let attempt = 0; !closed.signal.aborted; attempt++) {
        const delay = backoffDelay(attempt, { initialMs: 1_000, maxMs: 60_000 });
        log.error("metrics_bind_failed", { listen: `${listen.host}:${listen.port}`, error: error.message, retry_ms: delay });
        await sleep(delay, undefined, { signal: closed.signal }).catch(() => {});
        if (closed.signal.aborted) return;
        try {
          await listenOnce(server, listen);
          bound();
          log.info("metrics_listening", { url });
          return;
        } catch (next) {
          error = next as Error;
        }
      }
    })();
  }
  return {
    get url() {
      return url;
    },
    close: () =>
      new Promise((resolve) => {
        closed.abort();
        server.closeAllConnections();
        if (!server.listening) return resolve();
        server.close(() => resolve());
      }),
  };
};
