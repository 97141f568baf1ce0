import type * as NodeHttp from "node:http";
import type * as NodeHttps from "node:https";
import type { ConsulSend } from "./consul-client.ts";
import { consulAgentOptions, timeoutError, transportError } from "./consul-kv.ts";
import { FleetplanError } from "./errors.ts";
import type { StoreConfig } from "./types.ts";

/** The modules an adapter hands in: this file opens no socket and reads no file by itself. */
export interface ConsulIo {
  http: typeof NodeHttp;
  https: typeof NodeHttps;
  readFile: (path: string) => Buffer;
  /** Reads the TLS private key, refusing one others may read (default: readFile). */
  readPrivateFile?: (path: string) => Buffer;
}

/** Cap on one reply when the caller reads whole prefixes (?recurse): the coordinator's status reads. */
export const CONSUL_MAX_REPLY_BYTES = 64 * 1024 * 1024;

/** Cap on one reply to a single-key read: the value in base64 (4/3) plus 64 KiB for the JSON around it. */
export const singleKeyReplyBytes = (maxValueBytes: number): number => Math.ceil((maxValueBytes * 4) / 3) + 64 * 1024;

const replyTooLarge = (what: string, maxReplyBytes: number): FleetplanError =>
  new FleetplanError(
    "value_too_large",
    `consul: the reply for ${what} exceeds ${maxReplyBytes} bytes and was cut off (a value over maxValueBytes, or not Consul answering)`,
  );

/**
 * One HTTP exchange per request over a keep-alive agent (TLS files when https), shared by the
 * agent's feed and the coordinator's store; `destroy` closes the agent's sockets. A reply
 * over `maxReplyBytes` is aborted as it arrives: plain-HTTP Consul must not be able to fill
 * the memory of a root agent.
 */
export const consulTransport = (
  config: StoreConfig,
  io: ConsulIo,
  maxReplyBytes = CONSUL_MAX_REPLY_BYTES,
): { send: ConsulSend; destroy: () => void } => {
  const tls = config.servers[0]?.startsWith("https:") ?? false;
  const agent = tls
    ? new io.https.Agent(consulAgentOptions(config.tls, io.readFile, io.readPrivateFile))
    : new io.http.Agent({ keepAlive: true });
  const send: ConsulSend = (request, signal) =>
    new Promise((resolve, reject) => {
      const call = (request.url.startsWith("https:") ? io.https.request : io.http.request) as typeof NodeHttp.request;
      const options = { method: request.method, headers: request.headers, agent, signal, timeout: request.timeoutMs };
      const req = call(request.url, options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size <= maxReplyBytes) return void chunks.push(chunk);
          reject(replyTooLarge(request.what, maxReplyBytes));
          req.destroy();
        });
        res.on("error", (error) => reject(transportError(error, request)));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, index: res.headers["x-consul-index"] as string | undefined, body: Buffer.concat(chunks) }),
        );
      });
      req.on("timeout", () => req.destroy(timeoutError(request)));
      req.on("error", (error) => reject(transportError(error, request)));
      req.end(request.body);
    });
  return { send, destroy: () => agent.destroy() };
};
