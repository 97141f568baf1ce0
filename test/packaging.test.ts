// The packages an operator installs: the npm tarball (`npm pack`, installed with `npm install -g`
// into a temp prefix) and the Debian package (.ci/build-deb, unpacked with dpkg-deb -x into a temp
// root). Each installed copy runs --version, keygen, seal and apply of a real envelope, and
// systemd-analyze verifies the unit as installed. Nothing leaves 127.0.0.1: npm resolves the
// dependencies from a loopback registry serving package-lock.json's packages out of the npm cache.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { promisify } from "node:util";
import { PACKAGE_ROOT } from "../shared/version.ts";
import { startLockRegistry } from "./helpers/npm-registry.ts";
import { tempDirs } from "./helpers/temp.ts";

const tempDir = tempDirs(tmpdir(), "fleetplan-packaging-");
const VERSION: string = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")).version;
const exec = promisify(execFile);
const hasSystemdAnalyze = await exec("systemd-analyze", ["--version"]).then(
  () => true,
  () => false,
);

// Run a command; its exit code, stdout and stderr (never throws on a non-zero exit).
const run = async (cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}) => {
  const r = await exec(cmd, args, { encoding: "utf8", timeout: opts.timeout ?? 30_000, maxBuffer: 16 << 20, ...opts }).then(
    (ok) => ({ code: 0, stdout: ok.stdout, stderr: ok.stderr }),
    (e: { code?: number | string; stdout?: string; stderr?: string }) => ({ code: e.code, stdout: e.stdout ?? "", stderr: e.stderr ?? "" }),
  );
  return r as { code: number | string | undefined; stdout: string; stderr: string };
};

// Packages whose install script compiles a native module: compiling them takes minutes on 2 cores,
// so the test installs with --ignore-scripts and copies the modules compiled by `npm ci` instead.
const nativeModules = (): string[] => {
  type Lock = { packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }> };
  const lock = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package-lock.json"), "utf8")) as Lock;
  return Object.entries(lock.packages)
    .filter(([path, e]) => path !== "" && !e.dev && e.hasInstallScript)
    .map(([path]) => path);
};

const copyNativeBuilds = (appDir: string): void => {
  for (const module of nativeModules()) {
    const from = join(PACKAGE_ROOT, module, "build", "Release");
    const to = join(appDir, module, "build", "Release");
    mkdirSync(to, { recursive: true });
    for (const file of readdirSync(from).filter((f) => f.endsWith(".node"))) copyFileSync(join(from, file), join(to, file));
  }
};

interface Installed {
  /** Command line prefix that runs each bin as installed. */
  fleetplan: string;
  agent: string;
}

// `npm pack` of the checkout (its prepack builds dist/): the tarball and its file list.
const packTarball = async (): Promise<{ tarball: string; files: string[] }> => {
  const dir = tempDir();
  const pack = await run("npm", ["pack", "--silent", "--pack-destination", dir], { cwd: PACKAGE_ROOT, timeout: 120_000 });
  assert.equal(pack.code, 0, `npm pack (prepack builds dist/): ${pack.stdout}${pack.stderr}`);
  const tarball = join(dir, pack.stdout.trim().split("\n").at(-1)!);
  return { tarball, files: (await run("tar", ["-tzf", tarball])).stdout.split("\n").filter(Boolean) };
};

// The tarball, installed globally into a temp prefix from the loopback registry.
const installTarball = async (tarball: string): Promise<Installed> => {
  const dir = tempDir();
  const registry = await startLockRegistry(join(PACKAGE_ROOT, "package-lock.json"));
  try {
    const prefix = join(dir, "prefix");
    const args = [
      "install",
      "-g",
      "--prefix",
      prefix,
      "--registry",
      registry.url,
      "--cache",
      join(dir, "npm-cache"),
      "--ignore-scripts",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      tarball,
    ];
    const install = await run("npm", args, { timeout: 120_000 });
    assert.equal(install.code, 0, `npm install -g: ${install.stderr}`);
    copyNativeBuilds(join(prefix, "lib", "node_modules", "fleetplan"));
    return { fleetplan: join(prefix, "bin", "fleetplan"), agent: join(prefix, "bin", "fleetplan-agent") };
  } finally {
    await registry.close();
  }
};

