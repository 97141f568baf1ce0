import { canonicalBytes } from "./canonical-json.ts";
import type { Plan, PlanFile, PlanStep } from "./types.ts";

/** Bounds on a plan document, so a valid signature cannot make the agent do unbounded work. */
export const PLAN_LIMITS = { files: 10_000, steps: 1_000, pathBytes: 4_096, nameChars: 200, timeoutS: 7 * 86_400 } as const;

// Indexed by any UTF-16 code unit, so the scan needs no range check per character.
const BASE64_ALPHABET = new Uint8Array(65_536);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") BASE64_ALPHABET[c.charCodeAt(0)] = 1;
/**
 * Below this length a scan of char codes is cheaper than Node's base64 decoder, whose call costs
 * a fixed ~8 µs on the agent's open path; above it the decoder's ~4x faster inner loop wins
 * (bench/envelope.ts, 4 KiB and 256 KiB plans).
 */
const DECODER_FROM_CHARS = 16_384;

/**
 * Strict base64: standard alphabet, "=" only as final padding. Node's decoder skips characters
 * outside its alphabet, so only a well-formed string decodes to its full length; but it takes
 * the URL-safe "-" and "_", and reads a character above U+00FF by its low byte ("Ł" as "A"),
 * hence the ASCII check. No regexp: a quantified group overflows V8's backtrack stack on
 * content above ~6 MiB.
 */
const isBase64 = (s: string): boolean => {
  if (s.length % 4 !== 0) return false;
  const pad = s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0;
  if (s.length >= DECODER_FROM_CHARS) {
    const ascii = Buffer.byteLength(s, "utf8") === s.length;
    return ascii && !s.includes("-") && !s.includes("_") && Buffer.from(s, "base64").length === (s.length / 4) * 3 - pad;
  }
  const end = s.length - pad;
  for (let i = 0; i < end; i++) if (BASE64_ALPHABET[s.charCodeAt(i)] === 0) return false;
  return true;
};

const ACCOUNT = /^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|\d{1,10})$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const CONTROL = /[\0-\x1f]/;
const OCTAL_MODE = /^0?[0-7]{3,4}$/;
/** A "/" followed by nothing, ".", or ".." and then "/" or the end: an empty, . or .. segment. */
const NOT_NORMAL = /\/(?:\.{1,2})?(?:\/|$)/;

const PLAN_FIELDS = ["kind", "v", "salt", "id", "target", "files", "steps"];
const SALT = /^[0-9a-f]{64}$/;
const FILE_FIELDS = ["path", "mode", "owner", "group", "content"];
const STEP_FIELDS = ["name", "run", "timeout_s", "env"];

// Validation runs on the agent's open path for every envelope: plain loops that push into one
// list and allocate nothing for a valid plan (bench/envelope.ts measures the difference).
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const checkKeys = (value: Record<string, unknown>, allowed: readonly string[], where: string, problems: string[]): void => {
  for (const k in value) if (!allowed.includes(k)) problems.push(`${where}: unknown field ${JSON.stringify(k)}`);
};

/** Absolute, normalised path: no empty, `.` or `..` segments, no NUL, no trailing slash. */
const pathProblem = (path: unknown): string | null => {
  if (typeof path !== "string" || !path.startsWith("/") || path.length < 2) return "must be an absolute path";
  // A UTF-16 unit takes at most 3 UTF-8 bytes: most paths need no byte count.
  if (path.length * 3 > PLAN_LIMITS.pathBytes && Buffer.byteLength(path) > PLAN_LIMITS.pathBytes)
    return `longer than ${PLAN_LIMITS.pathBytes} bytes`;
  if (path.includes("\0")) return "contains NUL";
  if (NOT_NORMAL.test(path)) return "must be normalised (no //, . or ..)";
  return null;
};

/** Accepts 0o640 as a number or "0640" as an octal string; returns the number or null. */
export const parseMode = (mode: unknown): number | null => {
  const n = typeof mode === "string" && OCTAL_MODE.test(mode) ? parseInt(mode, 8) : mode;
  return typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= 0o7777 ? n : null;
};

const checkFile = (file: unknown, i: number, problems: string[]): void => {
  const where = `files[${i}]`;
  if (!isObject(file)) {
    problems.push(`${where}: must be an object`);
    return;
  }
  checkKeys(file, FILE_FIELDS, where, problems);
  const path = pathProblem(file.path);
  if (path) problems.push(`${where}.path: ${path}`);
  if (parseMode(file.mode) === null) problems.push(`${where}.mode: must be octal permission bits (0 to 0o7777)`);
  for (const k of ["owner", "group"] as const) {
    const account = file[k];
    if (account !== undefined && (typeof account !== "string" || !ACCOUNT.test(account)))
      problems.push(`${where}.${k}: not a valid user/group name or id`);
  }
  if (typeof file.content !== "string" || !isBase64(file.content)) problems.push(`${where}.content: must be base64`);
};

