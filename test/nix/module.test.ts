// The NixOS module: it parses, and, evaluated against a small stand-in for
// nixpkgs' lib (nixpkgs is not available here), it declares the documented
// options and produces a service that matches systemd/fleetplan-agent.service.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const modulePath = join(root, "nix", "module.nix");
const unitPath = join(root, "systemd", "fleetplan-agent.service");

const hasNix = spawnSync("nix-instantiate", ["--version"]).error === undefined;
const skip = hasNix ? false : "nix-instantiate is not installed";

const pkg = "/nix/store/00000000000000000000000000000000-fleetplan-0.1.0";

// Evaluates the module with the given option values. The stub lib implements
// only what the module uses, with the same meaning as nixpkgs' lib; mkIf is
// applied directly instead of through the module system's merge.
const harness = `
{ modulePath, userJSON }:
let
  user = builtins.fromJSON userJSON;
  lib = rec {
    mkOption = attrs: attrs // { _isOption = true; };
    mkEnableOption = name: { _isOption = true; default = false; type = types.bool; description = "Whether to enable " + name + "."; };
    mkIf = cond: content: if cond then content else { };
    types = {
      bool = { name = "bool"; }; str = { name = "str"; }; package = { name = "package"; };
      anything = { name = "anything"; };
      nullOr = t: { name = "nullOr " + t.name; };
      attrsOf = t: { name = "attrsOf " + t.name; };
    };
    optional = c: x: if c then [ x ] else [ ];
    optionalAttrs = c: a: if c then a else { };
    hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
    removePrefix = p: s: if hasPrefix p s then builtins.substring (builtins.stringLength p) (builtins.stringLength s) s else s;
    splitString = sep: s: builtins.filter builtins.isString (builtins.split sep s);
    last = l: builtins.elemAt l (builtins.length l - 1);
    init = l: builtins.genList (builtins.elemAt l) (builtins.length l - 1);
    concatStringsSep = builtins.concatStringsSep;
    toInt = s: if builtins.match "[0-9]+" s != null then builtins.fromJSON s else throw "toInt: not an integer: " + s;
    filterAttrs = pred: set: builtins.listToAttrs (builtins.concatMap
      (n: if pred n set.\${n} then [ { name = n; value = set.\${n}; } ] else [ ]) (builtins.attrNames set));
  };
  pkgs = {
    bash = "/nix/store/00000000000000000000000000000000-bash";
    nodejs_20 = "/nix/store/00000000000000000000000000000000-nodejs-20";
    callPackage = path: args: "/nix/store/00000000000000000000000000000000-callPackage-" + baseNameOf path;
    writeText = name: text: { outPath = "/nix/store/00000000000000000000000000000000-" + name; inherit name text; };
  };
  decls = module.options.services.fleetplan-agent;
  cfg = builtins.mapAttrs (n: o:
    if user ? \${n} then user.\${n}
    else if o ? default then o.default
    else throw "option services.fleetplan-agent.\${n} is used but not defined") decls;
  module = import modulePath { config = { services.fleetplan-agent = cfg; }; inherit lib pkgs; };
  out = module.config;
  etc = out.environment.etc or { };
in {
  options = builtins.mapAttrs (n: o: { type = o.type.name; hasDefault = o ? default; hasDescription = o ? description; }) decls;
  defaults = builtins.mapAttrs (n: o: o.default) (lib.filterAttrs (n: o: o ? default) decls);
  assertions = out.assertions or [ ];
  warnings = out.warnings or [ ];
  service = out.systemd.services.fleetplan-agent or null;
  tmpfiles = out.systemd.tmpfiles.rules or [ ];
  firewallPorts = out.networking.firewall.allowedTCPPorts or [ ];
  etcConfig = if etc ? "fleetplan/agent.json" then etc."fleetplan/agent.json".source.text else null;
  etcSource = if etc ? "fleetplan/agent.json" then etc."fleetplan/agent.json".source.outPath else null;
}
`;

type Service = {
  serviceConfig: Record<string, unknown>;
  environment: Record<string, string>;
  wantedBy: string[];
  wants: string[];
  after: string[];
  path: string[];
  restartIfChanged: boolean;
  unitConfig: Record<string, unknown>;
};

type Evaluation = {
  options: Record<string, { type: string; hasDefault: boolean; hasDescription: boolean }>;
  defaults: Record<string, unknown>;
  assertions: Array<{ assertion: boolean; message: string }>;
  warnings: string[];
  service: Service | null;
  tmpfiles: string[];
  firewallPorts: number[];
  etcConfig: string | null;
  etcSource: string | null;
};