// The .deb, built by .ci/build-deb from the same tarball and unpacked into a temp root.
const unpackDeb = async (tarball: string): Promise<Installed & { root: string; deb: string; control: string }> => {
  const dir = tempDir();
  const build = await run("bash", [join(PACKAGE_ROOT, ".ci", "build-deb"), join(dir, "out"), tarball], {
    cwd: PACKAGE_ROOT,
    timeout: 120_000,
  });
  assert.equal(build.code, 0, `.ci/build-deb: ${build.stderr}`);
  const deb = build.stdout.trim();
  const root = join(dir, "root");
  const unpack = await run("dpkg-deb", ["-x", deb, root]);
  assert.equal(unpack.code, 0, unpack.stderr);
  const control = (await run("dpkg-deb", ["-I", deb])).stdout;
  return { root, deb, control, fleetplan: join(root, "usr", "bin", "fleetplan"), agent: join(root, "usr", "bin", "fleetplan-agent") };
};

// keygen (admin and node), trust, seal with the installed coordinator; apply with the installed agent.
const sealAndApply = async (bins: Installed): Promise<void> => {
  const dir = tempDir();
  const ok = async (cmd: string, args: string[]) => {
    const r = await run(cmd, args);
    assert.equal(r.code, 0, `${cmd} ${args.join(" ")}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  for (const bin of [bins.fleetplan, bins.agent]) assert.equal(await ok(bin, ["--version"]), `${VERSION}\n`);
  await ok(bins.fleetplan, ["keygen", "admin", "--out", join(dir, "admin")]);
  const adminKey = join(dir, "admin", "admin.key");
  writeFileSync(join(dir, "trust"), await ok(bins.fleetplan, ["trust", "--admin-key", adminKey]));
  await ok(bins.agent, ["keygen", "--out", join(dir, "node")]);
  assert.equal(statSync(join(dir, "node", "node.key")).mode & 0o777, 0o600);
  const marker = join(dir, "marker");
  writeFileSync(join(dir, "plan.sh"), `echo converged > ${marker}\n`);
  const nodePub = readFileSync(join(dir, "node", "node.pub"), "utf8").trim();
  const envelope = join(dir, "envelope.fpe");
  await ok(bins.fleetplan, [
    "seal",
    "--plan",
    join(dir, "plan.sh"),
    "--target",
    "pkg-host",
    "--node-key",
    nodePub,
    "--id",
    "1",
    "--admin-key",
    adminKey,
    "--out",
    envelope,
  ]);
  const config = [
    "--hostname",
    "pkg-host",
    "--node-key",
    join(dir, "node", "node.key"),
    "--trust",
    join(dir, "trust"),
    "--state-dir",
    join(dir, "state"),
    "--log-dir",
    join(dir, "log"),
    "--store",
    "nats://127.0.0.1:1",
    "--metrics-listen",
    "off",
  ];
  const applied = JSON.parse(await ok(bins.agent, ["apply", envelope, ...config, "--json"])) as { ok: boolean; id: number; result: string };
  assert.deepEqual([applied.ok, applied.id, applied.result], [true, 1, "succeeded"]);
  assert.equal(readFileSync(marker, "utf8"), "converged\n");
};

describe("packages", { timeout: 300_000 }, () => {
  // One `npm pack` (and so one build); the .deb and the npm install are made from it side by side.
  let deb: Awaited<ReturnType<typeof unpackDeb>>;
  let npm: Installed & { files: string[] };
  before(
    async () => {
      const { tarball, files } = await packTarball();
      const [unpacked, installed] = await Promise.all([unpackDeb(tarball), installTarball(tarball)]);
      deb = unpacked;
      npm = { ...installed, files };
    },
    { timeout: 280_000 },
  );

  test("the npm tarball holds the built bins, dist/ and the unit; no sources, tests or build state", { timeout: 10_000 }, () => {
    for (const f of [
      "agent/bin.mjs",
      "coordinator/bin.mjs",
      "shared/built.mjs",
      "shared/run-cli.mjs",
      "dist/agent/cli/main.js",
      "dist/coordinator/cli/main.js",
      "systemd/fleetplan-agent.service",
      "package.json",
    ]) {
      assert.ok(npm.files.includes(`package/${f}`), `tarball lacks ${f}`);
    }
    const unwanted = npm.files.filter((f) => /\.ts$|^package\/(test|bench|nix|\.ci)\/|tsconfig|\.tsbuildinfo|dist\/packages\//.test(f));
    assert.deepEqual(unwanted, []);
  });

  test("npm install -g of the tarball: fleetplan and fleetplan-agent seal and apply a real envelope", { timeout: 60_000 }, async () => {
    const manifest = JSON.parse(readFileSync(join(realpathSync(npm.fleetplan), "..", "..", "package.json"), "utf8"));
    assert.equal(manifest.dependencies.tsx, undefined, "tsx is a dev dependency: nothing shipped imports it");
    await sealAndApply(npm);
  });

  test("the .deb: /usr/lib/fleetplan, both bins in /usr/bin, the unit, the env example; Depends nodejs", { timeout: 10_000 }, () => {
    const { root, control } = deb;
    for (const path of [
      "usr/lib/fleetplan/dist/agent/cli/main.js",
      "usr/lib/fleetplan/package.json",
      "usr/lib/fleetplan/node_modules/better-sqlite3/package.json",
      "lib/systemd/system/fleetplan-agent.service",
      "usr/share/doc/fleetplan/fleetplan-agent.env.example",
    ]) {
      assert.ok(existsSync(join(root, path)), `the .deb lacks /${path}`);
    }
    assert.equal(existsSync(join(root, "usr/lib/fleetplan/node_modules/typescript")), false, "dev dependencies are not shipped");
    assert.equal(existsSync(join(root, "usr/lib/fleetplan/node_modules/tsx")), false, "tsx is not shipped");
    assert.equal(existsSync(join(root, "usr/lib/fleetplan/tsconfig.build.json")), false, "installed bins skip the staleness check");
    for (const bin of [deb.fleetplan, deb.agent]) assert.ok(statSync(bin).mode & 0o111, `${bin} is not executable`);
    assert.match(control, /^ Depends: nodejs \(>= \d+\)/m);
    assert.match(control, new RegExp(`^ Version: ${VERSION.replaceAll(".", "\\.")}$`, "m"));
  });

  test("the .deb's postinst creates the state and log directories only: no keys, no service start", { timeout: 10_000 }, async () => {
    const dir = tempDir();
    assert.equal((await run("dpkg-deb", ["-e", deb.deb, dir])).code, 0);
    const postinst = readFileSync(join(dir, "postinst"), "utf8");
    assert.match(postinst, /install -d -m 0700 .*\/var\/lib\/fleetplan \/var\/log\/fleetplan/);
    assert.doesNotMatch(postinst, /keygen|\.key|creds|trust|systemctl (start|enable|restart)/);
  });

  test("the .deb's bins, run from the unpacked root, seal and apply a real envelope", { timeout: 60_000 }, async () => {
    await sealAndApply(deb);
  });

  test("systemd-analyze verify accepts the unit as installed by the .deb", {
    timeout: 30_000,
    skip: hasSystemdAnalyze ? false : "systemd-analyze is not installed (apt-get install systemd)",
  }, async () => {
    // The unit names /usr/bin/fleetplan-agent: point it at the unpacked copy (node stays /usr/bin/node).
    const unit = readFileSync(join(deb.root, "lib/systemd/system/fleetplan-agent.service"), "utf8");
    assert.match(unit, /^ExecStart=\/usr\/bin\/node (?:-\S+ )*\/usr\/bin\/fleetplan-agent run /m);
    const copy = join(tempDir(), "fleetplan-agent.service");
    writeFileSync(copy, unit.replace(/^(ExecStart=\S+ (?:-\S+ )*)\/usr\/bin\/fleetplan-agent /m, `$1${deb.agent} `));
    const r = await run("systemd-analyze", ["verify", "--man=no", copy], { env: { ...process.env, SYSTEMD_LOG_COLOR: "0" } });
    const findings = `${r.stdout}\n${r.stderr}`.split("\n").filter((l) => l.includes("fleetplan"));
    assert.deepEqual(findings, []);
    assert.equal(r.code, 0);
  });
});
