import { CONSUL_PREFIX } from "../../shared/store-config.ts";

// Consul ACL policies (HCL) with the same least privilege as the NATS credentials: a node reads
// its own plan key and writes its own status key; the coordinator owns everything under fleetplan/.

/** One node's policy: exact keys (`key`, not `key_prefix`), so `web-1` does not cover `web-10`. */
export const hostConsulPolicy = (host: string): string =>
  [
    `# fleetplan agent on ${host}: read its own plan, write its own status; nothing else.`,
    `key "${CONSUL_PREFIX.plans}${host}" {`,
    `  policy = "read"`,
    `}`,
    `key "${CONSUL_PREFIX.status}${host}" {`,
    `  policy = "write"`,
    `}`,
    "",
  ].join("\n");

/** The coordinator's policy: puts every plan, reads every status. */
export const coordinatorConsulPolicy = (): string =>
  [
    "# fleetplan coordinator: every plan and status key.",
    `key_prefix "fleetplan/" {`,
    `  policy = "write"`,
    `}`,
    "",
  ].join("\n");
