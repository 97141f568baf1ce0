import { existsSync, readdirSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { FleetplanError } from "../shared/errors.ts";
import { readTextFile } from "../shared/files.ts";
import { blake2bHex } from "../shared/keys.ts";
import { normalizePlan, planBytes, planFromScript, planProblems } from "../shared/plan.ts";
import type { Plan } from "../shared/types.ts";

/** A plan ready to seal: its canonical bytes and their hash. */
export interface LoadedPlan {
  source: string;
  bytes: Uint8Array;
  hash: string;
}

/** What a plan file is, by its extension (any case): anything else is refused, never run as a script. */
const planKind = (path: string): "json" | "script" => {
  const ext = extname(path).toLowerCase();
  if (ext === ".json") return "json";
  if (ext === ".sh") return "script";
  throw new FleetplanError("invalid_argument", `${path}: a plan file must end in .json (a plan document) or .sh (a script)`);
};

/** Read a `.json` plan document or a `.sh` script (a one-step plan); every problem is named. */
export const loadPlanFile = (path: string): LoadedPlan => {
  const kind = planKind(path);
  const text = readTextFile(path, "plan");
  let plan: Plan;
  if (kind === "json") {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new FleetplanError("invalid_argument", `${path}: not valid JSON (${(error as Error).message})`);
    }
    const problems = planProblems(value);
    if (problems.length > 0) throw new FleetplanError("invalid_argument", `${path}: invalid plan:\n  - ${problems.join("\n  - ")}`);
    plan = normalizePlan(value as Plan);
  } else {
    plan = planFromScript(text, basename(path));
  }
  const bytes = planBytes(plan);
  return { source: path, bytes, hash: blake2bHex(bytes) };
};

/** `--plans DIR`: HOST.json or HOST.sh (extension in any case) per server; a host with more than one is ambiguous. */
export const loadPlanDir = (dir: string, hosts: string[]): Map<string, LoadedPlan> => {
  if (!existsSync(dir)) throw new FleetplanError("not_found", `plans directory ${dir} does not exist`);
  const files = readdirSync(dir);
  const plans = new Map<string, LoadedPlan>();
  const problems: string[] = [];
  for (const host of hosts) {
    const found = files.filter((f) => f.startsWith(host) && [".json", ".sh"].includes(f.slice(host.length).toLowerCase()));
    if (found.length === 0) problems.push(`${host}: no ${host}.json or ${host}.sh in ${dir}`);
    else if (found.length > 1) problems.push(`${host}: ${found.join(" and ")} in ${dir}`);
    else plans.set(host, loadPlanFile(join(dir, found[0]!)));
  }
  if (problems.length > 0) throw new FleetplanError("invalid_argument", `plans:\n  - ${problems.join("\n  - ")}`);
  return plans;
};
