import { dirname } from "node:path";
import { compareHosts, formatTable } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { readTextFile } from "../../shared/files.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { CoordinatorConfig } from "../config.ts";
import type { CoordinatorDb, ServerRow } from "../db.ts";
import { parseServerImport, refuseSharedKeys, validateServerInput } from "../inventory.ts";
import { formatSdFile, prometheusSdGroups } from "../prometheus-files.ts";
import { openRolloutDb } from "../rollout/db.ts";
import { parseTags } from "../rollout/targets.ts";
import type { Tags } from "../rollout/targets.ts";
import { identityKeyOf, noIdentityWarning } from "../status-evidence.ts";
import type { EnrollFlags } from "./enroll.ts";
import { writeForPrometheus } from "./prometheus-out.ts";

export interface ServerFlags {
  "node-key"?: string;
  metrics?: string;
  ssh?: string;
  group?: string;
  "not-bootstrapped"?: boolean;
  "prometheus-sd"?: boolean;
  out?: string;
  /** `k=v` tags, repeatable: `--where k=v` selects by them. */
  tag?: string[];
  /** `server set --untag k`: tag keys to drop. */
  untag?: string[];
  "allow-shared-key"?: boolean;
  /** `server remove --purge [--creds-dir DIR]`: also the host's store keys and credentials. */
  purge?: boolean;
  "creds-dir"?: string;
}

/** Hosts added with the old X25519-only key line: added, but told how to migrate (their status is never evidence). */
const warnNoIdentity = (rows: ServerRow[], io: CliIo): void => {
  for (const row of rows.filter((r) => identityKeyOf(r) === null)) io.stderr(`warning: ${noIdentityWarning(row.host)}\n`);
};

/** A server as `server list --json` prints it: every field `server import` takes, so the output re-imports as is. */
const view = (s: ServerRow, tags: Tags = {}) => ({
  host: s.host,
  node_key: s.nodeKey,
  node_key_id: s.nodeKeyId,
  metrics: s.metricsUrl,
  ssh: s.ssh,
  group: s.group,
  bootstrapped: s.bootstrapped,
  tags,
});

/** `server set HOST --node-key|--metrics|--ssh|--group|--tag|--untag`: the given fields change, the others are kept. */
const setServer = (host: string, flags: ServerFlags, db: CoordinatorDb, config: CoordinatorConfig, io: CliIo): number => {
  const all = db.servers();
  const old = all.find((s) => s.host === host);
  if (old === undefined) {
    throw new FleetplanError("not_found", `no server ${JSON.stringify(host)} in the inventory; add it with fleetplan server add`);
  }
  const changes = [flags["node-key"], flags.metrics, flags.ssh, flags.group, flags.tag, flags.untag].filter((v) => v !== undefined);
  if (changes.length === 0) {
    throw new FleetplanError("invalid_argument", "server set needs at least one of --node-key, --metrics, --ssh, --group, --tag, --untag");
  }
  const row = validateServerInput(
    {
      host,
      node_key: flags["node-key"] ?? old.nodeKey,
      metrics: flags.metrics ?? old.metricsUrl,
      ssh: flags.ssh ?? old.ssh,
      group: flags.group ?? old.group,
      bootstrapped: old.bootstrapped,
    },
    { now: old.addedAt },
  );
  refuseSharedKeys([row], all, !!flags["allow-shared-key"]);
  const rollouts = openRolloutDb(db.sqlite);
  const untag = new Set(flags.untag ?? []);
  const kept = Object.entries(rollouts.tags().get(host) ?? {}).filter(([k]) => !untag.has(k));
  const tags = { ...Object.fromEntries(kept), ...parseTags("--tag", flags.tag ?? []) };
  db.sqlite
    .transaction(() => {
      db.updateServer(row);
      rollouts.setTags(host, tags);
    })
    .immediate();
  warnNoIdentity([row], io);
  io.stdout(config.json ? `${JSON.stringify({ ok: true, server: view(row, tags) })}\n` : `updated ${host}\n`);
  return 0;
};

/** `server list --prometheus-sd [--out FILE]`: the file_sd targets on stdout, or written atomically to FILE. */
const listPrometheusSd = (servers: ServerRow[], out: string | undefined, io: CliIo): number => {
  const { groups, skipped } = prometheusSdGroups(servers);
  if (skipped.length > 0) {
    io.stderr(`warning: no metrics URL, not in the file_sd file (add one with server add --metrics URL): ${skipped.join(", ")}\n`);
  }
  const text = formatSdFile(groups);
  if (out === undefined) {
    io.stdout(text);
    return 0;
  }
  const endings = [".json", ".yml", ".yaml"];
  writeForPrometheus({ path: out, what: "--prometheus-sd file", endings, reader: "Prometheus file_sd" }, text, io);
  io.stdout(`wrote ${groups.length} targets to ${out}\n`);
  return 0;
};

