import assert from "node:assert/strict";
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import { createExecutor } from "../../agent/executor.ts";
import type { ExecutorOptions, RunContext, RunOutcome, StepEvent } from "../../agent/executor.ts";
import type { Plan, PlanFile, PlanStep } from "../../shared/types.ts";
import { tempDirs } from "../helpers/temp.ts";

// Tests work under the home directory, a tree owned by root or the user running them, so the
// executor's check of every directory on a plan file's path passes without relying on /tmp.
const tempDir = tempDirs(homedir(), ".fleetplan-exec-");

const b64 = (text: string): string => Buffer.from(text).toString("base64");
const plan = (steps: PlanStep[], files: PlanFile[] = []): Plan => ({ kind: "fleetplan/plan", v: 1, files, steps });

let runIds = 0;
const context = (events: StepEvent[] = [], signal = new AbortController().signal): RunContext => ({
  id: 20250101000000,
  planHash: "ab".repeat(32),
  runId: ++runIds,
  signal,
  onStep: (e) => events.push(e),
});

const setup = (options: Partial<ExecutorOptions> = {}) => {
  const dir = tempDir();
  const logDir = join(dir, "logs");
  const executor = createExecutor({ logDir, graceMs: 500, env: { PATH: process.env.PATH }, ...options });
  return { dir, logDir, executor };
};

// kill(pid, 0) succeeds on zombies, which linger where PID 1 does not reap orphans: a zombie runs nothing.
const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, "utf8") : ") Z";
  return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
};

const waitFor = async (check: () => boolean, ms: number): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(10);
  }
};

const readPid = (path: string): number => Number(readFileSync(path, "utf8").trim());
const asRoot = process.getuid?.() === 0;

