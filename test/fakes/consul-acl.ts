// Consul's KV ACL rules as documented (developer.hashicorp.com/consul/docs/security/acl/acl-rules,
// "Key/value rules"), for the fake: `key "K"` matches K exactly, `key_prefix "P"` every key under P;
// the most specific rule wins (the longest match, an exact `key` over a `key_prefix` of the same
// text); no rule means deny (default_policy = "deny"). Only the HCL shape fleetplan writes is parsed.

export type KeyPolicy = "deny" | "read" | "list" | "write";

export interface KeyRule {
  exact: boolean;
  path: string;
  policy: KeyPolicy;
}

const RULE = /\b(key|key_prefix)\s+"([^"]*)"\s*\{\s*policy\s*=\s*"(deny|read|list|write)"\s*\}/g;

/** The key rules of a policy in HCL; anything else in the text is ignored. */
export const parseKeyRules = (hcl: string): KeyRule[] =>
  [...hcl.matchAll(RULE)].map((m) => ({ exact: m[1] === "key", path: m[2]!, policy: m[3] as KeyPolicy }));

/** The policy that applies to one key: the most specific matching rule's, else deny. */
export const keyPolicy = (rules: KeyRule[], key: string): KeyPolicy => {
  const matching = rules.filter((r) => (r.exact ? key === r.path : key.startsWith(r.path)));
  const best = matching.sort((a, b) => b.path.length - a.path.length || Number(b.exact) - Number(a.exact))[0];
  return best?.policy ?? "deny";
};

/** May this token read the key (`read`, `list` and `write` all include reading)? */
export const mayRead = (rules: KeyRule[], key: string): boolean => keyPolicy(rules, key) !== "deny";

/** May it write the key? */
export const mayWrite = (rules: KeyRule[], key: string): boolean => keyPolicy(rules, key) === "write";

/** A recursive delete needs write on the prefix and no rule under it that grants less (Consul's KeyWritePrefix). */
export const mayWritePrefix = (rules: KeyRule[], prefix: string): boolean =>
  mayWrite(rules, prefix) && rules.every((r) => !r.path.startsWith(prefix) || r.policy === "write");
