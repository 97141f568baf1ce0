import { closeSync, mkdirSync, openSync, readSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { didYouMean, ExitCode, formatCommandHelp, parseCountFlag, parseFlags, processIo, reportError } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import { parseDuration } from "../../shared/duration.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { createLogger } from "../../shared/log.ts";
import { VERSION } from "../../shared/version.ts";
import { isHttpUrl, normalizeCoordinatorConfig } from "../config.ts";
import type { CoordinatorDb } from "../db.ts";
import { COMMAND_HELP, formatGroupHelp } from "./help.ts";
// Command modules (SQLite, nats.js, libsodium, …) are imported when their command runs: --help and
// --version load none of them.

const HELP = `fleetplan ${VERSION} — push signed, encrypted provisioning plans to a fleet and prove convergence

Usage:
  fleetplan init                                   database + admin key at --admin-key (if missing); prints the agents' trust file
                 [--store URL] [--creds FILE] [--tls-ca/--tls-cert/--tls-key FILE] [--prometheus URL] [--notify-prefix P]
                 [--replicas N]: remembered in fleetplan.json beside the database, so later commands need no flags or env
                 ($FLEETPLAN_PROMETHEUS and the other env vars, and flags, still override it)
  fleetplan config show                            every setting in force and where it came from (flag, env, file, default)
  fleetplan keygen admin --out DIR                 DIR/admin.key (0600) and DIR/admin.pub
  fleetplan trust [--threshold K]                  trust file for the configured admin key(s)
  fleetplan trust rotate --root TRUSTFILE [--add KEY.pub ...] [--remove KEY.pub|KEY_ID ...] [--threshold K] [--expires 365d]
                 publish the next trust version to the store; --admin-key: enough keys of the current AND the new set
  fleetplan trust show                             the trust chain in the store, verified version by version
  fleetplan heartbeat [--servers a,b | --group G | --all] [--expires 1h]   signed freshness records (run from a timer)
  fleetplan seal --plan FILE --target HOST --node-key PUB --id N [--expires 24h] --out FILE
  fleetplan server add HOST --node-key PUB [--metrics URL] [--ssh user@host:port] [--group G] [--not-bootstrapped] [--tag k=v ...] [--allow-shared-key]
  fleetplan server set HOST [--node-key PUB] [--metrics URL] [--ssh user@host:port] [--group G] [--tag k=v ...] [--untag k ...]
  fleetplan server list [--group G] | remove HOST | import FILE (JSON array, as list --json prints, or CSV)
  fleetplan server remove HOST --purge [--creds-dir DIR]   decommission: also its store keys, and its credentials in DIR
  fleetplan server list --prometheus-sd [--group G] [--out FILE]   Prometheus file_sd targets labelled host (and group)
  fleetplan server pending | accept HOST [--group G] [--tag k=v ...] [--fingerprint KEYID] | reject HOST
                 enrollment: announcements of new agents (fleetplan-agent enroll); accept adds one to the inventory
  fleetplan push --plan FILE (--servers a,b | --group G | --all)
  fleetplan push --plans DIR [--servers a,b | --group G | --all]   HOST.json or HOST.sh per server; default all
                 [--dry-run] [--force] [--wait [--timeout 10m]] [--expires 24h] [--concurrency 256]
                 [--via store|ssh] [--ssh-config FILE] [--remote-agent CMD] [--prometheus URL] [--max-age 30m]
                 --via store (default): the store, SSH for servers not yet bootstrapped; ssh: every target over SSH
                 --prometheus/--max-age: where and how fresh convergence is read, to skip converged targets
                 targets: --servers takes names and globs ('web-*'), --group several (web,db); --where k=v (repeatable, AND)
                 narrows any of them by server tags
  fleetplan push ... (--waves 1,10%,50%,100% | --batch N|P%) [--canary HOST,...] [--max-failures N|P%]
                 [--wave-timeout 10m] [--gate-query PROMQL ...] [--revert-on-failure]
                 a rollout: wave by wave, each waited on; pauses (exit 5) on an exhausted error budget or a gate that
                 does not hold (an empty answer never does); --revert-on-failure puts back the previous plans
  fleetplan rollout list | show ID | resume ID | abort ID [--no-revert]
  fleetplan push ... --stage --trust FILE          two-person rule: seal and sign with the given admin key(s), below the
                 threshold of the agents' trust FILE; keep it in the database as staged change S-N, publish nothing
  fleetplan staged [--json] | staged show ID | staged discard ID   what waits: signers, expiry, hosts, plan changes
  fleetplan approve ID --admin-key OTHER.key [--wait [--timeout 10m]]   add a second admin's signature; publish at the threshold
  fleetplan status [--servers a,b | --group G | --all] [--prometheus URL] [--max-age 30m] [--textfile FILE.prom] [--wide]
                 --textfile: write every host's expected plan as fleetplan_expected_plan_info (node_exporter textfile)
  fleetplan history [HOST] [--limit 50]
  fleetplan logs HOST [--id N]                     the failing step's output tail of HOST's last failed run (or id N), sealed to the admin key
  fleetplan store init [--replicas N]              create or update the NATS buckets (run once before agents start)
  fleetplan store credentials --out DIR [--rotate] [--consul]
                 NATS credentials per inventory host + the coordinator's, and nats-server.conf (--consul: ACL policies)

Global flags:
  --db FILE          coordinator database (default ./fleetplan.db, or $FLEETPLAN_DB)
  --store URL        nats://host:port[,nats://...] or consul://host:port ($FLEETPLAN_STORE)
  --admin-key FILE   signing key, repeat for k-of-n (default: keys/admin.key beside the db, or $FLEETPLAN_ADMIN_KEY a,b)
  --replicas N       KV replicas when this command creates the buckets (NATS cluster; default 1, or $FLEETPLAN_REPLICAS)
  --notify-prefix P  subject prefix of the plan bucket's notices, as agents' storeOptions.notifyPrefix
                     (default fleetplan.notify, or $FLEETPLAN_NOTIFY_PREFIX; store init and store credentials)
  --creds FILE       NATS credentials (coordinator.creds from \`store credentials\`; or $FLEETPLAN_CREDS)
  --tls-ca FILE      CA certificate of the store's TLS (or $FLEETPLAN_TLS_CA); --tls-cert FILE --tls-key FILE: client
                     certificate and key (or $FLEETPLAN_TLS_CERT, $FLEETPLAN_TLS_KEY)
  --json             machine-readable output (push: one JSON object per line, the last a summary)
Help on one command: fleetplan help CMD, fleetplan CMD --help (fleetplan server --help lists its subcommands)
Exit codes: 0 ok / all converged, 1 failed or not converged, 2 usage or input error,
            3 envelope rejected, 4 store, host or Prometheus unreachable, 5 rollout paused (or reverted),
            130 push --wait interrupted. A single-value flag given twice is refused.
`;

const FLAGS = {
  db: { type: "string" },
  store: { type: "string" },
  "admin-key": { type: "string", multiple: true },
  replicas: { type: "string" },
  json: { type: "boolean" },
  "notify-prefix": { type: "string" },
  creds: { type: "string" },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
  out: { type: "string" },
  plan: { type: "string" },
  plans: { type: "string" },
  target: { type: "string" },
  "node-key": { type: "string" },
  id: { type: "string" },
  expires: { type: "string" },
  threshold: { type: "string" },
  metrics: { type: "string" },
  ssh: { type: "string" },
  group: { type: "string" },
  "not-bootstrapped": { type: "boolean" },
  servers: { type: "string" },
  all: { type: "boolean" },
  "dry-run": { type: "boolean" },
  force: { type: "boolean" },
  wait: { type: "boolean" },
  timeout: { type: "string" },
  concurrency: { type: "string" },
  via: { type: "string" },
  "ssh-config": { type: "string" },
  "remote-agent": { type: "string" },
  prometheus: { type: "string" },
  "max-age": { type: "string" },
  limit: { type: "string" },
  rotate: { type: "boolean" },
  consul: { type: "boolean" },
  "prometheus-sd": { type: "boolean" },
  textfile: { type: "string" },
  purge: { type: "boolean" },
  "creds-dir": { type: "string" },
  waves: { type: "string" },
  batch: { type: "string" },
  canary: { type: "string" },
  "max-failures": { type: "string" },
  "wave-timeout": { type: "string" },
  "gate-query": { type: "string", multiple: true },
  "revert-on-failure": { type: "boolean" },
  tag: { type: "string", multiple: true },
  where: { type: "string", multiple: true },
  "no-revert": { type: "boolean" },
  fingerprint: { type: "string" },
  stage: { type: "boolean" },
  trust: { type: "string" },
  add: { type: "string", multiple: true },
  remove: { type: "string", multiple: true },
  root: { type: "string" },
  untag: { type: "string", multiple: true },
  "allow-shared-key": { type: "boolean" },
  wide: { type: "boolean" },
} as const;

const GLOBAL_FLAGS = new Set([
  "db",
  "store",
  "admin-key",
  "replicas",
  "notify-prefix",
  "creds",
  "tls-ca",
  "tls-cert",
  "tls-key",
  "json",
  "help",
  "version",
]);
const TARGET_FLAGS = ["servers", "group", "all", "where"];
const ROLLOUT_FLAGS = ["waves", "batch", "canary", "max-failures", "wave-timeout", "gate-query", "revert-on-failure"];

/** What each command takes beside the global flags: anything else is refused, never ignored (exported for the help test). */
export const COMMANDS: Record<string, { flags: readonly string[]; args: number }> = {
  init: { flags: ["prometheus"], args: 0 },
  "config show": { flags: [], args: 0 },
  keygen: { flags: ["out"], args: 1 },
  trust: { flags: ["threshold"], args: 0 },
  "trust rotate": { flags: ["add", "remove", "threshold", "root", "expires"], args: 0 },
  "trust show": { flags: [], args: 0 },
  heartbeat: { flags: [...TARGET_FLAGS, "expires"], args: 0 },
  seal: { flags: ["plan", "target", "node-key", "id", "expires", "out"], args: 0 },
  "server add": { flags: ["node-key", "metrics", "ssh", "group", "not-bootstrapped", "tag", "allow-shared-key"], args: 1 },
  "server set": { flags: ["node-key", "metrics", "ssh", "group", "tag", "untag", "allow-shared-key"], args: 1 },
  "server list": { flags: ["group", "prometheus-sd", "out"], args: 0 },
  "server remove": { flags: ["purge", "creds-dir"], args: 1 },
  "server import": { flags: ["allow-shared-key"], args: 1 },
  "server pending": { flags: [], args: 0 },
  "server accept": { flags: ["group", "tag", "fingerprint", "allow-shared-key"], args: 1 },
  "server reject": { flags: [], args: 1 },
  // push checks its own positionals.
  push: {
    flags: [
      "plan",
      "plans",
      ...TARGET_FLAGS,
      "dry-run",
      "force",
      "wait",
      "timeout",
      "expires",
      "concurrency",
      "via",
      "ssh-config",
      "remote-agent",
      "prometheus",
      "max-age",
      ...ROLLOUT_FLAGS,
      "stage",
      "trust",
    ],
    args: Infinity,
  },
  status: { flags: [...TARGET_FLAGS, "prometheus", "max-age", "textfile", "wide"], args: 0 },
  "rollout list": { flags: [], args: 0 },
  "rollout show": { flags: [], args: 1 },
  "rollout resume": { flags: ["ssh-config", "remote-agent"], args: 1 },
  "rollout abort": { flags: ["no-revert", "ssh-config", "remote-agent"], args: 1 },
  staged: { flags: [], args: 0 },
  "staged show": { flags: [], args: 1 },
  "staged discard": { flags: [], args: 1 },
  approve: { flags: ["wait", "timeout", "concurrency", "ssh-config", "remote-agent"], args: 1 },
  history: { flags: ["limit"], args: 1 },
  logs: { flags: ["id"], args: 1 },
  "store init": { flags: [], args: 0 },
  "store credentials": { flags: ["out", "rotate", "consul"], args: 0 },
};

// Commands with subcommands: `server add`, `store init`, … are looked up as "<command> <sub>".
const GROUPS = new Set(["server", "store", "rollout", "config", "staged", "trust"]);

/** A single-value flag given twice is refused: parseArgs would silently keep the last (`--group web --group db` is db only). */
const refuseRepeated = (argv: string[]): void => {
  const { tokens } = parseArgs({ args: argv, options: FLAGS, allowPositionals: true, strict: false, tokens: true });
  const counts = new Map<string, number>();
  for (const t of tokens) {
    const spec = (FLAGS as Record<string, { multiple?: boolean }>)[t.kind === "option" ? t.name : ""];
    if (t.kind === "option" && spec !== undefined && !spec.multiple) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
  }
  const repeated = [...counts].filter(([, n]) => n > 1).map(([f, n]) => `--${f} given ${n} times`);
  if (repeated.length > 0)
    throw new FleetplanError("invalid_argument", `${repeated.join(", ")}: give each once (lists are comma-separated, e.g. --group web,db)`);
};

/** What a user may type first (`server`, `push`, …): an unknown word is answered with the nearest of these. */
const commandWords = (): Set<string> => new Set([...Object.keys(COMMANDS).map((c) => c.split(" ")[0]!), "help"]);

/** A group's subcommands (`add`, `set`, … of `server`), in COMMANDS order. */
const subcommandsOf = (group: string): string[] =>
  Object.keys(COMMANDS)
    .filter((c) => c.startsWith(`${group} `))
    .map((c) => c.slice(group.length + 1));

/** Refuse an unknown command, naming the nearest known one: a typo must not read as "see --help" only. */
const unknownCommand = (command: string, sub: string | undefined): FleetplanError => {
  if (!GROUPS.has(command)) {
    const hint = didYouMean(command, commandWords());
    return new FleetplanError("invalid_argument", `unknown command ${JSON.stringify(command)}${hint}; see fleetplan --help`);
  }
  const subs = subcommandsOf(command);
  const what =
    sub === undefined
      ? `fleetplan ${command} needs a subcommand`
      : `unknown ${command} command ${JSON.stringify(sub)}${didYouMean(sub, subs)}`;
  return new FleetplanError("invalid_argument", `${what}: ${subs.join(", ")} (see fleetplan ${command} --help)`);
};

/** The help page for `fleetplan help WORDS` or `fleetplan WORDS --help`: a command's own, a group's list, or the global page. */
const helpFor = (words: string[]): string => {
  const [first, second] = words;
  if (first === undefined) return HELP;
  const name = second !== undefined && `${first} ${second}` in COMMAND_HELP ? `${first} ${second}` : first;
  const own = COMMAND_HELP[name];
  // `trust --help`: trust's own page, then its subcommands.
  const group = name === first && GROUPS.has(first) ? formatGroupHelp(first, COMMAND_HELP) : "";
  if (own !== undefined) return formatCommandHelp(own) + (group && `\n${group}`);
  if (group !== "") return group;
  if (first in COMMANDS) return HELP;
  throw unknownCommand(first, undefined);
};

/** Refuse a flag or argument the command does not take (`status web-1` would otherwise show every server). */
const checkUsage = (command: string, args: string[], values: Record<string, unknown>): void => {
  const name = GROUPS.has(command) && args[0] !== undefined && `${command} ${args[0]}` in COMMANDS ? `${command} ${args[0]}` : command;
  const spec = COMMANDS[name];
  if (spec === undefined) throw unknownCommand(command, args[0]);
  const extraFlags = Object.keys(values).filter((f) => !GLOBAL_FLAGS.has(f) && !spec.flags.includes(f));
  if (extraFlags.length > 0)
    throw new FleetplanError("invalid_argument", `${name} does not take ${extraFlags.map((f) => `--${f}`).join(", ")}`);
  const extraArgs = args.slice(name === command ? 0 : 1).slice(spec.args);
  if (extraArgs.length > 0)
    throw new FleetplanError("invalid_argument", `${name}: unexpected argument(s) ${extraArgs.map((a) => JSON.stringify(a)).join(" ")}`);
};

const PUBLIC_KEY_LINE = /^fleetplan-(?:admin-ed25519|node-x25519|node)\s/;

/** Read at most the first `n` bytes of a file, or null when it is not there. */
const readHead = (path: string, n: number): string | null => {
  if (!statSync(path, { throwIfNoEntry: false })?.isFile()) return null;
  const head = Buffer.alloc(n);
  const fd = openSync(path, "r");
  try {
    return head.toString("latin1", 0, readSync(fd, head, 0, n, 0));
  } finally {
    closeSync(fd);
  }
};

/** `--admin-key keys/admin.pub` is a public key: say so before any advice about its file mode. */
const refusePublicAdminKeys = (paths: readonly string[]): void => {
  for (const path of paths) {
    if (!path.endsWith(".pub") && !PUBLIC_KEY_LINE.test(readHead(path, 64) ?? "")) continue;
    const fix = path.endsWith(".pub") ? ` (e.g. ${path.slice(0, -4)}.key)` : "";
    throw new FleetplanError("invalid_argument", `--admin-key: ${path} is a public key; give the private admin key file${fix}`);
  }
};

const SQLITE_MAGIC = "SQLite format 3\0";

/**
 * The coordinator database. Only `init` creates it: elsewhere a missing file is a mistake (a
 * wrong directory or --db), not a new empty inventory. A directory or a file that is not SQLite
 * is named as such instead of failing inside SQLite.
 */
const openDatabase = async (path: string, create: boolean): Promise<CoordinatorDb> => {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat === undefined) {
    if (!create) throw new FleetplanError("not_found", `no database at ${path}; run \`fleetplan init\` (or pass --db)`);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } else if (stat.isDirectory()) {
    throw new FleetplanError("invalid_argument", `--db: ${path} is a directory, not a database file`);
  } else if (stat.size > 0) {
    if (readHead(path, SQLITE_MAGIC.length) !== SQLITE_MAGIC)
      throw new FleetplanError("invalid_argument", `--db: ${path} is not a fleetplan database (not an SQLite file)`);
  }
  const { openCoordinatorDb } = await import("../db.ts");
  return openCoordinatorDb(path);
};

