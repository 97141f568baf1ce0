import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  openSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import type { Stats } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { FleetplanError } from "./errors.ts";

/** Write a file all-or-nothing: temp file in the same directory, fsync, rename, fsync dir. */
export const writeFileAtomic = (path: string, data: string | Uint8Array, mode = 0o600): void => {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(tmp, "wx", mode);
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(tmp);
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, path);
  syncDir(dirname(path));
};

const syncDir = (dir: string): void => {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
};

const mode4 = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, "0");

/** Refuse a file owned by anyone but root or us: its owner could change what we trust. */
export const checkOwner = (path: string, what: string, uid: number): void => {
  const euid = process.geteuid?.() ?? 0;
  if (uid !== 0 && uid !== euid) {
    throw new FleetplanError(
      "insecure_key_file",
      `${what} ${path} is owned by uid ${uid}, not root or this user (${euid}); run: chown ${euid} ${path}`,
    );
  }
};

/**
 * Refuse a path whose directories another user could change (replace the file, or the directory
 * under it): each one up to / must be owned by root or us and not writable by group or others,
 * except a root-owned sticky directory such as /tmp, where others cannot rename our entries.
 */
export const checkParents = (path: string, what: string): void => {
  let dir: string;
  try {
    dir = realpathSync(dirname(resolve(path)));
  } catch (error) {
    throw new FleetplanError(
      "not_found",
      `cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  for (;;) {
    const { mode, uid } = statSync(dir);
    checkOwner(dir, `directory of ${what}`, uid);
    const sharedSticky = uid === 0 && (mode & 0o1000) !== 0;
    if (mode & 0o022 && !sharedSticky) {
      throw new FleetplanError(
        "insecure_key_file",
        `${what} ${path} is in ${dir}, which is writable by group or others (mode ${mode4(mode)}); run: chmod go-w ${dir}`,
      );
    }
    const up = dirname(dir);
    if (up === dir) return;
    dir = up;
  }
};

export interface ReadRules {
  /** Mode bits the file must not have. */
  forbidden: number;
  problem: string;
  fix: string;
  /** Refuse a file larger than this before reading it. */
  maxBytes: number;
  /** Check owner and parent directories (files that decide what runs, or hold secrets). */
  guarded: boolean;
}

const openError = (path: string, what: string, error: unknown): FleetplanError => {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ELOOP")
    return new FleetplanError("insecure_key_file", `${what} ${path} is a symbolic link; give the path of the file itself`);
  return new FleetplanError("not_found", `cannot read ${what} ${path}: ${code ?? (error as Error).message}`);
};

/**
 * A guarded file may be a symlink (NixOS links /etc files into /nix/store) when nobody else
 * can change the link or its target: the directories of both are checked, and the target is
 * what gets opened. Unguarded files (plans) must not be links at all.
 */
const resolveGuarded = (path: string, what: string): string => {
  checkParents(path, what);
  let target: string;
  let link: Stats;
  try {
    link = lstatSync(path);
    target = realpathSync(path);
  } catch (error) {
    throw openError(path, what, error);
  }
  // In a sticky directory another user may own a link there and repoint it at will.
  if (link.isSymbolicLink()) checkOwner(path, what, link.uid);
  if (target !== resolve(path)) checkParents(target, what);
  return target;
};

/**
 * Read a regular file through one descriptor: opened without following a final symlink and
 * without blocking on a FIFO, then checked with fstat and read from that same descriptor, so
 * nothing can swap the file between the check and the read. Bounded before reading.
 */
export const readFileChecked = (path: string, what: string, rules: ReadRules): { data: Buffer; mode: number; uid: number; gid: number } => {
  const target = rules.guarded ? resolveGuarded(path, what) : path;
  let fd: number;
  try {
    fd = openSync(target, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    throw openError(path, what, error);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new FleetplanError("invalid_argument", `${what} ${path} is not a regular file`);
    if (rules.guarded) checkOwner(path, what, stat.uid);
    if (stat.mode & rules.forbidden) {
      throw new FleetplanError(
        "insecure_key_file",
        `${what} ${path} is ${rules.problem} (mode ${mode4(stat.mode & 0o777)}); run: ${rules.fix} ${path}`,
      );
    }
    if (stat.size > rules.maxBytes) {
      throw new FleetplanError("too_large", `${what} ${path} is ${stat.size} bytes, over the limit of ${rules.maxBytes}`);
    }
    // Read one byte past the limit: a file that grew after fstat is refused, not cut short.
    const buffer = Buffer.alloc(rules.maxBytes + 1);
    let length = 0;
    for (let n = -1; n !== 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
    if (length > rules.maxBytes)
      throw new FleetplanError("too_large", `${what} ${path} grew past the limit of ${rules.maxBytes} bytes while being read`);
    return { data: buffer.subarray(0, length), mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid };
  } finally {
    closeSync(fd);
  }
};

/** Key, trust, config and credential files are small: anything larger is not one. */
const SMALL_FILE_BYTES = 1024 * 1024;

/** Secrets: nobody but the owner may read them. */
export const PRIVATE_FILE: ReadRules = {
  forbidden: 0o077,
  problem: "accessible by group or others",
  fix: "chmod 600",
  maxBytes: SMALL_FILE_BYTES,
  guarded: true,
};
/** Files that decide what runs (config, trust): nobody but the owner may change them. */
export const PROTECTED_FILE: ReadRules = {
  forbidden: 0o022,
  problem: "writable by group or others",
  fix: "chmod go-w",
  maxBytes: SMALL_FILE_BYTES,
  guarded: true,
};

/** Read a private key or credentials file, refusing it (like OpenSSH) when group or others may read it. */
export const readPrivateFile = (path: string, what: string): string => readFileChecked(path, what, PRIVATE_FILE).data.toString("utf8");

/** The same for a private file handed on as bytes (TLS keys). */
export const readPrivateBytes = (path: string, what: string): Buffer => readFileChecked(path, what, PRIVATE_FILE).data;

/** Read a file that decides what runs as root (trust set, config): refuse it when others may write it. */
export const readProtectedFile = (path: string, what: string): string => readFileChecked(path, what, PROTECTED_FILE).data.toString("utf8");

/** Read an ordinary file, with the path in the error. */
export const readTextFile = (path: string, what: string): string => {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw openError(path, what, error);
  }
};
