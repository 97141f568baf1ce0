// The systemd unit: systemd-analyze accepts it without a warning, and it keeps
// the contract the agent is written against (notify, watchdog, credentials,
// stop semantics) without sandboxing that would break provisioning.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const unitPath = join(root, "systemd", "fleetplan-agent.service");
const envExamplePath = join(root, "systemd", "fleetplan-agent.env.example");
const unitText = readFileSync(unitPath, "utf8");

const hasSystemdAnalyze = spawnSync("systemd-analyze", ["--version"]).error === undefined;
const skipVerify = hasSystemdAnalyze ? false : "systemd-analyze is not installed";

type Unit = Map<string, Array<[key: string, value: string]>>;

// Parse a unit file into sections of (key, value) pairs, keeping repeats in order.
const parseUnit = (text: string): Unit => {
  const unit: Unit = new Map();
  let section: Array<[string, string]> | undefined;
  for (const raw of text.replace(/\\\n/g, " ").split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = [];
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf("=");
    assert.ok(section !== undefined && eq > 0, `unparsable unit line: ${raw}`);
    section.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return unit;
};

// Every value assigned to section.key, in order.
const valuesOf = (unit: Unit, section: string, key: string): string[] =>
  (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);

// The one value of section.key; fails if it is missing or assigned twice.
const singleValue = (unit: Unit, section: string, key: string): string => {
  const values = valuesOf(unit, section, key);
  assert.equal(values.length, 1, `[${section}] ${key}= is set ${values.length} times`);
  return values[0]!;
};

// Run `systemd-analyze verify` on a copy of the unit whose ExecStart binary
// exists, and return its exit status and every output line about the unit.
const verifyUnit = (text: string): { status: number | null; findings: string[] } => {
  const dir = mkdtempSync(join(tmpdir(), "fleetplan-unit-"));
  try {
    const fakeAgent = join(dir, "fleetplan-agent");
    writeFileSync(fakeAgent, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const execStart = /^ExecStart=\/usr\/bin\/node --max-semi-space-size=1 --optimize-for-size \/usr\/bin\/fleetplan-agent /m;
    assert.match(text, execStart, "ExecStart must run /usr/bin/fleetplan-agent with node and its V8 flags");
    const copy = join(dir, "fleetplan-agent.service");
    writeFileSync(copy, text.replace(execStart, `ExecStart=${fakeAgent} `));
    const result = spawnSync("systemd-analyze", ["verify", "--man=no", copy], {
      encoding: "utf8",
      env: { ...process.env, SYSTEMD_LOG_COLOR: "0", SYSTEMD_PAGER: "cat" },
    });
    assert.equal(result.error, undefined);
    const findings = `${result.stdout}\n${result.stderr}`
      .split("\n")
      .filter((line) => line.includes("fleetplan-agent") || line.includes(dir));
    return { status: result.status, findings };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

test("systemd-analyze verify accepts the unit with no warnings", { skip: skipVerify }, () => {
  const { status, findings } = verifyUnit(unitText);
  assert.deepEqual(findings, []);
  assert.equal(status, 0);
});

test("the verify check reports a broken unit (control for the test above)", { skip: skipVerify }, () => {
  const broken = unitText.replace(/^KillMode=mixed$/m, "KillMode=mixd").replace(/^\[Service\]$/m, "[Service]\nNotifyAcess=all");
  const { findings } = verifyUnit(broken);
  assert.ok(
    findings.some((line) => line.includes("mixd")),
    findings.join("\n"),
  );
  assert.ok(
    findings.some((line) => line.includes("NotifyAcess")),
    findings.join("\n"),
  );
});

test("the unit sets the directives the agent is written against", () => {
  const unit = parseUnit(unitText);
  const expected: Record<string, string> = {
    Type: "notify",
    NotifyAccess: "all",
    WatchdogSec: "30",
    Restart: "always",
    RestartSec: "5",
    ExecStart: "/usr/bin/node --max-semi-space-size=1 --optimize-for-size /usr/bin/fleetplan-agent run --config /etc/fleetplan/agent.json",
    StateDirectory: "fleetplan",
    StateDirectoryMode: "0700",
    LogsDirectory: "fleetplan",
    LogsDirectoryMode: "0700",
    ConfigurationDirectory: "fleetplan",
    KillMode: "mixed",
    TimeoutStopSec: "60",
  };
  for (const [key, value] of Object.entries(expected)) {
    assert.equal(singleValue(unit, "Service", key), value, `[Service] ${key}=`);
  }
  assert.deepEqual(valuesOf(unit, "Service", "LoadCredential").sort(), ["node.key:/etc/fleetplan/node.key", "trust:/etc/fleetplan/trust"]);
  assert.equal(singleValue(unit, "Install", "WantedBy"), "multi-user.target");
});

test("the unit does not sandbox away what provisioning needs", () => {
  const unit = parseUnit(unitText);
  // Each of these would also apply to plan steps: a private mount namespace
  // hides their mounts from the host, a read-only /usr or /etc breaks package
  // installs, a non-root user or dropped capabilities break everything.
  const forbidden = [
    "User",
    "Group",
    "DynamicUser",
    "PrivateUsers",
    "PrivateNetwork",
    "PrivateTmp",
    "PrivateDevices",
    "PrivateMounts",
    "MountFlags",
    "ProtectSystem",
    "ProtectHome",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "ProtectClock",
    "ProtectHostname",
    "ProtectProc",
    "ProcSubset",
    "ReadOnlyPaths",
    "ReadWritePaths",
    "InaccessiblePaths",
    "TemporaryFileSystem",
    "BindPaths",
    "BindReadOnlyPaths",
    "RootDirectory",
    "RootImage",
    "CapabilityBoundingSet",
    "SystemCallFilter",
    "RestrictSUIDSGID",
    "RestrictNamespaces",
    "RestrictAddressFamilies",
    "MemoryDenyWriteExecute",
    "IPAddressDeny",
  ];
  for (const key of forbidden) {
    assert.deepEqual(valuesOf(unit, "Service", key), [], `[Service] ${key}= must not be set`);
  }
  // Steps may rely on setuid helpers (sudo -u, su) and inherit the umask.
  assert.ok(["no", "false", "0"].includes(singleValue(unit, "Service", "NoNewPrivileges")));
  assert.equal(singleValue(unit, "Service", "UMask"), "0022");
});

test("the env example only names variables the agent reads", () => {
  const known = new Set([
    "FLEETPLAN_HOSTNAME",
    "FLEETPLAN_STORE",
    "FLEETPLAN_NODE_KEY",
    "FLEETPLAN_TRUST",
    "FLEETPLAN_STATE_DIR",
    "FLEETPLAN_LOG_DIR",
    "FLEETPLAN_METRICS_LISTEN",
  ]);
  const unit = parseUnit(unitText);
  assert.deepEqual(valuesOf(unit, "Service", "EnvironmentFile"), ["-/etc/fleetplan/agent.env"]);
  const assigned = [...readFileSync(envExamplePath, "utf8").matchAll(/^#?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!);
  assert.ok(assigned.length > 0);
  for (const name of assigned) assert.ok(known.has(name), `unknown variable ${name}`);
});
