import { ExitCode, parseFlags, processIo, reportError } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import { parseDuration } from "../../shared/duration.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { createLogger } from "../../shared/log.ts";
import { VERSION } from "../../shared/version.ts";
import { normalizeCoordinatorConfig } from "../config.ts";
import { openCoordinatorDb } from "../db.ts";
import { printHistory } from "./history.ts";
import { adminKeygen, init, printTrust, seal } from "./keys.ts";
import { pushCommand, selectServers } from "./push.ts";
import { serverCommand } from "./server.ts";
import { fleetStatus, printStatus } from "./status.ts";

const HELP = `fleetplan ${VERSION} — push signed, encrypted provisioning plans to a fleet and prove convergence

Usage:
  fleetplan init                                   database + admin key (if missing); prints the agents' trust file
  fleetplan keygen admin --out DIR                 DIR/admin.key (0600) and DIR/admin.pub
  fleetplan trust [--threshold K]                  trust file for the configured admin key(s)
  fleetplan seal --plan FILE --target HOST --node-key PUB --id N [--expires 24h] --out FILE
  fleetplan server add HOST --node-key PUB [--metrics URL] [--ssh user@host:port] [--group G] [--not-bootstrapped]
  fleetplan server list [--group G] | remove HOST | import FILE (JSON array or CSV)
  fleetplan push (--plan FILE | --plans DIR) (--servers a,b | --group G | --all)
                 [--dry-run] [--force] [--wait [--timeout 10m]] [--expires 24h] [--concurrency 16]
                 [--via ssh] [--ssh-config FILE] [--remote-agent CMD] [--prometheus URL]
  fleetplan status [--servers a,b | --group G] [--prometheus URL] [--max-age 30m]
  fleetplan history [HOST] [--limit 50]

Global flags:
  --db FILE          coordinator database (default ./fleetplan.db, or $FLEETPLAN_DB)
  --store URL        nats://host:port[,nats://...] or consul://host:port ($FLEETPLAN_STORE)
  --admin-key FILE   signing key, repeat for k-of-n (default: keys/admin.key beside the db)
  --replicas N       KV replicas when this command creates the buckets (NATS cluster; default 1)
  --json             machine-readable output (push: one JSON object per line, the last a summary)
Exit codes: 0 ok / all converged, 1 failed or not converged, 2 usage or input error,
            3 envelope rejected, 4 store or host unreachable.
`;

const FLAGS = {
  db: { type: "string" }, store: { type: "string" }, "admin-key": { type: "string", multiple: true }, replicas: { type: "string" }, json: { type: "boolean" },
  help: { type: "boolean", short: "h" }, version: { type: "boolean" },
  out: { type: "string" }, plan: { type: "string" }, plans: { type: "string" }, target: { type: "string" },
  "node-key": { type: "string" }, id: { type: "string" }, expires: { type: "string" }, threshold: { type: "string" },
  metrics: { type: "string" }, ssh: { type: "string" }, group: { type: "string" }, "not-bootstrapped": { type: "boolean" },
  servers: { type: "string" }, all: { type: "boolean" }, "dry-run": { type: "boolean" }, force: { type: "boolean" },
  wait: { type: "boolean" }, timeout: { type: "string" }, concurrency: { type: "string" }, via: { type: "string" },
  "ssh-config": { type: "string" }, "remote-agent": { type: "string" },
  prometheus: { type: "string" }, "max-age": { type: "string" }, limit: { type: "string" },
} as const;

const DB_COMMANDS = new Set(["push", "status", "history"]);

/** Dispatch a subcommand; returns the exit code. */
export const main = async (argv: string[], io: CliIo = processIo): Promise<number> => {
  const json = argv.includes("--json");
  try {
    const { values, positionals } = parseFlags(argv, FLAGS);
    const [command, ...args] = positionals;
    if (values.version) {
      io.stdout(`${VERSION}\n`);
      return ExitCode.Ok;
    }
    if (values.help || command === "help" || command === undefined) {
      io.stdout(HELP);
      return command === undefined && !values.help ? ExitCode.Usage : ExitCode.Ok;
    }
    const config = normalizeCoordinatorConfig(values);
    const logger = createLogger({ level: "warn" });
    switch (command) {
      case "init":
        return await init(config, io);
      case "keygen":
        if (args[0] !== "admin" || !values.out) throw new FleetplanError("invalid_argument", "usage: fleetplan keygen admin --out DIR");
        return await adminKeygen(values.out, config, io);
      case "trust":
        return await printTrust(config, Number(values.threshold ?? 1), io);
      case "seal":
        return await seal(values, config, io);
      case "server":
        return await serverCommand(args, values, config, io);
    }
    // Checked before the database is opened: a typo must not create one (or fail on opening it).
    if (!DB_COMMANDS.has(command)) throw new FleetplanError("invalid_argument", `unknown command ${JSON.stringify(command)}; see fleetplan --help`);
    const db = openCoordinatorDb(config.db);
    try {
      switch (command) {
        case "push":
          return await pushCommand(values, config, db, logger, io);
        case "status": {
          const rows = await fleetStatus(db, selectServers(db, values, false), {
            maxAgeMs: parseDuration(values["max-age"] ?? "30m", "--max-age"), ...(values.prometheus && { prometheus: values.prometheus }),
          });
          printStatus(rows, config.json, io);
          return rows.every((r) => r.verdict === "converged") ? ExitCode.Ok : ExitCode.Failed;
        }
        default: // "history", the last of DB_COMMANDS
          return printHistory(db, args[0], Number(values.limit ?? 50), config.json, io);
      }
    } finally {
      db.close();
    }
  } catch (error) {
    return reportError(error, json, io);
  }
};
