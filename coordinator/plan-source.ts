import { existsSync, readdirSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { compareHosts, jsonErrorAt } from "../shared/cli.ts";
import { FleetplanError } from "../shared/errors.ts";
import { readFileChecked } from "../shared/files.ts";
import { normalizePlan, planBytes, planFromScript, planProblems } from "../shared/plan.ts";
import type { Plan } from "../shared/types.ts";
import { DEFAULT_LIMITS } from "../shared/wire.ts";

/** A validated plan, normalised; each host gets it salted (plan-salt.ts). */
export interface LoadedPlan {
  source: string;
  plan: Plan;
}

/** What a plan file is, by its extension (any case): anything else is refused, never run as a script. */
const planKind = (path: string): "json" | "script" => {
  const ext = extname(path).toLowerCase();
  if (ext === ".json") return "json";
  if (ext === ".sh") return "script";
  throw new FleetplanError("invalid_argument", `${path}: a plan file must end in .json (a plan document) or .sh (a script)`);
};

// What a private key file holds: a plan carrying one would hand the key to the target's root.
const PRIVATE_KEY_MARKERS = [
  "fleetplan-admin-ed25519-private",
  "fleetplan-node-x25519-private",
  "PRIVATE KEY-----",
  "-----BEGIN NATS USER NKEY SEED",
];

/** Refuse a plan whose text or file contents carry private key material (a mistake, or a planted link). */
const refuseKeyMaterial = (path: string, text: string, plan: Plan): void => {
  const decoded = plan.files.map((f) => Buffer.from(f.content, "base64").toString("latin1"));
  const marker = PRIVATE_KEY_MARKERS.find((m) => text.includes(m) || decoded.some((d) => d.includes(m)));
  if (marker !== undefined) {
    throw new FleetplanError(
      "invalid_argument",
      `${path}: the plan contains private key material (${JSON.stringify(marker)}); private keys never go into plans`,
    );
  }
};

/**
 * Read a `.json` plan document or a `.sh` script (a one-step plan); every problem is named.
 * Only a regular file is read (a symlink is refused: what gets signed must be what was
 * reviewed), at most the agents' plan size limit.
 */
export const loadPlanFile = (path: string): LoadedPlan => {
  const kind = planKind(path);
  const rules = { forbidden: 0, problem: "", fix: "", maxBytes: DEFAULT_LIMITS.maxPlanBytes, guarded: false };
  const text = readFileChecked(path, "plan", rules).data.toString("utf8");
  let plan: Plan;
  if (kind === "json") {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new FleetplanError("invalid_argument", `${path}: not valid JSON: ${jsonErrorAt(text, (error as Error).message)}`);
    }
    // "files" may be left out of a plan document: it is sent as [] (agents require the field).
    if (typeof value === "object" && value !== null && !Array.isArray(value) && !("files" in value)) value = { ...value, files: [] };
    const problems = planProblems(value);
    if (problems.length > 0) throw new FleetplanError("invalid_argument", `${path}: invalid plan:\n  - ${problems.join("\n  - ")}`);
    plan = normalizePlan(value as Plan);
  } else {
    plan = planFromScript(text, basename(path));
  }
  refuseKeyMaterial(path, text, plan);
  // The salt (64 hex digits and its field) adds under 100 bytes.
  const size = planBytes(plan).length + 100;
  if (size > DEFAULT_LIMITS.maxPlanBytes) {
    throw new FleetplanError(
      "too_large",
      `${path}: the plan is ${size} bytes as sent, over the agents' limit of ${DEFAULT_LIMITS.maxPlanBytes}`,
    );
  }
  return { source: path, plan: normalizePlan(plan) };
};

/** The host a `--plans` file is for (`web-1.json`, `web-1.SH`), or null for another kind of file. */
const planFileHost = (file: string): string | null => {
  const ext = [".json", ".sh"].find((e) => file.toLowerCase().endsWith(e));
  return ext === undefined ? null : file.slice(0, -ext.length);
};

/** Plan file names in `dir` (HOST.json, HOST.sh) whose host is not in the inventory: a typo, or a removed server. */
export const strayPlanFiles = (dir: string, inventory: readonly string[]): string[] => {
  const known = new Set(inventory);
  return readdirSync(dir)
    .filter((f) => {
      const host = planFileHost(f);
      return host !== null && !known.has(host);
    })
    .sort(compareHosts);
};

/** `--plans DIR`: HOST.json or HOST.sh (extension in any case) per server; a host with more than one is ambiguous. */
export const loadPlanDir = (dir: string, hosts: string[]): Map<string, LoadedPlan> => {
  if (!existsSync(dir)) throw new FleetplanError("not_found", `plans directory ${dir} does not exist`);
  // The listing indexed once by the host each plan file names: O(files + hosts), not O(files × hosts).
  const byHost = new Map<string, string[]>();
  for (const f of readdirSync(dir)) {
    const host = planFileHost(f);
    if (host !== null) byHost.set(host, [...(byHost.get(host) ?? []), f]);
  }
  const plans = new Map<string, LoadedPlan>();
  const problems: string[] = [];
  for (const host of hosts) {
    const found = byHost.get(host) ?? [];
    if (found.length === 0) problems.push(`${host}: no ${host}.json or ${host}.sh in ${dir}`);
    else if (found.length > 1) problems.push(`${host}: ${found.join(" and ")} in ${dir}`);
    else plans.set(host, loadPlanFile(join(dir, found[0]!)));
  }
  if (problems.length > 0) throw new FleetplanError("invalid_argument", `plans:\n  - ${problems.join("\n  - ")}`);
  return plans;
};
