import { dirname } from "node:path";
import { formatTable } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { readTextFile } from "../../shared/files.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import type { CoordinatorConfig } from "../config.ts";
import type { CoordinatorDb, ServerRow } from "../db.ts";
import { parseServerImport, validateServerInput } from "../inventory.ts";
import { formatSdFile, prometheusSdGroups } from "../prometheus-files.ts";
import { openRolloutDb } from "../rollout/db.ts";
import { parseTags } from "../rollout/targets.ts";
import { identityKeyOf, noIdentityWarning } from "../status-evidence.ts";
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
}

/** Hosts added with the old X25519-only key line: added, but told how to migrate (their status is never evidence). */
const warnNoIdentity = (rows: ServerRow[], io: CliIo): void => {
  for (const row of rows.filter((r) => identityKeyOf(r) === null)) io.stderr(`warning: ${noIdentityWarning(row.host)}\n`);
};

const view = (s: ServerRow) => ({ host: s.host, node_key_id: s.nodeKeyId, metrics: s.metricsUrl, ssh: s.ssh, group: s.group, bootstrapped: s.bootstrapped });

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

/** `server add|list|remove|import` on the inventory (the caller checked the arguments); bad input writes nothing. */
export const serverCommand = async (args: string[], flags: ServerFlags, db: CoordinatorDb, config: CoordinatorConfig, io: CliIo): Promise<number> => {
  const [sub, arg] = args;
  await sodiumReady();
  switch (sub) {
    case "add": {
      if (!arg) throw new FleetplanError("invalid_argument", "server add needs HOST");
      const row = validateServerInput({
        host: arg, node_key: flags["node-key"], metrics: flags.metrics, ssh: flags.ssh, group: flags.group,
        bootstrapped: flags["not-bootstrapped"] ? false : undefined,
      }, { now: Date.now() });
      const tags = parseTags("--tag", flags.tag ?? []);
      db.addServers([row]);
      // Set even when empty: a host removed and added again must not keep its old tags.
      openRolloutDb(db.sqlite).setTags(row.host, tags);
      warnNoIdentity([row], io);
      io.stdout(config.json ? `${JSON.stringify({ ok: true, server: view(row) })}\n` : `added ${row.host} (node key ${row.nodeKeyId})\n`);
      return 0;
    }
    case "import": {
      if (!arg) throw new FleetplanError("invalid_argument", "server import needs FILE (JSON array or CSV)");
      // Hosts already in the inventory are listed with the file's other problems.
      const existing = new Set(db.servers().map((s) => s.host));
      const rows = parseServerImport(readTextFile(arg, "inventory"), arg, { baseDir: dirname(arg), now: Date.now(), existing });
      db.addServers(rows);
      warnNoIdentity(rows, io);
      io.stdout(config.json ? `${JSON.stringify({ ok: true, added: rows.length })}\n` : `imported ${rows.length} servers\n`);
      return 0;
    }
    case "remove": {
      if (!arg) throw new FleetplanError("invalid_argument", "server remove needs HOST");
      if (!db.removeServer(arg)) throw new FleetplanError("not_found", `no server ${JSON.stringify(arg)} in the inventory`);
      io.stdout(config.json ? `${JSON.stringify({ ok: true, removed: arg })}\n` : `removed ${arg}\n`);
      return 0;
    }
    case "list": {
      if (flags["prometheus-sd"]) return listPrometheusSd(db.servers(flags.group ? { group: flags.group } : {}), flags.out, io);
      if (flags.out !== undefined) {
        throw new FleetplanError("invalid_argument", "server list --out FILE needs --prometheus-sd (it writes the file_sd file)");
      }
      const rows = db.servers(flags.group ? { group: flags.group } : {}).map(view);
      io.stdout(config.json ? `${JSON.stringify(rows)}\n`
        : formatTable(["host", "node key", "metrics", "ssh", "group", "bootstrapped"], rows.map((r) => [r.host, r.node_key_id, r.metrics, r.ssh, r.group, r.bootstrapped ? "yes" : "no"])));
      return 0;
    }
    default:
      throw new FleetplanError("invalid_argument", `unknown server command ${JSON.stringify(sub ?? "")}: use add, list, remove or import`);
  }
};
