// Where a plan file really goes, found one name at a time from "/" (symlinks followed by hand)
// so that every directory the lookup passes through is checked before it is trusted: owned by
// root or this agent and writable by nobody else (OpenSSH's safe_path rule). Whoever else can
// write a directory on the way can swap a name in it for a symlink between check and write.
import { chmodSync, lstatSync, mkdirSync, readlinkSync } from "node:fs";
import type { Stats } from "node:fs";
import { posix } from "node:path";
import { FileWriteError } from "./file-write-error.ts";

/** A parent directory: its deepest existing real ancestor and the names still to create under it. */
export interface SafeParent {
  real: string;
  missing: string[];
}

// Linux's limit on symlinks followed in one lookup (MAXSYMLINKS).
const MAX_LINKS = 40;

const lstatOrNull = (path: string): Stats | null => {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
};

const trustedOwner = (st: Stats, euid: number): boolean => st.uid === 0 || st.uid === euid;
/** Writable by others but sticky (as /tmp): others can add names there, never replace ours. */
const stickyShared = (st: Stats): boolean => (st.mode & 0o022) !== 0 && (st.mode & 0o1000) !== 0;

// A sticky shared directory is passed only through names we own (checked as each is reached,
// like Linux's protected_symlinks): a name someone else planted there is refused.
const checkDirectory = (file: string, dir: string, st: Stats, euid: number): void => {
  if (!st.isDirectory()) throw new FileWriteError(`file ${file}: ${dir} is not a directory`);
  if (trustedOwner(st, euid) && ((st.mode & 0o022) === 0 || stickyShared(st))) return;
  const mode = (st.mode & 0o7777).toString(8).padStart(4, "0");
  throw new FileWriteError(
    `file ${file}: directory ${dir} is owned by uid ${st.uid} with mode ${mode}; a user who can write there could redirect this write with a symlink`,
  );
};

/**
 * Resolve `dir` like realpath(3), checking "/" and every directory reached on the way (those
 * holding symlinks included), and stop at the first missing name. Nothing is created.
 */
export const resolveParent = (dir: string, file: string, euid: number): SafeParent => {
  const names = dir.split("/").filter((name) => name !== "");
  let current = "/";
  checkDirectory(file, current, lstatSync(current), euid);
  let links = 0;
  for (let name = names.shift(); name !== undefined; name = names.shift()) {
    if (name === ".") continue;
    if (name === "..") {
      current = posix.dirname(current); // already checked: every prefix of `current` was
      continue;
    }
    const next = posix.join(current, name);
    const st = lstatOrNull(next);
    if (st === null) {
      const missing = [name, ...names];
      if (missing.includes("..") || missing.includes(".")) throw new FileWriteError(`cannot write ${file}: ENOENT (${next})`);
      return { real: current, missing };
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new FileWriteError(`cannot write ${file}: ELOOP (${dir})`);
      if (!trustedOwner(st, euid)) {
        throw new FileWriteError(
          `file ${file}: ${next} is a symlink owned by uid ${st.uid}; a user who can write there could redirect this write with it`,
        );
      }
      const target = readlinkSync(next);
      if (target.startsWith("/")) current = "/";
      names.unshift(...target.split("/").filter((part) => part !== ""));
      continue;
    }
    checkDirectory(file, next, st, euid);
    current = next;
  }
  return { real: current, missing: [] };
};

/** Create the missing directories one level at a time, 0755 whatever the umask, each checked; returns the real parent. */
export const createParent = ({ real, missing }: SafeParent, file: string, euid: number): string => {
  let dir = real;
  for (const name of missing) {
    dir = posix.join(dir, name);
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    checkDirectory(file, dir, lstatSync(dir), euid);
  }
  return dir;
};
