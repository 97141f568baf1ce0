import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..");

/** Command lines of every live process that mentions `needle`. */
const processesMentioning = (needle: string): string[] =>
  readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .flatMap((pid) => {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
        return cmd.includes(needle) ? [cmd] : [];
      } catch {
        return [];
      }
    });

// The README's first command must keep telling the story it promises: five agents converge,
// one changed plan is applied while four are skipped, and the attacks are refused.
test("the demo converges five agents, refuses the attacks and leaves no process behind", { timeout: 120_000 }, async () => {
  const { stdout } = await run("node", [join(ROOT, "coordinator", "demo", "bin.mjs")], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  const dir = /Files: (\S+)/.exec(stdout)?.[1];
  assert.ok(dir, "the demo says where its files are");
  try {
    assert.match(stdout, /^\s+5 succeeded$/m, "first push: all five succeed");
    assert.equal(stdout.match(/5 servers: 5 converged/g)?.length, 2, "status shows all five converged, before and after the attacks");
    assert.match(stdout, /4 skipped, 1 succeeded/, "second push: only the changed server gets a new id");
    assert.match(stdout, /web-1: envelopes accepted 1, bad_signature 1 · runs succeeded 1$/m, "tampered envelope refused, nothing ran");
    assert.match(stdout, /db-1: envelopes accepted 2, stale 1 · runs succeeded 2$/m, "replayed old envelope refused as stale");
    assert.match(stdout, /web-2: envelopes accepted 1, duplicate 1 · runs succeeded 1$/m, "redelivery is a benign duplicate");
    assert.deepEqual(processesMentioning(dir), [], "no demo process is left running");
    assert.doesNotMatch(stdout, /\x1b\[/, "no terminal escape codes when stdout is not a terminal");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