const checkStep = (step: unknown, i: number, problems: string[]): void => {
  const where = `steps[${i}]`;
  if (!isObject(step)) {
    problems.push(`${where}: must be an object`);
    return;
  }
  checkKeys(step, STEP_FIELDS, where, problems);
  const name = step.name;
  if (typeof name !== "string" || name.length === 0 || name.length > PLAN_LIMITS.nameChars || CONTROL.test(name)) {
    problems.push(`${where}.name: must be 1-${PLAN_LIMITS.nameChars} printable characters`);
  }
  if (typeof step.run !== "string" || step.run.includes("\0")) problems.push(`${where}.run: must be a bash script (string without NUL)`);
  const t = step.timeout_s;
  if (t !== undefined && (typeof t !== "number" || !(t > 0) || t > PLAN_LIMITS.timeoutS)) {
    problems.push(`${where}.timeout_s: must be a number of seconds in (0, ${PLAN_LIMITS.timeoutS}]`);
  }
  const env = step.env;
  if (env === undefined) return;
  if (!isObject(env)) {
    problems.push(`${where}.env: must be an object of strings`);
    return;
  }
  for (const k in env) {
    const v = env[k];
    if (!ENV_NAME.test(k) || k.startsWith("FLEETPLAN_"))
      problems.push(`${where}.env: invalid or reserved name ${JSON.stringify(k.slice(0, 64))}`);
    if (typeof v !== "string" || v.includes("\0")) problems.push(`${where}.env.${k}: must be a string without NUL`);
  }
};

const checkList = (
  list: unknown,
  key: "files" | "steps",
  limit: number,
  check: (item: unknown, i: number, problems: string[]) => void,
  problems: string[],
): void => {
  if (!Array.isArray(list)) problems.push(`plan.${key}: must be an array`);
  else if (list.length > limit) problems.push(`plan.${key}: at most ${limit} entries`);
  else for (let i = 0; i < list.length; i++) check(list[i], i, problems);
};

/** Every problem with a plan document; empty when it is valid. Never echoes content. */
export const planProblems = (value: unknown): string[] => {
  if (!isObject(value)) return ["plan: must be a JSON object"];
  const problems: string[] = [];
  checkKeys(value, PLAN_FIELDS, "plan", problems);
  if (value.kind !== "fleetplan/plan") problems.push(`plan.kind: must be "fleetplan/plan"`);
  if (value.v !== 1 && value.v !== 2) problems.push("plan.v: must be 1 or 2");
  if (value.v === 2 && !(typeof value.salt === "string" && SALT.test(value.salt)))
    problems.push("plan.salt: version 2 needs 64 lowercase hex digits");
  if (value.v === 1 && value.salt !== undefined) problems.push("plan.salt: only in version 2");
  if (value.id !== undefined && !(Number.isSafeInteger(value.id) && (value.id as number) > 0))
    problems.push("plan.id: must be a positive safe integer");
  if (value.target !== undefined && typeof value.target !== "string") problems.push("plan.target: must be a string");
  checkList(value.files, "files", PLAN_LIMITS.files, checkFile, problems);
  checkList(value.steps, "steps", PLAN_LIMITS.steps, checkStep, problems);
  if (Array.isArray(value.files) && value.files.length > 1) {
    const paths = new Set<unknown>();
    for (const f of value.files) paths.add(isObject(f) ? f.path : undefined);
    if (paths.size !== value.files.length) problems.push("plan.files: duplicate path");
  }
  return problems;
};

/** Normalise a validated plan: modes as numbers, only known fields, in canonical order. */
export const normalizePlan = (value: Plan): Plan => ({
  kind: "fleetplan/plan",
  v: value.v,
  ...(value.salt !== undefined && { salt: value.salt }),
  ...(value.id !== undefined && { id: value.id }),
  ...(value.target !== undefined && { target: value.target }),
  files: value.files.map(
    (f): PlanFile => ({
      path: f.path,
      mode: parseMode(f.mode) as number,
      ...(f.owner !== undefined && { owner: f.owner }),
      ...(f.group !== undefined && { group: f.group }),
      content: f.content,
    }),
  ),
  steps: value.steps.map(
    (s): PlanStep => ({
      name: s.name,
      run: s.run,
      ...(s.timeout_s !== undefined && { timeout_s: s.timeout_s }),
      ...(s.env !== undefined && { env: { ...s.env } }),
    }),
  ),
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

/** The version-2 plan a host receives: the same content with that host's salt. */
export const saltPlan = (plan: Plan, salt: string): Plan => ({ ...plan, v: 2, salt });
