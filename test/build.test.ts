// The bins run the compiled code in dist/: no tsx or TypeScript is loaded, --help and --version load
// none of the heavy dependencies, and a missing or stale dist/ is refused with the command that fixes it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { PACKAGE_ROOT } from "../shared/version.ts";
import { AGENT_BIN, CLI_BIN } from "./helpers/fleet.ts";
import { tempDirs } from "./helpers/temp.ts";

const tempDir = tempDirs(tmpdir(), "fleetplan-build-");
const VERSION: string = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")).version;

// A resolve hook that lists every module the process loads (ESM imports and CommonJS requires) on stderr.
const writeLoadLogger = (dir: string): string => {
  writeFileSync(
    join(dir, "hooks.mjs"),
    `export const resolve = async (specifier, context, next) => {
  const resolved = await next(specifier, context);
  process.stderr.write("LOADED " + resolved.url + "\\n");
  return resolved;
};
`,
  );
  const register = join(dir, "register.mjs");
  writeFileSync(
    register,
    `import Module, { register } from "node:module";
register("./hooks.mjs", import.meta.url);
process.on("exit", () => Object.keys(Module._cache).forEach((p) => process.stderr.write("LOADED " + p + "\\n")));
`,
  );
  return register;
};

// Run a bin with NODE_OPTIONS unset and the load logger: its exit status, stdout and the modules it loaded.
const runLogged = (register: string, bin: string, args: string[]) => {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const r = spawnSync("node", ["--import", register, bin, ...args], { encoding: "utf8", env, timeout: 30_000 });
  const loaded = r.stderr
    .split("\n")
    .filter((l) => l.startsWith("LOADED "))
    .map((l) => l.slice(7));
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, loaded };
};

test("the built bins answer --version and --help without tsx, TypeScript or heavy dependencies", { timeout: 60_000 }, () => {
  const register = writeLoadLogger(tempDir());
  for (const [bin, args] of [
    [AGENT_BIN, ["--version"]],
    [CLI_BIN, ["--version"]],
    [AGENT_BIN, ["--help"]],
    [CLI_BIN, ["--help"]],
  ] as const) {
    const r = runLogged(register, bin, [...args]);
    assert.equal(r.status, 0, `${bin} ${args[0]} exited ${r.status}: ${r.stderr}`);
    if (args[0] === "--version") assert.equal(r.stdout, `${VERSION}\n`);
    assert.ok(
      r.loaded.some((url) => url.includes("/dist/") && url.endsWith("/cli/main.js")),
      `${bin} did not load dist/: ${r.loaded.join(" ")}`,
    );
    const typescript = r.loaded.filter((url) => /\/node_modules\/(tsx|typescript|esbuild)\/|\.ts$/.test(url));
    assert.deepEqual(typescript, [], `${bin} ${args[0]} loaded TypeScript tooling or sources`);
    const heavy = r.loaded.filter((url) => /\/node_modules\/(@nats-io|better-sqlite3|libsodium|prom-client|zstd-napi|execa)/.test(url));
    assert.deepEqual(heavy, [], `${bin} ${args[0]} loaded dependencies it does not need`);
  }
});

// A copy of the bins' loader in a fake checkout: ROOT/shared/built.mjs, one source, and dist/.
const fakeCheckout = () => {
  const root = tempDir();
  for (const dir of ["shared", "agent/cli", "coordinator", "dist/agent/cli"]) mkdirSync(join(root, dir), { recursive: true });
  copyFileSync(join(PACKAGE_ROOT, "shared", "built.mjs"), join(root, "shared", "built.mjs"));
  writeFileSync(join(root, "package.json"), JSON.stringify({ type: "module" }));
  writeFileSync(join(root, "tsconfig.build.json"), "{}");
  writeFileSync(join(root, "tsconfig.json"), "{}");
  writeFileSync(join(root, "agent", "cli", "main.ts"), "export const main = () => 0;\n");
  const bin = join(root, "agent", "bin.mjs");
  writeFileSync(
    bin,
    `import { importBuilt } from "../shared/built.mjs";\nconst { main } = await importBuilt("agent/cli/main.js");\nprocess.exit(main());\n`,
  );
  return { root, bin };
};

test("a missing, unfinished or stale dist/ is refused with `npm run build`, a fresh one runs", { timeout: 30_000 }, () => {
  const { root, bin } = fakeCheckout();
  const run = () => spawnSync("node", [bin], { encoding: "utf8", timeout: 10_000 });
  const past = new Date(Date.now() - 60_000);
  for (const file of ["tsconfig.json", "tsconfig.build.json", "agent/cli/main.ts", "shared/built.mjs", "agent/bin.mjs"])
    utimesSync(join(root, file), past, past);

  let r = run();
  assert.equal(r.status, 2);
  assert.match(r.stderr, /fleetplan is not built \(no dist\/agent\/cli\/main\.js\): run `npm run build` in /);

  writeFileSync(join(root, "dist", "agent", "cli", "main.js"), "export const main = () => 0;\n");
  r = run();
  assert.equal(r.status, 2);
  assert.match(r.stderr, /the last build did not finish \(no dist\/\.built\): run `npm run build`/);

  writeFileSync(join(root, "dist", ".built"), "");
  r = run();
  assert.equal(r.status, 0, r.stderr);

  const future = new Date(Date.now() + 60_000);
  utimesSync(join(root, "agent", "cli", "main.ts"), future, future);
  r = run();
  assert.equal(r.status, 2);
  assert.match(r.stderr, /dist\/ is older than agent\/cli\/main\.ts: run `npm run build` in /);
});
