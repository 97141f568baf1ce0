import { CONSUL_ENROLL_PREFIX } from "../../shared/enrollment.ts";
import { CONSUL_PREFIX } from "../../shared/store-config.ts";
import { CONSUL_TRUST_PREFIX, consulFreshKey } from "../../shared/trust-layout.ts";

// Consul ACL policies (HCL) with the same least privilege as the NATS credentials: a node reads
// its own plan key and writes its own status key; the coordinator owns everything under fleetplan/.

/** One node's policy: exact keys (`key`, not `key_prefix`), so `web-1` does not cover `web-10`. */
export const hostConsulPolicy = (host: string): string =>
  [
    `# fleetplan agent on ${host}: read its own plan, write its own status and output; nothing else.`,
    `key "${CONSUL_PREFIX.plans}${host}" {`,
    `  policy = "read"`,
    `}`,
    `key "${CONSUL_PREFIX.status}${host}" {`,
    `  policy = "write"`,
    `}`,
    `key_prefix "${CONSUL_TRUST_PREFIX}" {`,
    `  policy = "read"`,
    `}`,
    `key "${consulFreshKey(host)}" {`,
    `  policy = "read"`,
    `}`,
    `key "${CONSUL_PREFIX.logs}${host}" {`,
    `  policy = "write"`,
    `}`,
    "",
  ].join("\n");

/**
 * The shared bootstrap token of not-yet-enrolled nodes: announcements under fleetplan/enroll/ only.
 * Consul has no write-only KV policy, so it can also read others' announcements (public keys and facts, no secrets).
 */
export const bootstrapConsulPolicy = (): string =>
  [
    "# fleetplan bootstrap (enrollment): write announcements; no plan or status key.",
    `key_prefix "${CONSUL_ENROLL_PREFIX}" {`,
    `  policy = "write"`,
    `}`,
    "",
  ].join("\n");

/** The coordinator's policy: puts every plan, reads every status. */
export const coordinatorConsulPolicy = (): string =>
  ["# fleetplan coordinator: every plan and status key.", `key_prefix "fleetplan/" {`, `  policy = "write"`, `}`, ""].join("\n");
