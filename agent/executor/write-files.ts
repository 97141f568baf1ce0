// A plan's files, each written all-or-nothing with its mode and owner before any step runs.
// Errors name the path and the errno code, never the content.
import { randomBytes } from "node:crypto";
import {
  chmodSync, closeSync, constants, existsSync, fchmodSync, fchownSync, fsyncSync, mkdirSync, openSync, realpathSync, renameSync, rmSync, writeSync,
} from "node:fs";
import { basename, dirname, join, posix } from "node:path";
import type { PlanFile } from "../../shared/types.ts";
import { accountIds } from "./accounts.ts";
import { FileWriteError } from "./file-write-error.ts";

const inside = (path: string, root: string): boolean => root === "/" || path.startsWith(`${root}/`);

const realRoot = (root: string): string => (existsSync(root) ? realpathSync(root) : root);

// Walk up to the deepest directory that exists; the rest of the path still has to be created.
const splitExisting = (dir: string): { existing: string; missing: string[] } => {
  const missing: string[] = [];
  let existing = dir;
  while (!existsSync(existing)) {
    missing.unshift(basename(existing));
    existing = dirname(existing);
  }
  return { existing, missing };
};

// The path must sit under a root both as written and once symlinks in its existing ancestors
// are resolved: a symlinked directory must not carry a write outside the roots.
const checkPlacement = (path: string, roots: string[]): { existing: string; missing: string[] } => {
  if (posix.normalize(path) !== path || !path.startsWith("/") || path.endsWith("/")) throw new FileWriteError(`file ${path}: not a normalised absolute path`);
  if (!roots.some((root) => inside(path, root))) throw new FileWriteError(`file ${path} is outside the allowed roots (${roots.join(", ")})`);
  const where = splitExisting(dirname(path));
  const resolved = posix.join(realpathSync(where.existing), ...where.missing, basename(path));
  if (!roots.map(realRoot).some((root) => inside(resolved, root))) {
    throw new FileWriteError(`file ${path} resolves to ${resolved}, outside the allowed roots (${roots.join(", ")})`);
  }
  return where;
};

// New parent directories get 0755 whatever the umask, like `install -d`.
const createParents = ({ existing, missing }: { existing: string; missing: string[] }): void => {
  let dir = existing;
  for (const name of missing) {
    dir = join(dir, name);
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
  }
};

const syncDir = (dir: string): void => {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
};

const writeAll = (fd: number, data: Buffer): void => {
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off);
};

// chown before chmod: chown clears setuid/setgid bits, so the mode must be applied after it.
const writeOne = (file: PlanFile, ids: { uid: number; gid: number } | null): void => {
  const tmp = join(dirname(file.path), `.${basename(file.path)}.fleetplan-${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  let open = true;
  try {
    writeAll(fd, Buffer.from(file.content, "base64"));
    if (ids) fchownSync(fd, ids.uid, ids.gid);
    fchmodSync(fd, file.mode);
    fsyncSync(fd);
    open = false;
    closeSync(fd);
    renameSync(tmp, file.path);
  } catch (error) {
    if (open) closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  syncDir(dirname(file.path));
};

const describe = (path: string, error: unknown): FileWriteError => {
  if (error instanceof FileWriteError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  return new FileWriteError(`cannot write ${path}: ${code ?? (error as Error).message}`, { cause: error });
};

/** Write every file in order, calling onWritten after each; throws FileWriteError on the first failure. */
export const writePlanFiles = (files: PlanFile[], roots: string[], onWritten: (file: PlanFile) => void): void => {
  const ids = accountIds();
  for (const file of files) {
    try {
      const where = checkPlacement(file.path, roots);
      const owner = ids(file);
      createParents(where);
      writeOne(file, owner);
    } catch (error) {
      throw describe(file.path, error);
    }
    onWritten(file);
  }
};