describe("executor", () => {
  test("a 2-step plan writes files atomically with their modes, then runs the steps in order with FLEETPLAN_* env", async () => {
    const { dir, executor } = setup();
    const out = join(dir, "order.txt");
    const target = join(dir, "etc", "app", "config.ini");
    mkdirSync(join(dir, "etc"));
    const existing = join(dir, "etc", "existing");
    writeFileSync(existing, "old");
    const oldInode = statSync(existing).ino;
    const files: PlanFile[] = [
      { path: target, mode: 0o640, content: b64("[app]\nkey = 1\n"), ...(asRoot && { owner: "nobody", group: "65534" }) },
      { path: existing, mode: 0o600, content: b64("new") },
    ];
    const step = (n: number): PlanStep => ({
      name: `step-${n}`,
      run: `echo "${n} $FLEETPLAN_PROVISIONING_ID $FLEETPLAN_PLAN_HASH $FLEETPLAN_STEP $(pwd)" >> ${out}`,
    });
    const events: StepEvent[] = [];
    const umask = process.umask(0o077);
    let outcome: RunOutcome;
    try {
      outcome = await executor.run(plan([step(1), step(2)], files), context(events));
    } finally {
      process.umask(umask);
    }
    assert.equal(outcome.result, "succeeded", outcome.error ?? "");
    assert.equal(readFileSync(target, "utf8"), "[app]\nkey = 1\n");
    assert.equal(statSync(target).mode & 0o7777, 0o640);
    assert.equal(statSync(join(dir, "etc", "app")).mode & 0o777, 0o755);
    if (asRoot) assert.deepEqual([statSync(target).uid, statSync(target).gid], [65534, 65534]);
    assert.equal(readFileSync(existing, "utf8"), "new");
    assert.notEqual(statSync(existing).ino, oldInode, "replaced by rename, not rewritten in place");
    assert.deepEqual(readdirSync(join(dir, "etc")).sort(), ["app", "existing"], "no temp files left");
    const hash = "ab".repeat(32);
    assert.equal(readFileSync(out, "utf8"), `1 20250101000000 ${hash} step-1 /\n2 20250101000000 ${hash} step-2 /\n`);
    assert.deepEqual(
      outcome.steps.map((s) => [s.index, s.name, s.exitCode, s.signal, s.timedOut]),
      [
        [0, "step-1", 0, null, false],
        [1, "step-2", 0, null, false],
      ],
    );
    assert.deepEqual(
      events.map((e) => `${e.phase}:${e.name}`),
      ["start:step-1", "end:step-1", "start:step-2", "end:step-2"],
    );
    assert.equal(statSync(outcome.logFile).mode & 0o777, 0o600);
    assert.match(readFileSync(outcome.logFile, "utf8"), /==> \[1\/2\] step-1: started .*\n<== \[1\/2\] step-1: exit code 0 after/);
  });

  test("a failing step stops the run: later steps do not run, the failed step is named", async () => {
    const { dir, executor } = setup();
    const marker = join(dir, "ran-third");
    const outcome = await executor.run(
      plan([
        { name: "ok", run: "true" },
        { name: "breaks", run: "echo before; false; echo not-reached" },
        { name: "third", run: `touch ${marker}` },
      ]),
      context(),
    );
    assert.equal(outcome.result, "failed");
    assert.equal(outcome.failedStep, "breaks");
    assert.equal(outcome.error, 'step "breaks" failed: exit code 1');
    assert.deepEqual(
      outcome.steps.map((s) => [s.name, s.exitCode]),
      [
        ["ok", 0],
        ["breaks", 1],
      ],
    );
    assert.equal(existsSync(marker), false);
    const log = readFileSync(outcome.logFile, "utf8");
    assert.ok(log.includes("before\n") && !log.includes("not-reached"), log);
  });

  test("a step timeout kills the whole process group, a background child included", async () => {
    const { dir, executor } = setup({ graceMs: 300 });
    const pidFile = join(dir, "child.pid");
    const started = Date.now();
    const outcome = await executor.run(plan([{ name: "hangs", run: `sleep 30 & echo $! > ${pidFile}; wait`, timeout_s: 0.3 }]), context());
    assert.ok(Date.now() - started < 3_000);
    assert.equal(outcome.result, "failed");
    const [step] = outcome.steps;
    assert.equal(step?.timedOut, true);
    assert.equal(step?.signal, "SIGTERM");
    assert.equal(isAlive(readPid(pidFile)), false, "the background sleep survived the step");
  });

  test("an abort mid-step interrupts the run within graceMs and kills children that ignore SIGTERM", async () => {
    const graceMs = 400;
    const { dir, executor } = setup({ graceMs });
    const pidFile = join(dir, "child.pid");
    const controller = new AbortController();
    const marker = join(dir, "next-ran");
    const running = executor.run(
      plan([
        { name: "long", run: `(trap '' TERM; exec sleep 30) & echo $! > ${pidFile}; wait` },
        { name: "next", run: `touch ${marker}` },
      ]),
      context([], controller.signal),
    );
    await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("\n"), 5_000);
    const pid = readPid(pidFile);
    const aborted = Date.now();
    controller.abort();
    const outcome = await running;
    assert.ok(Date.now() - aborted < graceMs + 1_000, `took ${Date.now() - aborted} ms`);
    assert.equal(outcome.result, "interrupted");
    assert.equal(outcome.failedStep, "long");
    assert.equal(outcome.steps.length, 1);
    assert.equal(existsSync(marker), false);
    assert.equal(isAlive(pid), false, "the TERM-ignoring child survived the abort");
  });

  test("a 255-byte file name is written, and temp files of a writer killed mid-write are removed by the next write", async () => {
    const { dir, executor } = setup();
    const long = join(dir, "x".repeat(255));
    // A dead writer's leftover (pid far above pid_max), and a live one's (ours), which stays.
    const dead = join(dir, ".fleetplan-99999999-0123456789ab.tmp");
    const live = join(dir, `.fleetplan-${process.pid}-0123456789ab.tmp`);
    writeFileSync(dead, "partial");
    writeFileSync(live, "in progress");
    const outcome = await executor.run(plan([], [{ path: long, mode: 0o600, content: b64("long") }]), context());
    assert.equal(outcome.result, "succeeded", outcome.error ?? "");
    assert.equal(readFileSync(long, "utf8"), "long");
    assert.equal(existsSync(dead), false, "a dead writer's temp file is removed");
    assert.equal(existsSync(live), true, "a live writer's temp file is left alone");
  });

  test("a file outside fileRoots fails the run before any step, naming the path", async () => {
    const dir = tempDir();
    const root = join(dir, "root");
    mkdirSync(root);
    const { executor } = setup({ fileRoots: [`${root}/`] });
    const marker = join(dir, "step-ran");
    const outside = join(dir, "elsewhere.conf");
    const outcome = await executor.run(
      plan(
        [{ name: "s", run: `touch ${marker}` }],
        [
          { path: join(root, "fine.conf"), mode: 0o644, content: b64("fine") },
          { path: outside, mode: 0o644, content: b64("SECRET-CONTENT") },
        ],
      ),
      context(),
    );
    assert.equal(outcome.result, "failed");
    assert.match(outcome.error ?? "", new RegExp(`^file ${outside} is outside the allowed roots`));
    assert.deepEqual(outcome.steps, []);
    assert.equal(existsSync(marker), false);
    assert.equal(existsSync(outside), false);
  });

  test("a symlinked directory cannot carry a file outside fileRoots", async () => {
    const dir = tempDir();
    const root = join(dir, "root");
    const outside = join(dir, "outside");
    mkdirSync(root);
    mkdirSync(outside);
    symlinkSync(outside, join(root, "link"));
    const { executor } = setup({ fileRoots: [root] });
    const path = join(root, "link", "sub", "x.conf");
    const outcome = await executor.run(plan([{ name: "s", run: "true" }], [{ path, mode: 0o644, content: b64("x") }]), context());
    assert.equal(outcome.result, "failed");
    assert.ok(outcome.error?.startsWith(`file ${path} resolves to ${join(outside, "sub", "x.conf")}`), outcome.error ?? "");
    assert.deepEqual(readdirSync(outside), []);
    assert.deepEqual(outcome.steps, []);
  });

  test("a symlinked directory inside fileRoots still works: the file lands in the real directory", async () => {
    const dir = tempDir();
    const root = join(dir, "root");
    mkdirSync(join(root, "releases", "v1"), { recursive: true });
    symlinkSync(join(root, "releases", "v1"), join(root, "current"));
    const { executor } = setup({ fileRoots: [root] });
    const outcome = await executor.run(
      plan([], [{ path: join(root, "current", "conf.d", "app.conf"), mode: 0o644, content: b64("v1") }]),
      context(),
    );
    assert.equal(outcome.result, "succeeded", outcome.error ?? "");
    assert.equal(readFileSync(join(root, "releases", "v1", "conf.d", "app.conf"), "utf8"), "v1");
    assert.deepEqual(readdirSync(join(root, "releases", "v1", "conf.d")), ["app.conf"], "no temp files left");
  });

  test('a symlink planted in a directory another user owns cannot redirect a write, even with fileRoots ["/"]', {
    skip: !asRoot && "needs root to chown",
  }, async () => {
    const dir = tempDir();
    const home = join(dir, "home-deploy");
    const etc = join(dir, "etc-systemd-system");
    mkdirSync(home, { mode: 0o755 });
    mkdirSync(etc, { mode: 0o755 });
    chownSync(home, 65534, 65534);
    symlinkSync(etc, join(home, "app"));
    const { executor } = setup();
    const marker = join(dir, "step-ran");
    for (const path of [join(home, "app", "app.service"), join(home, "new", "app.service")]) {
      const outcome = await executor.run(
        plan([{ name: "s", run: `touch ${marker}` }], [{ path, mode: 0o644, content: b64("[Service]") }]),
        context(),
      );
      assert.equal(outcome.result, "failed");
      assert.equal(
        outcome.error,
        `file ${path}: directory ${home} is owned by uid 65534 with mode 0755; a user who can write there could redirect this write with a symlink`,
      );
      assert.deepEqual(outcome.steps, []);
    }
    assert.deepEqual(readdirSync(etc), [], "nothing written through the symlink");
    assert.deepEqual(readdirSync(home), ["app"], "nothing created in the other user's directory");
    assert.equal(existsSync(marker), false);
  });

  test("a sticky shared ancestor (as /tmp) is passed through our own names, never through a name another user planted", async () => {
    const dir = tempDir();
    const root = join(dir, "root");
    const shared = join(root, "shared");
    const outside = join(dir, "outside");
    mkdirSync(join(shared, "ours"), { recursive: true });
    mkdirSync(outside);
    chmodSync(shared, 0o1777);
    symlinkSync(outside, join(shared, "planted"));
    lchownSync(join(shared, "planted"), 65534, 65534);
    const { executor } = setup({ fileRoots: ["/"] });
    const ok = await executor.run(plan([], [{ path: join(shared, "ours", "x.conf"), mode: 0o644, content: b64("x") }]), context());
    assert.equal(ok.result, "succeeded", ok.error ?? "");
    const planted = join(shared, "planted", "x.conf");
    const refused = await executor.run(plan([], [{ path: planted, mode: 0o644, content: b64("x") }]), context());
    assert.equal(refused.result, "failed");
    assert.match(refused.error ?? "", /is a symlink owned by uid 65534/);
    assert.deepEqual(readdirSync(outside), [], "nothing written through the planted symlink");
  });

  for (const mode of [0o775, 0o777]) {
    test(`an ancestor directory with mode ${mode.toString(8)} (writable by others, not sticky) is refused`, async () => {
      const dir = tempDir();
      const root = join(dir, "root");
      const shared = join(root, "shared");
      mkdirSync(join(shared, "deeper"), { recursive: true });
      chmodSync(shared, mode);
      const { executor } = setup({ fileRoots: [root] });
      const path = join(shared, "deeper", "sub", "x.conf");
      const outcome = await executor.run(plan([], [{ path, mode: 0o644, content: b64("x") }]), context());
      assert.equal(outcome.result, "failed");
      const owner = process.geteuid?.() ?? 0;
      assert.equal(
        outcome.error,
        `file ${path}: directory ${shared} is owned by uid ${owner} with mode ${mode.toString(8).padStart(4, "0")}; a user who can write there could redirect this write with a symlink`,
      );
      assert.deepEqual(readdirSync(join(shared, "deeper")), [], "nothing created or written");
    });
  }

  test("steps get a minimal base env: none of the agent's tokens, credentials or sockets", async () => {
    const agentEnv = {
      NATS_TOKEN: "nats-token-secret-1",
      CONSUL_HTTP_TOKEN: "consul-token-secret-2",
      NOTIFY_SOCKET: "/run/systemd/notify",
      CREDENTIALS_DIRECTORY: "/run/credentials/fleetplan-agent.service",
      FLEETPLAN_STORE: "nats://user:pass-secret-3@127.0.0.1:4222",
    };
    const saved = Object.fromEntries(Object.keys(agentEnv).map((name) => [name, process.env[name]]));
    Object.assign(process.env, agentEnv);
    let outcome: RunOutcome;
    try {
      const { logDir } = setup();
      outcome = await createExecutor({ logDir, graceMs: 500 }).run(plan([{ name: "env", run: "env" }]), context());
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    assert.equal(outcome.result, "succeeded", outcome.error ?? "");
    const log = readFileSync(outcome.logFile, "utf8");
    for (const [name, value] of Object.entries(agentEnv))
      assert.ok(!log.includes(name) && !log.includes(value), `${name} reached the step`);
    assert.ok(log.includes(`\nPATH=${process.env.PATH ?? ""}\n`), log);
    assert.ok(log.includes("\nFLEETPLAN_PROVISIONING_ID=20250101000000\n"), log);
    const names = [...log.matchAll(/^([A-Za-z_][A-Za-z0-9_]*)=/gm)].map((m) => m[1]).sort();
    const allowed = [
      "PATH",
      "HOME",
      "LANG",
      "LC_ALL",
      "TZ",
      "USER",
      "LOGNAME",
      "PWD",
      "SHLVL",
      "_",
      "FLEETPLAN_PROVISIONING_ID",
      "FLEETPLAN_PLAN_HASH",
      "FLEETPLAN_STEP",
    ];
    assert.deepEqual(
      names.filter((name) => !allowed.includes(name as string)),
      [],
      `unexpected variables: ${names.join(" ")}`,
    );
  });

  test("an unknown file owner fails the run, naming the path and the user", async () => {
    const { dir, executor } = setup();
    const path = join(dir, "owned.conf");
    const outcome = await executor.run(
      plan([{ name: "s", run: "true" }], [{ path, mode: 0o644, owner: "no-such-user-here", content: b64("x") }]),
      context(),
    );
    assert.equal(outcome.error, `file ${path}: unknown user "no-such-user-here" (not in /etc/passwd)`);
    assert.equal(existsSync(path), false);
  });

  test("step output beyond maxLogBytes is cut with one marker and still drained", async () => {
    const { executor } = setup({ maxLogBytes: 1_000 });
    const outcome = await executor.run(
      plan([
        { name: "loud", run: "head -c 300000 /dev/zero | tr '\\0' a; echo; echo tail-of-loud" },
        { name: "after", run: "echo after-output" },
      ]),
      context(),
    );
    assert.equal(outcome.result, "succeeded", outcome.error ?? "");
    const log = readFileSync(outcome.logFile, "utf8");
    assert.equal(log.split("[output truncated]").length, 2, "exactly one marker");
    assert.equal((log.match(/a/g) ?? []).length < 1_100, true);
    assert.ok(!log.includes("tail-of-loud") && !log.includes("after-output"));
    assert.match(log, /<== \[2\/2\] after: exit code 0/);
    assert.ok(statSync(outcome.logFile).size < 2_000, `log is ${statSync(outcome.logFile).size} bytes`);
  });

  test("only the newest keepRunLogs run logs are kept", async () => {
    const { logDir, executor } = setup({ keepRunLogs: 2 });
    const outcomes: RunOutcome[] = [];
    for (let i = 0; i < 4; i++) outcomes.push(await executor.run(plan([{ name: "s", run: "echo hi" }]), context()));
    const kept = outcomes.slice(2).map((o) => o.logFile.slice(logDir.length + 1));
    assert.deepEqual(readdirSync(logDir).sort(), kept.sort());
  });

  test("secret env values and file content reach neither the log nor the outcome", async () => {
    const { dir, executor } = setup({ env: { PATH: process.env.PATH, BASE_SECRET: "base-secret-value-123" } });
    const outcome = await executor.run(
      plan(
        [{ name: "uses-secret", run: 'test -n "$API_TOKEN"; test -n "$BASE_SECRET"; exit 3', env: { API_TOKEN: "step-secret-value-456" } }],
        [{ path: join(dir, "secret.key"), mode: 0o600, content: b64("file-secret-content-789") }],
      ),
      context(),
    );
    assert.equal(outcome.result, "failed");
    assert.equal(outcome.error, 'step "uses-secret" failed: exit code 3');
    const log = readFileSync(outcome.logFile, "utf8");
    for (const secret of ["base-secret-value-123", "step-secret-value-456", "file-secret-content-789", b64("file-secret-content-789")]) {
      assert.ok(!log.includes(secret), `log contains ${secret}`);
      assert.ok(!JSON.stringify(outcome).includes(secret), `outcome contains ${secret}`);
    }
  });

  test("a step that cannot start (missing cwd) ends with exitCode null and says why in the log", async () => {
    const { dir, executor } = setup({ cwd: "/nonexistent-fleetplan-dir" });
    const marker = join(dir, "second-ran");
    const outcome = await executor.run(
      plan([
        { name: "first", run: "true" },
        { name: "second", run: `touch ${marker}` },
      ]),
      context(),
    );
    assert.equal(outcome.error, 'step "first" failed: could not start');
    assert.deepEqual(
      outcome.steps.map((s) => [s.exitCode, s.signal, s.timedOut]),
      [[null, null, false]],
    );
    assert.equal(existsSync(marker), false);
    assert.match(readFileSync(outcome.logFile, "utf8"), /could not start bash in \/nonexistent-fleetplan-dir: ENOENT/);
  });

  test("invalid options are refused, naming the option", () => {
    assert.throws(() => createExecutor({ logDir: "relative" }), /logDir: an absolute path, got "relative"/);
    assert.throws(() => createExecutor({ logDir: "/x", fileRoots: [] }), /fileRoots/);
    assert.throws(() => createExecutor({ logDir: "/x", maxLogBytes: 0 }), /maxLogBytes/);
  });
});
