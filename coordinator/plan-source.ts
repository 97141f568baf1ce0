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

/** Read a `.json` plan document or a `.sh` script (a one-step plan); every problem is named. */
export const loadPlanFile = (path: string): LoadedPlan => {
  const text = readTextFile(path, "plan");
  let plan: Plan;
  if (extname(path) === ".json") {
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

/** `--plans DIR`: HOST.json or HOST.sh per server; a host with both is ambiguous. */
export const loadPlanDir = (dir: string, hosts: string[]): Map<string, LoadedPlan> => {
  if (!existsSync(dir)) throw new FleetplanError("not_found", `plans directory ${dir} does not exist`);
  const files = new Set(readdirSync(dir));
  const plans = new Map<string, LoadedPlan>();
  const problems: string[] = [];
  for (const host of hosts) {
    const found = [`${host}.json`, `${host}.sh`].filter((f) => files.has(f));
    if (found.length === 0) problems.push(`${host}: no ${host}.json or ${host}.sh in ${dir}`);
    else if (found.length > 1) problems.push(`${host}: both ${host}.json and ${host}.sh in ${dir}`);
    else plans.set(host, loadPlanFile(join(dir, found[0]!)));
  }
  if (problems.length > 0) throw new FleetplanError("invalid_argument", `plans:\n  - ${problems.join("\n  - ")}`);
  return plans;
};
