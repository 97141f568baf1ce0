import type { CommandHelp } from "../../shared/cli.ts";

// Per-command help of fleetplan-agent, printed by `fleetplan-agent CMD --help` and
// `fleetplan-agent help CMD`. Every command main.ts dispatches has an entry (test/agent/cli-help.test.ts).

const CONFIG = ["[config flags]", "--config FILE, --hostname, --store, --node-key, --trust, --state-dir, --log-dir (see --help)"] as const;

/** Keyed by command name. */
export const AGENT_HELP: Record<string, CommandHelp> = {
  run: {
    usage: "run [config flags]",
    does: "The daemon: watches this node's key in the store, verifies and applies plans, serves /metrics (systemd: Type=notify).",
    flags: [CONFIG, ["--metrics-listen H:P", 'metrics address (default 127.0.0.1:9465, "off" disables)']],
    example: "fleetplan-agent run --config /etc/fleetplan/agent.json",
  },
  apply: {
    usage: "apply FILE|- [config flags]",
    does: "Verifies and runs one envelope from a file or stdin, with the daemon's checks and ledger (day-0 and SSH pushes).",
    flags: [CONFIG, ["--json", "the result as one JSON object"]],
    example: "fleetplan-agent apply web-1.fpe",
  },
  keygen: {
    usage: "keygen --out DIR",
    does: "Writes a new node key: DIR/node.key (0600, never leaves the node) and DIR/node.pub.",
    flags: [["--out DIR", "directory for the key pair"]],
    example: "fleetplan-agent keygen --out /etc/fleetplan",
  },
  pubkey: {
    usage: "pubkey [--node-key FILE]",
    does: "Prints this node's public key line, for `fleetplan server add --node-key`.",
    flags: [["--node-key FILE", "the private node key (default /etc/fleetplan/node.key)"]],
    example: "fleetplan-agent pubkey > web-1.pub",
  },
  enroll: {
    usage: "enroll --bootstrap-creds FILE [--host H] [config flags]",
    does:
      "Announces this node (its public keys, hostname, version, facts), signed by its own key, " +
      "for `fleetplan server pending` and `fleetplan server accept`.",
    flags: [
      ["--bootstrap-creds FILE", "credentials that may only write the enrollment key"],
      ["--host H", "the name to enroll as"],
      CONFIG,
    ],
    example: "fleetplan-agent enroll --bootstrap-creds /etc/fleetplan/bootstrap.creds",
  },
  inspect: {
    usage: "inspect FILE [--trust FILE] [--key FILE] [--hostname H]",
    does: "Shows an envelope's header, signers and verification; decrypts (listing file paths, never content) only with --key.",
    flags: [
      ["--trust FILE", "verify against this trust file"],
      ["--key FILE", "node key to decrypt with"],
      ["--hostname H", "check the target"],
    ],
    example: "fleetplan-agent inspect web-1.fpe --trust /etc/fleetplan/trust",
  },
  status: {
    usage: "status [config flags]",
    does: "The local ledger's view: accepted and applied ids, the last run. Needs no store or daemon.",
    flags: [CONFIG, ["--json", "one JSON object"]],
    example: "fleetplan-agent status --json",
  },
  drift: {
    usage: "drift [config flags]",
    does: "Checks that the files the last successful plan wrote still have its content, mode and owner; exit 1 if any drifted.",
    flags: [CONFIG, ["--json", "one JSON object"]],
    example: "fleetplan-agent drift",
  },
  history: {
    usage: "history [--limit N] [config flags]",
    does: "Runs from the local ledger, newest first (--json: snake_case fields, ISO 8601 times).",
    flags: [["--limit N", "at most N runs (default 20)"], CONFIG, ["--json", "a JSON array"]],
    example: "fleetplan-agent history --limit 5 --json",
  },
};