// Evaluate the module with these option values and return what it defines.
const evaluate = (user: Record<string, unknown>): Evaluation => {
  const dir = mkdtempSync(join(tmpdir(), "fleetplan-nix-"));
  try {
    const harnessPath = join(dir, "harness.nix");
    writeFileSync(harnessPath, harness);
    const result = spawnSync(
      "nix-instantiate",
      ["--eval", "--strict", "--json", harnessPath, "--argstr", "modulePath", modulePath, "--argstr", "userJSON", JSON.stringify(user)],
      { encoding: "utf8" },
    );
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout) as Evaluation;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

// The [Service] section of the Debian unit as key -> values.
const unitService = (): Map<string, string[]> => {
  const service = new Map<string, string[]>();
  const text = readFileSync(unitPath, "utf8");
  const body = /^\[Service\]$([\s\S]*?)(?=^\[)/m.exec(text)?.[1] ?? "";
  for (const line of body.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) service.set(m[1]!, [...(service.get(m[1]!) ?? []), m[2]!]);
  }
  return service;
};

// Render a Nix serviceConfig value the way NixOS writes it into the unit.
const render = (value: unknown): string[] => {
  if (Array.isArray(value)) return value.flatMap(render);
  if (value === true) return ["yes"];
  if (value === false) return ["no"];
  return [String(value)];
};

const enabled = { enable: true, package: pkg, store: "nats://nats.example.org:4222" };

test("nix-instantiate parses the module", { skip }, () => {
  const result = spawnSync("nix-instantiate", ["--parse", modulePath], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
});

test("the module declares the documented options with their defaults", { skip }, () => {
  const { options, defaults, service } = evaluate({});
  assert.deepEqual(Object.keys(options).sort(), [
    "enable",
    "hostname",
    "metricsListen",
    "nodeKeyFile",
    "openFirewall",
    "package",
    "settings",
    "stateDir",
    "store",
    "storeCredentialsFile",
    "trustFile",
  ]);
  for (const [name, o] of Object.entries(options)) assert.ok(o.hasDescription, `${name} has no description`);
  assert.deepEqual(defaults, {
    enable: false,
    hostname: null,
    metricsListen: "127.0.0.1:9465",
    nodeKeyFile: "/etc/fleetplan/node.key",
    openFirewall: false,
    package: "/nix/store/00000000000000000000000000000000-callPackage-package.nix",
    settings: {},
    stateDir: "/var/lib/fleetplan",
    storeCredentialsFile: null,
    trustFile: "/etc/fleetplan/trust",
  });
  assert.equal(service, null, "a disabled module defines no service");
});

test("the service mirrors systemd/fleetplan-agent.service", { skip }, () => {
  const { service, assertions, warnings } = evaluate(enabled);
  assert.ok(service);
  assert.deepEqual(
    assertions.filter((a) => !a.assertion),
    [],
  );
  assert.deepEqual(warnings, []);
  const unit = unitService();
  const mirrored = [
    "Type",
    "NotifyAccess",
    "WatchdogSec",
    "Restart",
    "RestartSec",
    "StateDirectory",
    "StateDirectoryMode",
    "LogsDirectory",
    "LogsDirectoryMode",
    "ConfigurationDirectory",
    "ConfigurationDirectoryMode",
    "LoadCredential",
    "KillMode",
    "TimeoutStopSec",
    "OOMPolicy",
    "LimitCORE",
    "NoNewPrivileges",
    "UMask",
    "EnvironmentFile",
  ];
  for (const key of mirrored) {
    assert.ok(unit.has(key), `the unit no longer sets ${key}=`);
    assert.deepEqual(render(service.serviceConfig[key]), unit.get(key), `serviceConfig.${key}`);
  }
  // The same node flags and arguments as the unit, with the package's node and agent entry point.
  const [unitExec] = unit.get("ExecStart") ?? [];
  const m = /^\/usr\/bin\/node ((?:-\S+ )*)\/usr\/bin\/fleetplan-agent (.*)$/.exec(unitExec ?? "");
  assert.ok(m, `unexpected ExecStart in the unit: ${unitExec}`);
  assert.equal(
    service.serviceConfig.ExecStart,
    `/nix/store/00000000000000000000000000000000-nodejs-20/bin/node ${m[1]}${pkg}/lib/node_modules/fleetplan/agent/bin.mjs ${m[2]}`,
  );
  assert.deepEqual(service.wantedBy, ["multi-user.target"]);
  assert.deepEqual(service.wants, ["network-online.target"]);
  assert.deepEqual(service.after, ["network-online.target", "time-sync.target"]);
  assert.equal(service.unitConfig.StartLimitIntervalSec, 0);
  assert.equal(service.restartIfChanged, false);
  assert.ok(service.path.includes("/run/current-system/sw"));
});

test("typed options reach the agent as FLEETPLAN_* variables, settings as agent.json", { skip }, () => {
  const settings = { some: { nested: ["value", 1, true] } };
  const { service, etcConfig, etcSource } = evaluate({ ...enabled, hostname: "web-01", settings });
  assert.ok(service);
  assert.deepEqual(service.environment, {
    FLEETPLAN_HOSTNAME: "web-01",
    FLEETPLAN_STORE: "nats://nats.example.org:4222",
    FLEETPLAN_STATE_DIR: "/var/lib/fleetplan",
    FLEETPLAN_METRICS_LISTEN: "127.0.0.1:9465",
  });
  assert.deepEqual(JSON.parse(etcConfig ?? "null"), settings);
  assert.match(etcSource ?? "", /^\/nix\/store\//);

  const noHostname = evaluate(enabled).service;
  assert.ok(noHostname);
  assert.equal("FLEETPLAN_HOSTNAME" in noHostname.environment, false, "null hostname: agent uses the kernel hostname");
});

test("openFirewall opens the metrics port, and warns when it listens on loopback", { skip }, () => {
  const open = evaluate({ ...enabled, openFirewall: true, metricsListen: "0.0.0.0:9500" });
  assert.deepEqual(open.firewallPorts, [9500]);
  assert.deepEqual(open.warnings, []);
  assert.deepEqual(evaluate({ ...enabled, metricsListen: "[::]:9501", openFirewall: true }).firewallPorts, [9501]);
  assert.deepEqual(evaluate(enabled).firewallPorts, []);
  const loopback = evaluate({ ...enabled, openFirewall: true });
  assert.deepEqual(loopback.firewallPorts, [9465]);
  assert.equal(loopback.warnings.length, 1);
});

test("a node key inside the Nix store is refused", { skip }, () => {
  const { assertions } = evaluate({ ...enabled, nodeKeyFile: "/nix/store/abc-node.key" });
  const failed = assertions.filter((a) => !a.assertion);
  assert.equal(failed.length, 1);
  assert.match(failed[0]!.message, /nodeKeyFile/);
});

test("a state directory outside /var/lib is created by tmpfiles with mode 0700", { skip }, () => {
  const { service, tmpfiles } = evaluate({ ...enabled, stateDir: "/srv/fleetplan" });
  assert.ok(service);
  assert.equal("StateDirectory" in service.serviceConfig, false);
  assert.deepEqual(tmpfiles, ["d /srv/fleetplan 0700 root root -"]);
  assert.equal(service.environment.FLEETPLAN_STATE_DIR, "/srv/fleetplan");
});

test("the store credentials are a systemd credential named in agent.json, never copied into the store", { skip }, () => {
  const settings = { storeOptions: { inboxPrefix: "fp.inbox.web-01" } };
  const { service, etcConfig, assertions } = evaluate({ ...enabled, storeCredentialsFile: "/etc/fleetplan/store.creds", settings });
  assert.ok(service);
  assert.deepEqual(
    assertions.filter((a) => !a.assertion),
    [],
  );
  assert.deepEqual(service.serviceConfig.LoadCredential, [
    "node.key:/etc/fleetplan/node.key",
    "trust:/etc/fleetplan/trust",
    "store.creds:/etc/fleetplan/store.creds",
  ]);
  assert.deepEqual(JSON.parse(etcConfig ?? "null"), {
    storeOptions: { inboxPrefix: "fp.inbox.web-01", credsFile: "/run/credentials/fleetplan-agent.service/store.creds" },
  });
  const inStore = evaluate({ ...enabled, storeCredentialsFile: "/nix/store/abc-web-01.creds" }).assertions.filter((a) => !a.assertion);
  assert.equal(inStore.length, 1);
  assert.match(inStore[0]!.message, /storeCredentialsFile/);
  assert.equal(JSON.parse(evaluate(enabled).etcConfig ?? "null").storeOptions, undefined, "no credentials: agent.json unchanged");
});
