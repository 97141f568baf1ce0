import { canonicalBytes } from "./canonical-json.ts";
import type { Plan, PlanFile, PlanStep } from "./types.ts";

/** Bounds on a plan document, so a valid signature cannot make the agent do unbounded work. */
export const PLAN_LIMITS = { files: 10_000, steps: 1_000, pathBytes: 4_096, nameChars: 200, timeoutS: 7 * 86_400 } as const;

// A flat character class plus a length check: a quantified group such as (?:[...]{4})* overflows
// V8's regexp backtrack stack (RangeError) on content above ~6 MiB.
// Strict base64 without a regexp pass or a re-encode: Node's decoder skips characters outside
// the alphabet and stops at "=", so only a well-formed string decodes to its full length. It
// also takes the URL-safe "-" and "_", refused here.
const isBase64 = (s: string): boolean => {
  if (s.length % 4 !== 0 || s.includes("-") || s.includes("_")) return false;
  const pad = s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0;
  return Buffer.from(s, "base64").length === (s.length / 4) * 3 - pad;
};
const ACCOUNT = /^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|\d{1,10})$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const unknownKeys = (value: Record<string, unknown>, allowed: readonly string[], where: string): string[] => {
  const problems: string[] = [];
  for (const k in value) if (!allowed.includes(k)) problems.push(`${where}: unknown field ${JSON.stringify(k)}`);
  return problems;
};

/** A "/" followed by nothing, ".", or ".." and then "/" or the end: an empty, . or .. segment. */
const NOT_NORMAL = /\/(?:\.{1,2})?(?:\/|$)/;

/** Absolute, normalised path: no empty, `.` or `..` segments, no NUL, no trailing slash. */
const pathProblem = (path: unknown): string | null => {
  if (typeof path !== "string" || !path.startsWith("/") || path.length < 2) return "must be an absolute path";
  if (Buffer.byteLength(path) > PLAN_LIMITS.pathBytes) return `longer than ${PLAN_LIMITS.pathBytes} bytes`;
  if (path.includes("\0")) return "contains NUL";
  if (NOT_NORMAL.test(path)) return "must be normalised (no //, . or ..)";
  return null;
};

/** Accepts 0o640 as a number or "0640" as an octal string; returns the number or null. */
export const parseMode = (mode: unknown): number | null => {
  const n = typeof mode === "string" && /^0?[0-7]{3,4}$/.test(mode) ? parseInt(mode, 8) : mode;
  return typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= 0o7777 ? n : null;
};

const fileProblems = (file: unknown, i: number): string[] => {
  const where = `files[${i}]`;
  if (!isObject(file)) return [`${where}: must be an object`];
  const problems = unknownKeys(file, ["path", "mode", "owner", "group", "content"], where);
  const path = pathProblem(file.path);
  if (path) problems.push(`${where}.path: ${path}`);
  if (parseMode(file.mode) === null) problems.push(`${where}.mode: must be octal permission bits (0 to 0o7777)`);
  for (const k of ["owner", "group"] as const) {
    if (file[k] !== undefined && (typeof file[k] !== "string" || !ACCOUNT.test(file[k]))) problems.push(`${where}.${k}: not a valid user/group name or id`);
  }
  if (typeof file.content !== "string" || !isBase64(file.content)) problems.push(`${where}.content: must be base64`);
  return problems;
};

const stepProblems = (step: unknown, i: number): string[] => {
  const where = `steps[${i}]`;
  if (!isObject(step)) return [`${where}: must be an object`];
  const problems = unknownKeys(step, ["name", "run", "timeout_s", "env"], where);
  if (typeof step.name !== "string" || step.name.length === 0 || step.name.length > PLAN_LIMITS.nameChars || /[\0-\x1f]/.test(step.name)) {
    problems.push(`${where}.name: must be 1-${PLAN_LIMITS.nameChars} printable characters`);
  }
  if (typeof step.run !== "string" || step.run.includes("\0")) problems.push(`${where}.run: must be a bash script (string without NUL)`);
  const t = step.timeout_s;
  if (t !== undefined && (typeof t !== "number" || !(t > 0) || t > PLAN_LIMITS.timeoutS)) {
    problems.push(`${where}.timeout_s: must be a number of seconds in (0, ${PLAN_LIMITS.timeoutS}]`);
  }
  if (step.env !== undefined) {
    if (!isObject(step.env)) problems.push(`${where}.env: must be an object of strings`);
    else for (const [k, v] of Object.entries(step.env)) {
      if (!ENV_NAME.test(k) || k.startsWith("FLEETPLAN_")) problems.push(`${where}.env: invalid or reserved name ${JSON.stringify(k.slice(0, 64))}`);
      if (typeof v !== "string" || v.includes("\0")) problems.push(`${where}.env.${k}: must be a string without NUL`);
    }
  }
  return problems;
};

/** Every problem with a plan document; empty when it is valid. Never echoes content. */
export const planProblems = (value: unknown): string[] => {
  if (!isObject(value)) return ["plan: must be a JSON object"];
  const problems = unknownKeys(value, ["kind", "v", "id", "target", "files", "steps"], "plan");
  if (value.kind !== "fleetplan/plan") problems.push(`plan.kind: must be "fleetplan/plan"`);
  if (value.v !== 1) problems.push("plan.v: must be 1");
  if (value.id !== undefined && !(Number.isSafeInteger(value.id) && (value.id as number) > 0)) problems.push("plan.id: must be a positive safe integer");
  if (value.target !== undefined && typeof value.target !== "string") problems.push("plan.target: must be a string");
  for (const [key, limit, check] of [["files", PLAN_LIMITS.files, fileProblems], ["steps", PLAN_LIMITS.steps, stepProblems]] as const) {
    const list = value[key];
    if (!Array.isArray(list)) problems.push(`plan.${key}: must be an array`);
    else if (list.length > limit) problems.push(`plan.${key}: at most ${limit} entries`);
    else list.forEach((item, i) => problems.push(...check(item, i)));
  }
  const paths = Array.isArray(value.files) ? value.files.map((f) => (isObject(f) ? f.path : undefined)) : [];
  if (new Set(paths).size !== paths.length) problems.push("plan.files: duplicate path");
  return problems;
};

/** Normalise a validated plan: modes as numbers, only known fields, in canonical order. */
export const normalizePlan = (value: Plan): Plan => ({
  kind: "fleetplan/plan",
  v: 1,
  ...(value.id !== undefined && { id: value.id }),
  ...(value.target !== undefined && { target: value.target }),
  files: value.files.map((f): PlanFile => ({
    path: f.path,
    mode: parseMode(f.mode) as number,
    ...(f.owner !== undefined && { owner: f.owner }),
    ...(f.group !== undefined && { group: f.group }),
    content: f.content,
  })),
  steps: value.steps.map((s): PlanStep => ({
    name: s.name,
    run: s.run,
    ...(s.timeout_s !== undefined && { timeout_s: s.timeout_s }),
    ...(s.env !== undefined && { env: { ...s.env } }),
  })),
});

/** A plain shell script is a plan with one step. */
export const planFromScript = (script: string, name = "script"): Plan => ({
  kind: "fleetplan/plan",
  v: 1,
  files: [],
  steps: [{ name, run: script }],
});

/** The exact plaintext bytes that are compressed, encrypted and hashed. */
export const planBytes = (plan: Plan): Uint8Array => canonicalBytes(normalizePlan(plan));
