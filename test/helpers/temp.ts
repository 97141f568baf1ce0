import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after } from "node:test";

/** A temp-dir factory for one test file: every directory it makes is removed after the file. */
export const tempDirs = (base: string, prefix: string): (() => string) => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(base, prefix));
    dirs.push(dir);
    return dir;
  };
};
