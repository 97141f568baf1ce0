import type { StoreConfig } from "./types.ts";

// Where trust documents and freshness records live beside the plans. NATS: keys of the plan bucket
// whose names start with `_` (so its notices and direct gets need no new bucket or stream);
// Consul: their own prefixes under fleetplan/. Only the coordinator's credentials may write them.

/** NATS key of trust document `version` (readable by every host). */
export const trustKey = (version: number): string => `_trust.${version}`;

/** NATS key of `host`'s freshness record (readable by that host only). */
export const freshKey = (host: string): string => `_fresh.${host}`;

/** Every version's key, for a permission or a notice subscription. */
export const TRUST_KEYS = "_trust.*";

/** Consul prefix of the trust documents, for the agents' read-only ACL. */
export const CONSUL_TRUST_PREFIX = "fleetplan/trust/";
/** Consul key of trust version `version`. */
export const consulTrustKey = (version: number): string => `${CONSUL_TRUST_PREFIX}${version}`;
/** Consul key of `host`'s freshness record (readable by that host only). */
export const consulFreshKey = (host: string): string => `fleetplan/fresh/${host}`;

/** The store key of a side record for the configured store kind. */
export const sideKey = (config: Pick<StoreConfig, "kind">, side: SideKey): string =>
  side.kind === "trust"
    ? (config.kind === "consul" ? consulTrustKey : trustKey)(side.version)
    : (config.kind === "consul" ? consulFreshKey : freshKey)(side.host);

/** A record beside the plans: a trust document by version, or a host's freshness record. */
export type SideKey = { kind: "trust"; version: number } | { kind: "fresh"; host: string };

/** Host names that would collide with these NATS keys: refused by the inventory. */
export const isReservedHost = (host: string): boolean => host.startsWith("_trust.") || host.startsWith("_fresh.");
