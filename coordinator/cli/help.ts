import type { CommandHelp } from "../../shared/cli.ts";

// Per-command help, printed by `fleetplan CMD --help` and `fleetplan help CMD` (shared/cli.ts
// formatCommandHelp). A new command in main.ts's COMMANDS gets an entry here under the same key:
// test/coordinator/cli-help.test.ts fails for a command without one.

const TARGETS = [
  ["--servers a,b", "these servers: names and globs ('web-*')"],
  ["--group G", "the servers of these groups (web,db)"],
  ["--all", "every server"],
  ["--where k=v", "narrow by server tags (repeatable, AND)"],
] as const;

/** Keyed like COMMANDS in main.ts ("server add"): a test checks every command has an entry. */
export const COMMAND_HELP: Record<string, CommandHelp> = {
  init: {
    usage: "init [--store URL] [--creds FILE] [--tls-ca/--tls-cert/--tls-key FILE] [--prometheus URL] [--notify-prefix P] [--replicas N]",
    does:
      "Creates the database and an admin key at --admin-key (if missing), remembers the given settings in fleetplan.json " +
      "beside the database, and prints the agents' trust file.",
    flags: [["--prometheus URL", "where status and push read agent metrics (remembered)"]],
    example: "fleetplan init --db /srv/fleet/fleetplan.db --store nats://nats-1:4222",
  },
  "config show": {
    usage: "config show [--json]",
    does: "Prints every setting in force and where it came from (flag, env, file, default).",
    flags: [],
    example: "fleetplan config show",
  },
  keygen: {
    usage: "keygen admin --out DIR",
    does: "Writes a new admin signing key DIR/admin.key (0600) and its public half DIR/admin.pub.",
    flags: [["--out DIR", "directory for the key pair"]],
    example: "fleetplan keygen admin --out keys",
  },
  trust: {
    usage: "trust [--threshold K]",
    does:
      "Prints the agents' trust file for the configured admin key(s). `trust rotate` and `trust show` manage the " +
      "signed trust chain in the store.",
    flags: [["--threshold K", "signatures an agent requires (k-of-n; default 1)"]],
    example: "fleetplan trust --admin-key keys/a.key --admin-key keys/b.key --threshold 2",
  },
  "trust rotate": {
    usage: "trust rotate --root TRUSTFILE [--add KEY.pub ...] [--remove KEY.pub|KEY_ID ...] [--threshold K] [--expires 365d]",
    does:
      "Publishes the next trust version to the store, signed by enough keys of the current set AND of the new set " +
      "(give their private keys with --admin-key). Agents adopt it and from then on refuse envelopes signed only by removed keys.",
    flags: [
      ["--add KEY.pub", "admin public key to trust (file or key line; repeatable)"],
      ["--remove KEY", "admin key to drop: .pub file, key line or 16-hex key id (repeatable)"],
      ["--threshold K", "signatures the new set requires (default: the current threshold)"],
      ["--root TRUSTFILE", "the agents' trust file: published as version 1 first, then the store's version 1 must match it"],
      ["--expires D", "how long agents may adopt this version (default 365d)"],
    ],
    example:
      "fleetplan trust rotate --root trust --add keys/new.pub --remove keys/old.pub --admin-key keys/old.key --admin-key keys/new.key",
  },
  "trust show": {
    usage: "trust show [--json]",
    does: "Prints every trust version in the store (keys, threshold, signers), verified version by version.",
    flags: [],
    example: "fleetplan trust show --json",
  },
  heartbeat: {
    usage: "heartbeat [--servers a,b | --group G | --all] [--expires 1h]",
    does:
      "Signs one freshness record per server (the latest id issued for it, valid until --expires) and puts it under " +
      "the server's own store key; agents export its expiry and whether they miss an update. Run it from a timer.",
    flags: [...TARGETS, ["--expires D", "validity of the records (default 1h; run it several times within)"]],
    example: "fleetplan heartbeat --all --expires 1h",
  },
  seal: {
    usage: "seal --plan FILE --target HOST --node-key PUB --id N [--expires 24h] --out FILE",
    does: "Seals one plan for one host into an envelope file, without the database or the store.",
    flags: [
      ["--plan FILE", "the plan (JSON or .sh)"],
      ["--target HOST", "the host it is meant for"],
      ["--node-key PUB", "the host's node public key line"],
      ["--id N", "provisioning id"],
      ["--expires D", "lifetime (default 24h)"],
      ["--out FILE", "where the envelope goes"],
    ],
    example: 'fleetplan seal --plan web.json --target web-1 --node-key "$(cat web-1.pub)" --id 7 --out web-1.env',
  },
  "server add": {
    usage:
      "server add HOST --node-key PUB [--metrics URL] [--ssh user@host:port] [--group G] [--not-bootstrapped] [--tag k=v ...] " +
      "[--allow-shared-key]",
    does: "Adds one server to the inventory. A node key already used by another host is refused unless --allow-shared-key.",
    flags: [
      ["--node-key PUB", "the line `fleetplan-agent pubkey` prints (or a file holding it)"],
      ["--metrics URL", "the agent's metrics, an http(s) URL with a host"],
      ["--ssh user@host:port", "how to reach it for SSH pushes"],
      ["--group G", "its group"],
      ["--not-bootstrapped", "no agent yet: push goes over SSH"],
      ["--tag k=v", "a tag (repeatable)"],
      ["--allow-shared-key", "accept a node key another host already has"],
    ],
    example: 'fleetplan server add web-1 --node-key "$(cat web-1.pub)" --metrics http://web-1:9465/metrics --group web',
  },
  "server set": {
    usage: "server set HOST [--node-key PUB] [--metrics URL] [--ssh user@host:port] [--group G] [--tag k=v ...] [--untag k ...]",
    does: "Changes some fields of one server already in the inventory; the others are kept.",
    flags: [
      ["--node-key PUB", "a new node key (after a key rotation)"],
      ["--metrics URL", "new metrics URL"],
      ["--ssh user@host:port", "new SSH address"],
      ["--group G", "new group"],
      ["--tag k=v", "set a tag (repeatable)"],
      ["--untag k", "remove a tag (repeatable)"],
      ["--allow-shared-key", "accept a node key another host already has"],
    ],
    example: "fleetplan server set web-1 --group web-canary --tag rack=b2",
  },
  "server list": {
    usage: "server list [--group G] [--json] | server list --prometheus-sd [--group G] [--out FILE]",
    does: "Lists the inventory, hosts in natural order (web-2 before web-10). --json output re-imports with `server import`.",
    flags: [
      ["--group G", "only this group"],
      ["--prometheus-sd", "Prometheus file_sd targets labelled host (and group)"],
      ["--out FILE", "write the file_sd file atomically (with --prometheus-sd)"],
    ],
    example: "fleetplan server list --json > inventory.json",
  },
  "server remove": {
    usage: "server remove HOST [--purge [--creds-dir DIR]]",
    does:
      "Removes one server from the inventory. With --purge (decommission), first deletes every key the host has in the " +
      "store (plan, freshness, status, run output, enrollment), and revokes and deletes its credentials in DIR.",
    flags: [
      ["--purge", "also the host's store keys (and credentials, with a credentials directory)"],
      ["--creds-dir DIR", "the --out DIR of `store credentials` (default: the directory of --creds coordinator.creds)"],
    ],
    example: "fleetplan server remove web-9 --purge --creds-dir /srv/fleet/creds",
  },
  "server import": {
    usage: "server import FILE [--allow-shared-key]",
    does: "Adds many servers from a JSON array (as `server list --json` prints) or a CSV file; any bad row and nothing is added.",
    flags: [["--allow-shared-key", "accept node keys shared between hosts"]],
    example: "fleetplan server import inventory.json",
  },
  "server pending": {
    usage: "server pending [--json]",
    does:
      "Lists the announcements of new agents (fleetplan-agent enroll): host, key fingerprint, hostname, version, facts, age, " +
      "and whether the signature verifies; a host already in the inventory with another key is flagged.",
    flags: [],
    example: "fleetplan server pending",
  },
  "server accept": {
    usage: "server accept HOST [--group G] [--tag k=v ...] [--fingerprint KEYID] [--allow-shared-key]",
    does:
      "Adds an announced host to the inventory with its announced node key (only a verified announcement); " +
      "then `store credentials` issues its credentials.",
    flags: [
      ["--fingerprint KEYID", "refuse unless the announced key id is this one (`fleetplan-agent pubkey` on the node prints it)"],
      ["--group G", "the server's group"],
      ["--tag k=v", "a server tag (repeatable)"],
      ["--allow-shared-key", "accept a node key another inventory host already has"],
    ],
    example: "fleetplan server accept web-7 --group web --fingerprint 3f2a9c0d11e4b7a8",
  },
  "server reject": {
    usage: "server reject HOST",
    does: "Deletes a host's announcement; the inventory is not touched.",
    flags: [],
    example: "fleetplan server reject web-7",
  },
  push: {
    usage: "push (--plan FILE | --plans DIR) [--servers a,b | --group G | --all] [--dry-run] [--force] [--wait [--timeout 10m]]",
    does:
      "Seals and publishes plans, skipping servers already converged on them. --plans DIR takes HOST.json or HOST.sh per " +
      "server and reports files for hosts not in the inventory. With --waves or --batch it is a rollout.",
    flags: [
      ["--plan FILE", "one plan for every target"],
      ["--plans DIR", "one plan per host (HOST.json, HOST.sh)"],
      ...TARGETS,
      ["--dry-run", "show what would be pushed"],
      ["--force", "push converged servers too"],
      ["--wait", "wait for convergence"],
      ["--timeout D", "how long --wait waits (default 10m)"],
      ["--expires D", "envelope lifetime (default 24h)"],
      ["--concurrency N", "sealing concurrency (default 256)"],
      ["--via store|ssh", "delivery (default store; SSH for servers not bootstrapped)"],
      ["--ssh-config FILE", "ssh_config for --via ssh"],
      ["--remote-agent CMD", "agent command on the remote host"],
      ["--prometheus URL", "where convergence is read"],
      ["--max-age D", "how fresh a scrape must be (default 30m)"],
      ["--waves 1,10%,100%", "rollout waves"],
      ["--batch N|P%", "rollout in equal batches"],
      ["--canary HOST,...", "first wave"],
      ["--max-failures N|P%", "error budget"],
      ["--wave-timeout D", "per wave"],
      ["--gate-query PROMQL", "must hold between waves"],
      ["--revert-on-failure", "put back the previous plans when paused"],
      ["--stage", "two-person rule: seal and sign, publish nothing until `approve`"],
      ["--trust FILE", "with --stage: the agents' trust file (keys and threshold approval needs)"],
    ],
    example: "fleetplan push --plans plans/ --group web --wait",
  },
  status: {
    usage: "status [--servers a,b | --group G | --all] [--prometheus URL] [--max-age 30m] [--textfile FILE.prom] [--wide]",
    does:
      "Shows each server's verdict (converged, pending, failed, …) from its metrics, through Prometheus or by direct scrape. " +
      "Fits 120 columns; --wide shows every column.",
    flags: [
      ...TARGETS,
      ["--prometheus URL", "read through Prometheus (its `up` decides a dead agent)"],
      ["--max-age D", "how fresh a scrape must be (default 30m)"],
      ["--textfile FILE", "write expected plans as fleetplan_expected_plan_info (node_exporter textfile)"],
      ["--wide", "every column, untruncated"],
    ],
    example: "fleetplan status --group web",
  },
  "rollout list": { usage: "rollout list", does: "Lists rollouts, newest first.", flags: [], example: "fleetplan rollout list" },
  "rollout show": {
    usage: "rollout show ID",
    does: "Shows one rollout's waves and their results.",
    flags: [],
    example: "fleetplan rollout show 3",
  },
  "rollout resume": {
    usage: "rollout resume ID [--ssh-config FILE] [--remote-agent CMD]",
    does:
      "Continues a paused rollout from its next wave; refused (rollout_busy) while another process drives it. A staged " +
      "rollout (push --waves --stage) resumes only once approved, and only with its threshold of --admin-key.",
    flags: [
      ["--admin-key FILE", "repeat up to the trust threshold for a staged rollout (the key that staged it among them)"],
      ["--ssh-config FILE", "ssh_config for SSH targets"],
      ["--remote-agent CMD", "agent command on remote hosts"],
    ],
    example: "fleetplan rollout resume 3",
  },
  "rollout abort": {
    usage: "rollout abort ID [--no-revert]",
    does:
      "Stops a paused (or running, after a crash) rollout for good; one started with --revert-on-failure puts back the " +
      "previous plans first, unless --no-revert.",
    flags: [
      ["--no-revert", "abort a --revert-on-failure rollout without reverting: hosts keep what they have"],
      ["--ssh-config FILE", "ssh_config for SSH targets of the revert"],
      ["--remote-agent CMD", "agent command on remote hosts"],
    ],
    example: "fleetplan rollout abort 3 --no-revert",
  },
  staged: {
    usage: "staged [--json]",
    does:
      "Lists staged changes (push --stage) waiting for approval: who signed (key ids), created and expiry times, and per host " +
      "its id, plan hash and what changes (new host, same plan, old hash -> new).",
    flags: [],
    example: "fleetplan staged",
  },
  "staged show": {
    usage: "staged show ID",
    does: "Shows one staged change host by host.",
    flags: [],
    example: "fleetplan staged show S-3",
  },
  "staged discard": {
    usage: "staged discard ID",
    does: "Drops a staged change: nothing is published, its reserved ids stay unused.",
    flags: [],
    example: "fleetplan staged discard S-3",
  },
  approve: {
    usage: "approve ID --admin-key OTHER.key [--wait [--timeout 10m]] [--concurrency N]",
    does:
      "Checks a staged change is intact, unexpired and not overtaken, adds this admin's signature, and publishes it once the " +
      "trust threshold of distinct keys is met. The key that staged it cannot approve it.",
    flags: [
      ["--wait", "wait for the agents' outcomes"],
      ["--timeout D", "how long --wait waits (default 10m)"],
      ["--concurrency N", "puts in flight (default 256)"],
      ["--ssh-config FILE", "ssh_config for SSH targets"],
      ["--remote-agent CMD", "agent command on remote hosts"],
    ],
    example: "fleetplan approve S-3 --admin-key keys/bob.key --wait",
  },
  history: {
    usage: "history [HOST] [--limit 50]",
    does: "Lists past pushes, for the fleet or one host.",
    flags: [["--limit N", "at most N entries (default 50)"]],
    example: "fleetplan history web-1 --limit 10",
  },
  logs: {
    usage: "logs HOST [--id N] [--json]",
    does:
      "Prints the tail (last 8 KiB) of the failing step's output of HOST's last failed run, which the agent sealed to the " +
      "admin keys it trusts and signed with its node key; a record not signed by HOST's node key is refused.",
    flags: [["--id N", "the run of provisioning id N (the store keeps the last 5 failures per host)"]],
    example: "fleetplan logs web-1 --id 20261205211500",
  },
  "store init": {
    usage: "store init [--replicas N]",
    does: "Creates or updates the NATS buckets; run once before agents start.",
    flags: [["--replicas N", "KV replicas (NATS cluster)"]],
    example: "fleetplan store init --replicas 3",
  },
  "store credentials": {
    usage: "store credentials --out DIR [--rotate] [--consul]",
    does: "Writes NATS credentials per inventory host and the coordinator's, and nats-server.conf (--consul: ACL policies).",
    flags: [
      ["--out DIR", "output directory"],
      ["--rotate", "new user keys for every identity"],
      ["--consul", "Consul ACL policies instead"],
    ],
    example: "fleetplan store credentials --out creds",
  },
};

/** `fleetplan server --help`: the group's subcommands with their usage lines. */
export const formatGroupHelp = (group: string, table: Record<string, CommandHelp>, bin = "fleetplan"): string => {
  const subs = Object.entries(table).filter(([name]) => name.startsWith(`${group} `));
  return (
    `Usage: ${bin} ${group} SUBCOMMAND\n\nSubcommands:\n${subs.map(([, h]) => `  ${bin} ${h.usage}`).join("\n")}\n\n` +
    `Help on one: ${bin} ${group} SUBCOMMAND --help\n`
  );
};
