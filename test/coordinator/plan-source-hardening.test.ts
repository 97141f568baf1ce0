// Plan sources are what the coordinator signs (issue 12 item 1): a symlink in the plans dir once
// got the admin private key sealed for a host, and a link to /dev/zero grew the coordinator to
// gigabytes. Only regular files are read, bounded before reading, and key material is refused.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadPlanDir, loadPlanFile } from "../../coordinator/plan-source.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { writeNewKey } from "../../shared/key-files.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { DEFAULT_LIMITS } from "../../shared/wire.ts";

await sodiumReady();
const dir = mkdtempSync(join(tmpdir(), "fleetplan-plan-hardening-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const keys = writeNewKey(join(dir, "keys"), "admin");

const refused = (reason: string, pattern: RegExp) => (e: unknown) =>
  e instanceof FleetplanError && e.reason === reason && pattern.test(e.message);

describe("plan sources", { timeout: 20_000 }, () => {
  it("a symlink to the admin private key is refused, not sealed", () => {
    const d = mkdtempSync(join(dir, "plans-"));
    symlinkSync(keys.privatePath, join(d, "host-a.sh"));
    assert.throws(() => loadPlanDir(d, ["host-a"]), refused("insecure_key_file", /host-a\.sh is a symbolic link/));
  });

  it("a symlink to /dev/zero is refused before anything is read", () => {
    const d = mkdtempSync(join(dir, "plans-"));
    symlinkSync("/dev/zero", join(d, "host-a.sh"));
    assert.throws(() => loadPlanFile(join(d, "host-a.sh")), refused("insecure_key_file", /symbolic link/));
  });

  it("a FIFO or a directory is refused as not a regular file, without blocking", () => {
    const d = mkdtempSync(join(dir, "plans-"));
    execFileSync("mkfifo", [join(d, "fifo.sh")]);
    assert.throws(() => loadPlanFile(join(d, "fifo.sh")), refused("invalid_argument", /fifo\.sh is not a regular file/));
    mkdirSync(join(d, "dir.json"));
    assert.throws(() => loadPlanFile(join(d, "dir.json")), refused("invalid_argument", /dir\.json is not a regular file/));
  });

  it("a plan file over the agents' size limit is refused from its size, before reading", () => {
    const d = mkdtempSync(join(dir, "plans-"));
    const big = join(d, "host-a.sh");
    writeFileSync(big, "");
    truncateSync(big, DEFAULT_LIMITS.maxPlanBytes + 1); // sparse: costs no disk
    const before = process.memoryUsage().rss;
    assert.throws(() => loadPlanFile(big), refused("too_large", /over the limit of 33554432/));
    assert.ok(process.memoryUsage().rss - before < 16 * 1024 * 1024, "the file was not read into memory");
  });

  it("a plan holding fleetplan private key material is refused: as script text and as file content", () => {
    const d = mkdtempSync(join(dir, "plans-"));
    const key = `fleetplan-admin-ed25519-private AAAA`;
    writeFileSync(join(d, "a.sh"), `cat > /root/k <<EOF\n${key}\nEOF\n`);
    assert.throws(() => loadPlanFile(join(d, "a.sh")), refused("invalid_argument", /private key material/));
    const plan = {
      kind: "fleetplan/plan",
      v: 1,
      steps: [],
      files: [{ path: "/etc/x", mode: "0600", content: Buffer.from("fleetplan-node-x25519-private QUJD").toString("base64") }],
    };
    writeFileSync(join(d, "b.json"), JSON.stringify(plan));
    assert.throws(() => loadPlanFile(join(d, "b.json")), refused("invalid_argument", /private key material/));
  });
});
