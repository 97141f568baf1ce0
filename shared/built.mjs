// Shared by the bins: find the compiled code in dist/ and refuse to run it when it is missing or
// older than the sources, so an edited checkout never silently runs yesterday's code.
import { readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DIST = join(ROOT, "dist");
// Written by `npm run build` with the time the build started (see package.json).
const STAMP = join(DIST, ".built");
const SOURCE_DIRS = ["agent", "coordinator", "shared"];
const SOURCE_FILES = ["tsconfig.json", "tsconfig.build.json"];

const mtimeOf = (path) => {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
};

// The first .ts file under dir newer than builtAt. A plain walk: readdirSync's `recursive` costs ~10 ms more.
const newerIn = (dir, builtAt) => {
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const newer = entry.isDirectory() ? newerIn(path, builtAt) : entry.name.endsWith(".ts") && statSync(join(ROOT, path)).mtimeMs > builtAt;
    if (newer) return newer === true ? path : newer;
  }
  return undefined;
};

/** The first source newer than the last build (relative path), or undefined: ~110 stats, 2–7 ms. */
const newerSource = (builtAt) =>
  SOURCE_DIRS.reduce((found, dir) => found ?? newerIn(dir, builtAt), undefined) ??
  SOURCE_FILES.find((file) => (mtimeOf(join(ROOT, file)) ?? 0) > builtAt);

/** Why dist/ cannot run, or undefined. Staleness is checked only in a source checkout (tsconfig.build.json present). */
export const distProblem = (entry) => {
  const hint = `run \`npm run build\` in ${ROOT}`;
  if (mtimeOf(join(DIST, entry)) === undefined) return `fleetplan is not built (no dist/${entry}): ${hint}`;
  if (mtimeOf(join(ROOT, "tsconfig.build.json")) === undefined) return undefined;
  const builtAt = mtimeOf(STAMP);
  if (builtAt === undefined) return `the last build did not finish (no dist/.built): ${hint}`;
  const newer = newerSource(builtAt);
  return newer === undefined ? undefined : `dist/ is older than ${newer}: ${hint}`;
};

/** Import dist/ENTRY (e.g. "agent/cli/main.js"); exits 2 with the fix when dist/ is missing or stale. */
export const importBuilt = async (entry) => {
  const problem = distProblem(entry);
  if (problem !== undefined) {
    process.stderr.write(`error: ${problem}\n`);
    process.exit(2);
  }
  return import(pathToFileURL(join(DIST, entry)).href);
};
