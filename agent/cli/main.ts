import { didYouMean, formatCommandHelp, parseFlags, processIo, reportError } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { VERSION } from "../../shared/version.ts";
import { agentConfigFrom, CONFIG_FLAGS, onePositional } from "./common.ts";
import { AGENT_HELP } from "./help.ts";
// Command modules (SQLite, nats.js, libsodium, …) are imported when their command runs: --help and
// --version load none of them.

const HELP = `fleetplan-agent ${VERSION} — verifies and applies signed provisioning plans on this node

Usage:
  fleetplan-agent run      [config flags]          the daemon (systemd: Type=notify)
  fleetplan-agent apply    FILE|- [config flags]   verify and run one envelope (day-0 / SSH path)
  fleetplan-agent keygen   --out DIR               new node key: DIR/node.key (0600), DIR/node.pub
  fleetplan-agent pubkey   [--node-key FILE]       this node's public key line, for fleetplan server add --node-key
  fleetplan-agent enroll   --bootstrap-creds FILE [--host H] [config flags]
                                                   announce this node for fleetplan server accept (signed by its key)
  fleetplan-agent inspect  FILE [--trust FILE] [--key FILE] [--hostname H]
                                                   header, signers, verification (decrypts only with --key)
  fleetplan-agent status   [config flags]          local ledger: accepted/applied ids, last run
  fleetplan-agent drift    [config flags]          check the applied plan's files (content, mode, owner); exit 1 if drifted
  fleetplan-agent history  [--limit N] [config flags]

Config flags (override ${"$"}FLEETPLAN_* env vars, which override the config file):
  --config FILE            default /etc/fleetplan/agent.json
  --hostname NAME          default: the OS hostname
  --store URL              nats://host:port[,nats://...] or consul://host:port
  --node-key FILE          default /etc/fleetplan/node.key or ${"$"}CREDENTIALS_DIRECTORY/node.key
  --trust FILE             default /etc/fleetplan/trust or ${"$"}CREDENTIALS_DIRECTORY/trust
  --state-dir DIR          default /var/lib/fleetplan (ledger.db)
  --log-dir DIR            default /var/log/fleetplan (per-run logs)
  --metrics-listen H:P     default 127.0.0.1:9465 ("off" disables)
  --json                   machine-readable output
Help on one command: fleetplan-agent help CMD, or fleetplan-agent CMD --help
Exit codes: 0 ok, 1 run failed, 2 usage/config error, 3 envelope rejected, 4 store unreachable.
`;

/** An unknown command, with the nearest known one. */
const unknownCommand = (command: string): FleetplanError => {
  const hint = didYouMean(command, Object.keys(AGENT_HELP));
  return new FleetplanError("invalid_argument", `unknown command ${JSON.stringify(command)}${hint}; see fleetplan-agent --help`);
};

/** `fleetplan-agent help CMD` and `fleetplan-agent CMD --help`: the command's own page. */
const helpFor = (command: string): string => {
  const help = AGENT_HELP[command];
  if (help === undefined) throw unknownCommand(command);
  return formatCommandHelp(help, "fleetplan-agent");
};

/** Dispatch a subcommand; returns the exit code. */
export const main = async (argv: string[], io: CliIo = processIo): Promise<number> => {
  const [command, ...rest] = argv;
  const json = rest.includes("--json");
  try {
    if (command === "help" && rest[0] !== undefined) {
      io.stdout(helpFor(rest[0]));
      return 0;
    }
    if (command === undefined || command === "--help" || command === "-h" || command === "help") {
      io.stdout(HELP);
      return command === undefined ? 2 : 0;
    }
    if (command === "--version") {
      io.stdout(`${VERSION}\n`);
      return 0;
    }
    const extra = {
      out: { type: "string" },
      limit: { type: "string" },
      key: { type: "string" },
      "bootstrap-creds": { type: "string" },
      host: { type: "string" },
    } as const;
    const { values, positionals } = parseFlags(rest, { ...CONFIG_FLAGS, ...extra });
    if (values.help) {
      io.stdout(helpFor(command));
      return 0;
    }
    switch (command) {
      case "run":
        return await (await import("./run.ts")).runDaemon(agentConfigFrom(values));
      case "apply":
        return await (await import("./apply.ts")).applyOnce(
          onePositional(positionals, "envelope file (or - for stdin)"),
          agentConfigFrom(values),
          json,
          io,
        );
      case "keygen":
        if (!values.out) throw new FleetplanError("invalid_argument", "keygen needs --out DIR");
        return await (await import("./local.ts")).nodeKeygen(values.out, json, io);
      case "enroll": {
        const flags = {
          ...(values["bootstrap-creds"] && { bootstrapCreds: values["bootstrap-creds"] }),
          ...(values.host && { host: values.host }),
        };
        return await (await import("./enroll.ts")).enrollNode(agentConfigFrom(values), flags, json, io);
      }
      case "pubkey":
        return await (await import("./local.ts")).nodePubkey(agentConfigFrom(values), json, io);
      case "inspect": {
        const opts = {
          ...(values.trust && { trust: values.trust }),
          ...(values.key && { key: values.key }),
          ...(values.hostname && { hostname: values.hostname }),
        };
        return await (await import("./inspect.ts")).inspectEnvelope(onePositional(positionals, "envelope file"), opts, json, io);
      }
      case "status":
        return (await import("./local.ts")).localStatus(agentConfigFrom(values), json, io);
      case "drift":
        if (positionals.length > 0) {
          throw new FleetplanError(
            "invalid_argument",
            `drift takes no arguments (got ${positionals.join(" ")}); see fleetplan-agent --help`,
          );
        }
        return (await import("./drift.ts")).driftCommand(agentConfigFrom(values), json, io);
      case "history": {
        const limit = Number(values.limit ?? 20);
        if (!Number.isInteger(limit) || limit < 1)
          throw new FleetplanError("invalid_argument", `--limit: ${values.limit} must be a positive integer`);
        return (await import("./local.ts")).localHistory(agentConfigFrom(values), limit, json, io);
      }
      default:
        throw unknownCommand(command);
    }
  } catch (error) {
    return reportError(error, json, io);
  }
};
