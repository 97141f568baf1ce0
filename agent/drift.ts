// Drift: do the files the last successful plan wrote still hold what it wrote? The comparison is
// pure; reading a file is the one edge, done the way the executor writes (safe directories only,
// no final symlink followed, never more bytes read than were written).
import { createHash } from "node:crypto";
import { existsSync, lstatSync, realpathSync } from "node:fs";
import type { Stats } from "node:fs";
import { basename, dirname, posix } from "node:path";
import { FleetplanError } from "../shared/errors.ts";
import { readFileChecked } from "../shared/files.ts";
import type { PlanFile } from "../shared/types.ts";
import { accountIds } from "./executor/accounts.ts";
import { resolveParent } from "./executor/safe-path.ts";

/** What a successful run wrote to one path (kept in the ledger until the next success). */
export interface FileRecord {
  path: string;
  /** hex SHA-256 of the bytes written */
  sha256: string;
  size: number;
  /** permission bits as written (fchmod), 0o7777 */
  mode: number;
  /** null: the plan left owner (or group) to the agent, so it is not checked */
  uid: number | null;
  gid: number | null;
}

/** A file as found on disk now; `unreadable` carries why (an unsafe directory, EACCES, ...). */
export type Observed =
  | { kind: "missing" }
  | { kind: "not_a_file"; what: string }
  | { kind: "unreadable"; error: string }
  | { kind: "too_large"; size: number }
  | { kind: "file"; sha256: string; mode: number; uid: number; gid: number };

/** How a file differs from what the last run wrote: stable words in drift reports. */
export type DriftProblem = "missing" | "not_a_file" | "unreadable" | "content" | "mode" | "owner" | "group";

/** One drifted file, so the report names the path and every way it differs. */
export interface FileDrift {
  path: string;
  drifted: boolean;
  problems: DriftProblem[];
  /** One line for people: what differs, never file content. */
  detail: string;
}

/** One drift check's result, for the drift metric and on-demand checks. */
export interface DriftReport {
  /** unix ms */
  checkedAt: number;
  files: FileDrift[];
  drifted: number;
}

const sha256 = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");
const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, "0");

// Records what each file of a run is expected to be; owner ids resolve as the executor resolves them.
export const fileRecords = (files: readonly PlanFile[], ids = accountIds()): FileRecord[] =>
  files.map((file) => {
    const data = Buffer.from(file.content, "base64");
    const owner = ids(file);
    const known = (id: number | undefined) => (id === undefined || id < 0 ? null : id);
    const mode = file.mode & 0o7777;
    return { path: file.path, sha256: sha256(data), size: data.length, mode, uid: known(owner?.uid), gid: known(owner?.gid) };
  });

// Pure: one recorded file against what was found, listing every way it differs.
export const compareFile = (record: FileRecord, seen: Observed): FileDrift => {
  const result = (problems: DriftProblem[], detail: string): FileDrift => ({
    path: record.path,
    drifted: problems.length > 0,
    problems,
    detail,
  });
  switch (seen.kind) {
    case "missing":
      return result(["missing"], "missing");
    case "not_a_file":
      return result(["not_a_file"], `now ${seen.what}, not a regular file`);
    case "unreadable":
      return result(["unreadable"], `cannot be checked: ${seen.error}`);
    case "too_large":
      return result(["content"], `content differs (${seen.size} bytes, ${record.size} written)`);
    case "file": {
      const problems: DriftProblem[] = [];
      const details: string[] = [];
      const differs = (problem: DriftProblem, detail: string): void => {
        problems.push(problem);
        details.push(detail);
      };
      if (seen.sha256 !== record.sha256) differs("content", "content differs");
      if ((seen.mode & 0o7777) !== record.mode) differs("mode", `mode ${octal(seen.mode)}, ${octal(record.mode)} written`);
      if (record.uid !== null && seen.uid !== record.uid) differs("owner", `owner uid ${seen.uid}, ${record.uid} written`);
      if (record.gid !== null && seen.gid !== record.gid) differs("group", `group gid ${seen.gid}, ${record.gid} written`);
      return result(problems, problems.length === 0 ? "as written" : details.join(", "));
    }
  }
};

const inside = (path: string, root: string): boolean => root === "/" || path.startsWith(`${root}/`);
const realRoot = (root: string): string => (existsSync(root) ? realpathSync(root) : root);
const what = (st: Stats): string => (st.isSymbolicLink() ? "a symlink" : st.isDirectory() ? "a directory" : "a special file");

/**
 * Look at one recorded file as the executor would write it: its directories resolved through
 * safe ones only and still under a root, the final name never followed if it became a symlink,
 * at most `size + 1` bytes read (more means the content differs). Never throws.
 */
export const observeFile = (record: FileRecord, roots: readonly string[], euid = process.geteuid?.() ?? 0): Observed => {
  try {
    if (!roots.some((root) => inside(record.path, root))) {
      return { kind: "unreadable", error: `outside the allowed roots (${roots.join(", ")})` };
    }
    const parent = resolveParent(dirname(record.path), record.path, euid);
    if (parent.missing.length > 0) return { kind: "missing" };
    const real = posix.join(parent.real, basename(record.path));
    if (!roots.map(realRoot).some((root) => inside(real, root))) {
      return { kind: "unreadable", error: `resolves to ${real}, outside the allowed roots` };
    }
    let st: Stats;
    try {
      st = lstatSync(real);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
      throw error;
    }
    if (!st.isFile()) return { kind: "not_a_file", what: what(st) };
    if (st.size > record.size) return { kind: "too_large", size: st.size };
    const rules = { forbidden: 0, problem: "", fix: "", maxBytes: record.size, guarded: false };
    const read = readFileChecked(real, "drift check of", rules);
    return { kind: "file", sha256: sha256(read.data), mode: read.mode, uid: read.uid, gid: read.gid };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    // Grown between the size check and the read: it differs all the same.
    if (error instanceof FleetplanError && error.reason === "too_large") return { kind: "too_large", size: record.size + 1 };
    return { kind: "unreadable", error: (error as Error).message };
  }
};

// Every recorded file checked; `drifted` is what the metric and the status report.
export const checkDrift = (records: readonly FileRecord[], roots: readonly string[], now: number): DriftReport => {
  const files = records.map((record) => compareFile(record, observeFile(record, roots)));
  return { checkedAt: now, files, drifted: files.filter((f) => f.drifted).length };
};
