import { credsAuthenticator } from "@nats-io/transport-node";
import { readPrivateFile } from "./files.ts";
import type { NodeConnectionOptions } from "@nats-io/transport-node";
import type { StoreConfig } from "./types.ts";

/**
 * Connection options for nats.js. Agents reconnect forever (the default gives up after
 * ~20 s); the CLI fails fast and lets its own retry loop decide. Replies go to `inboxPrefix` when set
 * (agents: their own, so node credentials can allow exactly their replies).
 */
export const natsConnectOptions = (config: StoreConfig, role: { name: string; forever: boolean }): NodeConnectionOptions => ({
  servers: config.servers,
  name: role.name,
  timeout: config.timeoutMs,
  maxReconnectAttempts: role.forever ? -1 : 3,
  reconnectTimeWait: 1_000,
  reconnectJitter: 1_000,
  waitOnFirstConnect: role.forever,
  pingInterval: 10_000,
  ...(config.inboxPrefix !== undefined && { inboxPrefix: config.inboxPrefix }),
  ...(config.user !== undefined && { user: config.user, pass: config.pass ?? "" }),
  ...(config.token !== undefined && { token: config.token }),
  ...(config.credsFile !== undefined && {
    authenticator: credsAuthenticator(new TextEncoder().encode(readPrivateFile(config.credsFile, "NATS credentials file"))),
  }),
  ...(config.tls && {
    tls: {
      ...(config.tls.ca && { caFile: config.tls.ca }),
      ...(config.tls.cert && { certFile: config.tls.cert }),
      ...(config.tls.key && { keyFile: checkedPrivate(config.tls.key, "TLS key") }),
    },
  }),
});

/** A private file nats.js reads itself (TLS key): checked like a key file first, then named by path. */
const checkedPrivate = (path: string, what: string): string => {
  readPrivateFile(path, what);
  return path;
};