/** `server add|set|list|remove|import` on the inventory (the caller checked the arguments); bad input writes nothing. */
export const serverCommand = async (
  args: string[],
  flags: ServerFlags,
  db: CoordinatorDb,
  config: CoordinatorConfig,
  io: CliIo,
): Promise<number> => {
  const [sub, arg] = args;
  await sodiumReady();
  switch (sub) {
    case "add": {
      if (!arg) throw new FleetplanError("invalid_argument", "server add needs HOST");
      const row = validateServerInput(
        {
          host: arg,
          node_key: flags["node-key"],
          metrics: flags.metrics,
          ssh: flags.ssh,
          group: flags.group,
          bootstrapped: flags["not-bootstrapped"] ? false : undefined,
        },
        { now: Date.now() },
      );
      const tags = parseTags("--tag", flags.tag ?? []);
      refuseSharedKeys([row], db.servers(), !!flags["allow-shared-key"]);
      db.addServers([row]);
      // Set even when empty: a host removed and added again must not keep its old tags.
      openRolloutDb(db.sqlite).setTags(row.host, tags);
      warnNoIdentity([row], io);
      io.stdout(
        config.json ? `${JSON.stringify({ ok: true, server: view(row, tags) })}\n` : `added ${row.host} (node key ${row.nodeKeyId})\n`,
      );
      return 0;
    }
    case "import": {
      if (!arg) throw new FleetplanError("invalid_argument", "server import needs FILE (JSON array or CSV)");
      // Hosts already in the inventory are listed with the file's other problems.
      const inventory = db.servers();
      const existing = new Set(inventory.map((s) => s.host));
      const imported = parseServerImport(readTextFile(arg, "inventory"), arg, { baseDir: dirname(arg), now: Date.now(), existing });
      const rows = imported.map(({ tags: _tags, ...row }) => row);
      refuseSharedKeys(rows, inventory, !!flags["allow-shared-key"]);
      const rollouts = openRolloutDb(db.sqlite);
      db.sqlite
        .transaction(() => {
          db.addServers(rows);
          for (const { host, tags } of imported) rollouts.setTags(host, tags);
        })
        .immediate();
      warnNoIdentity(rows, io);
      io.stdout(config.json ? `${JSON.stringify({ ok: true, added: rows.length })}\n` : `imported ${rows.length} servers\n`);
      return 0;
    }
    case "remove": {
      if (!arg) throw new FleetplanError("invalid_argument", "server remove needs HOST");
      if (flags.purge) return (await import("./server-purge.ts")).removeAndPurge(arg, flags, db, config, io);
      if (!db.removeServer(arg)) throw new FleetplanError("not_found", `no server ${JSON.stringify(arg)} in the inventory`);
      io.stdout(config.json ? `${JSON.stringify({ ok: true, removed: arg })}\n` : `removed ${arg}\n`);
      return 0;
    }
    case "set":
      if (!arg) throw new FleetplanError("invalid_argument", "server set needs HOST");
      return setServer(arg, flags, db, config, io);
    case "list": {
      if (flags["prometheus-sd"]) return listPrometheusSd(db.servers(flags.group ? { group: flags.group } : {}), flags.out, io);
      if (flags.out !== undefined) {
        throw new FleetplanError("invalid_argument", "server list --out FILE needs --prometheus-sd (it writes the file_sd file)");
      }
      const tags = openRolloutDb(db.sqlite).tags();
      const servers = db.servers(flags.group ? { group: flags.group } : {}).sort((a, b) => compareHosts(a.host, b.host));
      const rows = servers.map((s) => view(s, tags.get(s.host)));
      io.stdout(
        config.json
          ? `${JSON.stringify(rows)}\n`
          : formatTable(
              ["host", "node key", "metrics", "ssh", "group", "bootstrapped", "tags"],
              rows.map((r) => [
                r.host,
                r.node_key_id,
                r.metrics,
                r.ssh,
                r.group,
                r.bootstrapped ? "yes" : "no",
                Object.entries(r.tags)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(",") || null,
              ]),
            ),
      );
      return 0;
    }
    default: // pending, accept or reject: main.ts refuses any other subcommand
      return await (await import("./enroll.ts")).enrollCommand(sub!, arg, flags as EnrollFlags, db, config, io);
  }
};
