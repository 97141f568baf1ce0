// `server remove HOST --purge`: decommission a host. Its keys leave the store first (an unreachable
// store changes nothing), then the inventory, then its generated credentials.
import { existsSync, unlinkSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { CliIo } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import type { CoordinatorConfig } from "../config.ts";
import type { CoordinatorDb } from "../db.ts";
import { purgeHostKeys } from "../store/purge-host.ts";
import { credentialsCommand } from "./credentials.ts";

/** The flags `server remove --purge` takes beside --purge. */
export interface PurgeFlags {
  /** The --out DIR of `store credentials`; default: the directory of the coordinator's coordinator.creds. */
  "creds-dir"?: string;
}

/** The credentials directory: --creds-dir, else where `store credentials` put the coordinator's --creds file (pure). */
const credsDirOf = (flag: string | undefined, credsFile: string | undefined): string | undefined => {
  if (flag !== undefined) return resolve(flag);
  return credsFile !== undefined && basename(credsFile) === "coordinator.creds" ? dirname(resolve(credsFile)) : undefined;
};

// NATS: `store credentials` again, now without HOST: its user key is revoked in the account JWT
// (nats-server.conf, to reload) and HOST.creds deleted. Consul: the policy file goes; the policy
// and token live in Consul. Returns what was done, one line each.
const purgeCredentials = async (host: string, dir: string, config: CoordinatorConfig, db: CoordinatorDb): Promise<string[]> => {
  const done: string[] = [];
  const policy = join(dir, "consul", "hosts", `${host}.hcl`);
  if (existsSync(policy)) {
    unlinkSync(policy);
    done.push(`deleted ${policy}; in Consul: consul acl token delete (its token), consul acl policy delete -name fleetplan-${host}`);
  }
  if (existsSync(join(dir, "hosts", `${host}.creds`))) {
    let text = "";
    const quiet: CliIo = { stdout: (s) => void (text += s), stderr: (s) => void (text += s) };
    await credentialsCommand({ out: dir }, { ...config, json: false }, db, quiet);
    const relevant = text.split("\n").filter((l) => l.startsWith("revoked") || l.includes("nats-server.conf"));
    done.push(...relevant.map((l) => l.replace(/\s+/g, " ")));
  }
  return done;
};

/** Remove HOST from the store, the inventory and its credentials directory. */
export const removeAndPurge = async (
  host: string,
  flags: PurgeFlags,
  db: CoordinatorDb,
  config: CoordinatorConfig,
  io: CliIo,
): Promise<number> => {
  const dir = credsDirOf(flags["creds-dir"], config.store.credsFile);
  if (dir !== undefined && !existsSync(join(dir, "keys")) && !existsSync(join(dir, "consul"))) {
    throw new FleetplanError(
      "invalid_argument",
      `--creds-dir: ${dir} is not a \`fleetplan store credentials --out\` directory (no keys/ or consul/)`,
    );
  }
  const inInventory = db.servers().some((s) => s.host === host);
  const keys = await purgeHostKeys(config.store, host);
  if (inInventory) db.removeServer(host);
  const credentials = dir === undefined ? [] : await purgeCredentials(host, dir, config, db);
  if (config.json) {
    const result = { ok: true, removed: host, in_inventory: inInventory, store_keys: keys, creds_dir: dir ?? null, credentials };
    io.stdout(`${JSON.stringify(result)}\n`);
    return 0;
  }
  const lines = [
    inInventory ? `removed ${host}` : `${host} was not in the inventory: purged what the store and credentials still held`,
    ...keys.map((k) => `purged ${k.key}${k.removed === null ? "" : ` (${k.removed} values)`}`),
    ...credentials,
    dir === undefined
      ? "credentials not touched: pass --creds-dir DIR (the --out of fleetplan store credentials) to revoke and delete them"
      : credentials.length === 0
        ? `no credentials for ${host} in ${dir}`
        : "",
  ];
  io.stdout(`${lines.filter(Boolean).join("\n")}\n`);
  return 0;
};
