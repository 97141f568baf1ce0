import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { CliIo } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { writeFileAtomic } from "../../shared/files.ts";
import { configFilePath, loadConfigFile, REMEMBERED } from "../config.ts";
import type { ConfigFileSettings, CoordinatorConfig, CoordinatorFlags, RememberedName } from "../config.ts";

const PATH_SETTINGS = new Set<RememberedName>(["creds", "tls-ca", "tls-cert", "tls-key"]);

// A password in a URL would sit in a file others may back up or show: the store has --creds and env for secrets.
const refuseSecret = (name: RememberedName, value: string): void => {
  const hasPassword = value.split(",").some((part) => {
    try {
      return new URL(part.trim()).password !== "";
    } catch {
      return false;
    }
  });
  if (hasPassword) {
    throw new FleetplanError(
      "invalid_argument",
      `--${name}: the URL holds a password, which init will not write to the config file; ` +
        "give the store credentials with --creds FILE (or $NATS_TOKEN / $CONSUL_HTTP_TOKEN, or the URL in $FLEETPLAN_STORE)",
    );
  }
};

/** What `init` will write: the file's settings with the flags given on top (paths made absolute); refuses URL passwords. */
export const settingsToRemember = (flags: CoordinatorFlags, config: CoordinatorConfig): { path: string; settings: ConfigFileSettings } => {
  const { path, settings } = loadConfigFile(config.db);
  const merged: ConfigFileSettings = { ...settings };
  for (const name of Object.keys(REMEMBERED) as RememberedName[]) {
    const given = flags[name];
    if (given === undefined) continue;
    refuseSecret(name, given);
    merged[name] = PATH_SETTINGS.has(name) ? resolve(given) : given;
  }
  return { path, settings: merged };
};

/** Write the remembered settings beside the database, atomically and private (0600): paths and URLs, never keys. */
export const writeRemembered = ({ path, settings }: { path: string; settings: ConfigFileSettings }): void =>
  writeFileAtomic(path, `${JSON.stringify(settings, null, 2)}\n`, 0o600);

/** `config show`: every setting in force and where it came from (flag, env, file, default). */
export const configShow = (config: CoordinatorConfig, io: CliIo): number => {
  const file = configFilePath(config.db);
  if (config.json) {
    io.stdout(`${JSON.stringify({ ok: true, file, settings: config.sources })}\n`);
    return 0;
  }
  const width = Math.max(...config.sources.map((s) => s.name.length));
  const lines = config.sources.map((s) => `${s.name.padEnd(width)}  ${s.value ?? "(not set)"}  [${s.source}]`);
  io.stdout(`config file ${file}${existsSync(file) ? "" : " (none: run `fleetplan init --store URL ...`)"}\n${lines.join("\n")}\n`);
  return 0;
};
