// The heartbeat example units: systemd-analyze accepts the service and its timer without a finding,
// and the service runs `fleetplan heartbeat` with an --expires longer than several timer periods.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseDuration } from "../../shared/duration.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const service = readFileSync(join(root, "systemd", "fleetplan-heartbeat.service"), "utf8");
const timer = readFileSync(join(root, "systemd", "fleetplan-heartbeat.timer"), "utf8");
const skip = spawnSync("systemd-analyze", ["--version"]).error === undefined ? false : "systemd-analyze is not installed";

test("systemd-analyze verify accepts the heartbeat service and timer", { skip, timeout: 30_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "fleetplan-heartbeat-unit-"));
  try {
    // The binary must exist for verify: /bin/true stands in for the installed fleetplan CLI.
    writeFileSync(join(dir, "fleetplan-heartbeat.service"), service.replace("ExecStart=/usr/bin/fleetplan ", "ExecStart=/bin/true "));
    writeFileSync(join(dir, "fleetplan-heartbeat.timer"), timer);
    const result = spawnSync("systemd-analyze", ["verify", "--man=no", "fleetplan-heartbeat.service", "fleetplan-heartbeat.timer"], {
      cwd: dir,
      encoding: "utf8",
    });
    const findings = `${result.stdout}${result.stderr}`.split("\n").filter((l) => l.includes("fleetplan-heartbeat"));
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(findings, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("records outlast several timer periods", { timeout: 10_000 }, () => {
  const expires = /heartbeat --all --expires (\S+)/.exec(service)?.[1];
  const period = /^OnUnitActiveSec=(\S+)$/m.exec(timer)?.[1];
  assert.ok(expires && period, "ExecStart runs `fleetplan heartbeat --all --expires D`; the timer sets OnUnitActiveSec");
  assert.ok(parseDuration(expires, "--expires") >= 3 * parseDuration(period, "OnUnitActiveSec"));
});