/** Dispatch a subcommand; returns the exit code. */
export const main = async (argv: string[], io: CliIo = processIo): Promise<number> => {
  const json = argv.includes("--json");
  try {
    const { values, positionals } = parseFlags(argv, FLAGS);
    refuseRepeated(argv);
    const [command, ...args] = positionals;
    if (values.version) {
      io.stdout(`${VERSION}\n`);
      return ExitCode.Ok;
    }
    if (values.help || command === "help" || command === undefined) {
      io.stdout(helpFor(command === "help" ? args : positionals));
      return command === undefined && !values.help ? ExitCode.Usage : ExitCode.Ok;
    }
    // Checked before the database is opened: a typo must not fail on opening one.
    checkUsage(command, args, values);
    if (values.prometheus !== undefined && !isHttpUrl(values.prometheus)) {
      throw new FleetplanError("invalid_argument", `--prometheus: ${JSON.stringify(values.prometheus)} is not an http(s) URL`);
    }
    const config = normalizeCoordinatorConfig(values);
    if (["init", "trust", "seal", "push", "rollout", "approve", "heartbeat"].includes(command)) refusePublicAdminKeys(config.adminKeys);
    // The remembered --prometheus is the default of push, rollout and status.
    const flags = { ...values, ...(config.prometheus !== undefined && { prometheus: values.prometheus ?? config.prometheus }) };
    const logger = createLogger({ level: "warn" });
    switch (command) {
      case "keygen":
        if (args[0] !== "admin" || !values.out) throw new FleetplanError("invalid_argument", "usage: fleetplan keygen admin --out DIR");
        return await (await import("./keys.ts")).adminKeygen(values.out, config, io);
      case "trust":
        if (args[0] !== undefined)
          return await (await import("./trust.ts")).trustCommand(args, values, config, io, () => openDatabase(config.db, false));
        return await (await import("./keys.ts")).printTrust(config, values.threshold, io);
      case "seal":
        return await (await import("./keys.ts")).seal(values, config, io);
      case "store":
        return await (await import("./store.ts")).storeCommand(args, { values, config, logger, io });
      case "config":
        if (args[0] !== "show") throw new FleetplanError("invalid_argument", "usage: fleetplan config show [--json]");
        return (await import("./config.ts")).configShow(config, io);
    }
    // Refused (a password in a URL) before the database is created.
    const remembered = command === "init" ? (await import("./config.ts")).settingsToRemember(values, config) : undefined;
    const db = await openDatabase(config.db, command === "init");
    try {
      switch (command) {
        case "init":
          (await import("./config.ts")).writeRemembered(remembered!);
          return await (await import("./keys.ts")).init(config, io, remembered!.path);
        case "server":
          return await (await import("./server.ts")).serverCommand(args, values, db, config, io);
        case "push":
          return await (await import("./push.ts")).pushCommand(flags, config, db, logger, io, args);
        case "rollout":
          return await (await import("./rollout.ts")).rolloutCommand(args, flags, config, db, logger, io);
        case "staged":
          return await (await import("./staged.ts")).stagedCommand(args, config, db, io);
        case "approve":
          return await (await import("./approve.ts")).approveCommand(args, flags, config, db, logger, io);
        case "status": {
          const [{ fleetStatus, printStatus, storeStatuses, writeExpectedTextfile }, { selectServers }] = await Promise.all([
            import("./status.ts"),
            import("./push.ts"),
          ]);
          if (values.textfile !== undefined) writeExpectedTextfile(db, values.textfile, io);
          const rows = await fleetStatus(db, selectServers(db, values, false), {
            maxAgeMs: parseDuration(values["max-age"] ?? "30m", "--max-age"),
            ...(flags.prometheus && { prometheus: flags.prometheus }),
            statuses: storeStatuses(config.store, logger),
          });
          printStatus(rows, config.json, io, values.wide);
          return rows.every((r) => r.verdict === "converged") ? ExitCode.Ok : ExitCode.Failed;
        }
        case "heartbeat": {
          const { selectServers } = await import("./push.ts");
          return await (await import("./heartbeat.ts")).heartbeatCommand(selectServers(db, values, false), values.expires, config, db, io);
        }
        case "logs":
          return await (await import("./logs.ts")).logsCommand(args, values, config, db, logger, io);
        default: // "history", the last command in COMMANDS
          return await (await import("./history.ts")).printHistory(
            db,
            args[0],
            parseCountFlag("--limit", values.limit ?? "50"),
            config.json,
            io,
            (await import("./status.ts")).storeStatuses(config.store, logger),
          );
      }
    } finally {
      db.close();
    }
  } catch (error) {
    return reportError(error, json, io);
  }
};
