import type * as NodeHttp from "node:http";
import type * as NodeHttps from "node:https";
import type { ConsulSend } from "./consul-client.ts";
import { consulAgentOptions, timeoutError, transportError } from "./consul-kv.ts";
import type { StoreConfig } from "./types.ts";

/** The modules an adapter hands in: this file opens no socket and reads no file by itself. */
export interface ConsulIo {
  http: typeof NodeHttp;
  https: typeof NodeHttps;
  readFile: (path: string) => Buffer;
}

/**
 * One HTTP exchange per request over a keep-alive agent (TLS files when https), shared by the
 * agent's feed and the coordinator's store; `destroy` closes the agent's sockets.
 */
export const consulTransport = (config: StoreConfig, io: ConsulIo): { send: ConsulSend; destroy: () => void } => {
  const tls = config.servers[0]?.startsWith("https:") ?? false;
  const agent = tls ? new io.https.Agent(consulAgentOptions(config.tls, io.readFile)) : new io.http.Agent({ keepAlive: true });
  const send: ConsulSend = (request, signal) =>
    new Promise((resolve, reject) => {
      const call = (request.url.startsWith("https:") ? io.https.request : io.http.request) as typeof NodeHttp.request;
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
  return { send, destroy: () => agent.destroy() };
};
