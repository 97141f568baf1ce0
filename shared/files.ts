import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
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

const readOrExplain = (path: string, what: string): string => {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FleetplanError("not_found", `cannot read ${what} ${path}: ${code ?? (error as Error).message}`);
  }
};

/** Refuse a file owned by anyone but root or us: its owner could change what we trust. */
const checkOwner = (path: string, what: string, uid: number): void => {
  const euid = process.geteuid?.() ?? 0;
  if (uid !== 0 && uid !== euid) {
    throw new FleetplanError("insecure_key_file", `${what} ${path} is owned by uid ${uid}, not root or this user (${euid}); run: chown ${euid} ${path}`);
  }
};

/** Read a file owned by root or us whose mode has none of the `forbidden` bits, or say how to fix it. */
const readGuarded = (path: string, what: string, forbidden: number, problem: string, fix: string): string => {
  const text = readOrExplain(path, what);
  const { mode: rawMode, uid } = statSync(path);
  checkOwner(path, what, uid);
  const mode = rawMode & 0o777;
  if (mode & forbidden) {
    throw new FleetplanError("insecure_key_file", `${what} ${path} is ${problem} (mode ${mode.toString(8).padStart(4, "0")}); run: ${fix} ${path}`);
  }
  return text;
};

/** Read a private key file, refusing it (like OpenSSH) when group or others may read it. */
export const readPrivateFile = (path: string, what: string): string =>
  readGuarded(path, what, 0o077, "accessible by group or others", "chmod 600");

/** Read a file that decides what runs as root (trust set): refuse it when others may write it. */
export const readProtectedFile = (path: string, what: string): string =>
  readGuarded(path, what, 0o022, "writable by group or others", "chmod go-w");

/** Read an ordinary file, with the path in the error. */
export const readTextFile = (path: string, what: string): string => readOrExplain(path, what);
