// A plan's files, each written all-or-nothing with its mode and owner before any step runs.
// Errors name the path and the errno code, never the content.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  openSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join, posix } from "node:path";
import type { PlanFile } from "../../shared/types.ts";
import { accountIds } from "./accounts.ts";
import { FileWriteError } from "./file-write-error.ts";
import { createParent, resolveParent } from "./safe-path.ts";
import type { SafeParent } from "./safe-path.ts";

const inside = (path: string, root: string): boolean => root === "/" || path.startsWith(`${root}/`);

const realRoot = (root: string): string => (existsSync(root) ? realpathSync(root) : root);

// The path as written must sit under a root; where it really leads is checked once resolved.
const checkPath = (path: string, roots: string[]): void => {
  if (posix.normalize(path) !== path || !path.startsWith("/") || path.endsWith("/"))
    throw new FileWriteError(`file ${path}: not a normalised absolute path`);
  if (!roots.some((root) => inside(path, root)))
    throw new FileWriteError(`file ${path} is outside the allowed roots (${roots.join(", ")})`, { reason: "file_outside_roots" });
};

// Resolved through safe directories only, the path must still sit under a root: a symlinked
// directory must not carry a write outside the roots. Checked before anything is created.
const placeSafely = (path: string, roots: string[], euid: number): SafeParent => {
  const parent = resolveParent(dirname(path), path, euid);
  const resolved = posix.join(parent.real, ...parent.missing, basename(path));
  if (!roots.map(realRoot).some((root) => inside(resolved, root))) {
    throw new FileWriteError(`file ${path} resolves to ${resolved}, outside the allowed roots (${roots.join(", ")})`, {
      reason: "file_outside_roots",
    });
  }
  return parent;
};

const syncDir = (dir: string): void => {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
};

const TEMP = /^\.fleetplan-(\d+)-[0-9a-f]{12}\.tmp$/;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
};

// A write cut short by kill -9 leaves its temp file: the next write into that directory removes
// every one whose writer is gone.
const removeStaleTemps = (dir: string): void => {
  for (const entry of readdirSync(dir)) {
    const pid = TEMP.exec(entry)?.[1];
    if (pid !== undefined && !alive(Number(pid))) rmSync(join(dir, entry), { force: true });
  }
};

const writeAll = (fd: number, data: Buffer): void => {
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off);
};

// chown before chmod: chown clears setuid/setgid bits, so the mode must be applied after it.
// Temp file and rename go through the checked real parent, never the path as written again.
const writeOne = (file: PlanFile, parent: string, ids: { uid: number; gid: number } | null): void => {
  const name = basename(file.path);
  removeStaleTemps(parent);
  // Fixed length, whatever the name: a 255-byte file name must still get a temp file.
  const tmp = join(parent, `.fleetplan-${process.pid}-${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  let open = true;
  try {
    writeAll(fd, Buffer.from(file.content, "base64"));
    if (ids) fchownSync(fd, ids.uid, ids.gid);
    fchmodSync(fd, file.mode);
    fsyncSync(fd);
    open = false;
    closeSync(fd);
    renameSync(tmp, join(parent, name));
  } catch (error) {
    if (open) closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  syncDir(parent);
};

const describe = (path: string, error: unknown): FileWriteError => {
  if (error instanceof FileWriteError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  return new FileWriteError(`cannot write ${path}: ${code ?? (error as Error).message}`, { cause: error });
};

/** Write every file in order, calling onWritten after each; throws FileWriteError on the first failure. */
export const writePlanFiles = (files: PlanFile[], roots: string[], onWritten: (file: PlanFile) => void): void => {
  const ids = accountIds();
  const euid = process.geteuid?.() ?? 0;
  for (const file of files) {
    try {
      checkPath(file.path, roots);
      const where = placeSafely(file.path, roots, euid);
      const owner = ids(file);
      writeOne(file, createParent(where, file.path, euid), owner);
    } catch (error) {
      throw describe(file.path, error);
    }
    onWritten(file);
  }
};
