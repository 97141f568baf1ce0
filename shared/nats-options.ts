import { readFileSync } from "node:fs";
import { credsAuthenticator } from "@nats-io/transport-node";
import type { NodeConnectionOptions } from "@nats-io/transport-node";
import type { StoreConfig } from "./types.ts";

/** KV bucket settings both sides create with, so create-or-open never conflicts. */
export const bucketOptions = (config: StoreConfig, history: number) => ({ history, replicas: config.replicas, timeout: config.timeoutMs });

/**
 * Connection options for nats.js. Agents reconnect forever (the default gives up after
 * ~20 s); the CLI fails fast and lets its own retry loop decide.
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
  ...(config.user !== undefined && { user: config.user, pass: config.pass ?? "" }),
  ...(config.token !== undefined && { token: config.token }),
  ...(config.credsFile !== undefined && { authenticator: credsAuthenticator(readFileSync(config.credsFile)) }),
  ...(config.tls && {
    tls: {
      ...(config.tls.ca && { caFile: config.tls.ca }),
      ...(config.tls.cert && { certFile: config.tls.cert }),
      ...(config.tls.key && { keyFile: config.tls.key }),
    },
  }),
});

/**
 * Create-or-open a KV bucket. Creating fails when the bucket exists with other settings (e.g.
 * more replicas, set by an operator): then open it, and prove it exists, since open alone never
 * fails (DEPENDENCIES.md) and would hide a create that failed for another reason.
 */
export const createOrOpen = async <T extends { status(): Promise<unknown> }>(create: () => Promise<T>, open: () => Promise<T>): Promise<T> => {
  try {
    return await create();
  } catch (error) {
    const bucket = await open();
    await bucket.status().catch(() => {
      throw error;
    });
    return bucket;
  }
};
