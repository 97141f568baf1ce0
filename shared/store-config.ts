import type { StoreConfig } from "./types.ts";

export const STORE_DEFAULTS = {
  planBucket: "fleetplan-plans",
  statusBucket: "fleetplan-status",
  replicas: 1,
  timeoutMs: 5_000,
  notifyPrefix: "fleetplan.notify",
} as const;

/** Consul KV prefixes (docs/protocol.md): plans under `fleetplan/plans/<host>`, status under `fleetplan/status/<host>`. */
export const CONSUL_PREFIX = { plans: "fleetplan/plans/", status: "fleetplan/status/", logs: "fleetplan/logs/" } as const;

/** Read + compare-and-set rounds of one envelope put before it gives up as `conflict`. */
export const PUT_CAS_ROUNDS = 8;

/** A store selection as given: the URL plus any of StoreConfig's optional settings. */
export type StoreInput = Partial<Omit<StoreConfig, "kind" | "servers">> & { url?: string };

const NATS_SCHEMES = new Set(["nats:", "tls:", "ws:", "wss:"]);
const CONSUL_SCHEMES: Record<string, string> = { "consul:": "http:", "consul+http:": "http:", "consul+https:": "https:" };
const BUCKET = /^[A-Za-z0-9_-]{1,64}$/;
const SUBJECT_PREFIX = /^[A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_-]{1,64}){0,7}$/;

/**
 * Normalise a store selection; every problem is appended to `problems` (naming the option
 * and the bad value) so callers can report them all at once. Credentials in URLs are
 * moved to their fields so the URL itself can be logged.
 */
export const normalizeStoreConfig = (input: StoreInput, problems: string[], env: NodeJS.ProcessEnv = process.env): StoreConfig => {
  const raw = input.url ?? "nats://127.0.0.1:4222";
  const servers: string[] = [];
  let kind: StoreConfig["kind"] = "nats";
  let user = input.user;
  let pass = input.pass;
  for (const part of raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(part);
    } catch {
      problems.push(`store: ${JSON.stringify(part)} is not a URL (expected nats://host:port or consul://host:port)`);
      continue;
    }
    if (url.username) {
      user ??= decodeURIComponent(url.username);
      pass ??= decodeURIComponent(url.password);
      url.username = "";
      url.password = "";
    }
    if (NATS_SCHEMES.has(url.protocol)) servers.push(url.toString().replace(/\/$/, ""));
    else if (url.protocol in CONSUL_SCHEMES) {
      kind = "consul";
      servers.push(`${CONSUL_SCHEMES[url.protocol]}//${url.host}`);
    } else problems.push(`store: unsupported scheme ${JSON.stringify(url.protocol)} (use nats://, tls:// or consul://)`);
  }
  if (kind === "consul" && servers.length !== 1) problems.push("store: give exactly one consul:// address");
  if (servers.length === 0 && problems.length === 0) problems.push("store: no server URL given");
  const planBucket = input.planBucket ?? STORE_DEFAULTS.planBucket;
  const statusBucket = input.statusBucket ?? STORE_DEFAULTS.statusBucket;
  for (const [name, value] of [
    ["plan bucket", planBucket],
    ["status bucket", statusBucket],
  ]) {
    if (!BUCKET.test(value!)) problems.push(`${name}: ${JSON.stringify(value)} must be 1-64 of A-Z a-z 0-9 _ -`);
  }
  const replicas = input.replicas ?? STORE_DEFAULTS.replicas;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) problems.push(`store replicas: ${replicas} must be 1-5`);
  const timeoutMs = input.timeoutMs ?? STORE_DEFAULTS.timeoutMs;
  if (!(timeoutMs > 0)) problems.push(`store timeout: ${timeoutMs} must be positive`);
  const notifyPrefix = input.notifyPrefix ?? STORE_DEFAULTS.notifyPrefix;
  if (!SUBJECT_PREFIX.test(notifyPrefix))
    problems.push(`notify prefix: ${JSON.stringify(notifyPrefix)} must be dot-separated tokens of A-Z a-z 0-9 _ - (no wildcards)`);
  if (input.inboxPrefix !== undefined && !SUBJECT_PREFIX.test(input.inboxPrefix.replaceAll("~", "_"))) {
    problems.push(`inbox prefix: ${JSON.stringify(input.inboxPrefix)} must be dot-separated tokens of A-Z a-z 0-9 _ - ~ (no wildcards)`);
  }
  const token = input.token ?? (kind === "consul" ? env.CONSUL_HTTP_TOKEN : env.NATS_TOKEN) ?? undefined;
  return {
    kind,
    servers,
    planBucket,
    statusBucket,
    replicas,
    timeoutMs,
    notifyPrefix,
    ...(input.inboxPrefix !== undefined && { inboxPrefix: input.inboxPrefix }),
    ...(user !== undefined && { user }),
    ...(pass !== undefined && { pass }),
    ...(token !== undefined && token !== "" && { token }),
    ...(input.credsFile !== undefined && { credsFile: input.credsFile }),
    ...(input.tls !== undefined && { tls: input.tls }),
    ...(input.datacenter !== undefined && { datacenter: input.datacenter }),
  };
};

/** The store as it may be logged or shown in a metric label: no credentials. */
export const describeStore = (store: StoreConfig): string => `${store.kind}:${store.servers.join(",")}`;
