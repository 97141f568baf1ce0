import { FleetplanError } from "../../shared/errors.ts";
import type { Options } from "../../shared/cli.ts";
import { configFromEnv, normalizeAgentConfig, readConfigFile } from "../config.ts";
import type { AgentConfig, AgentConfigInput } from "../config.ts";

/** Flags every agent subcommand accepts (each uses what it needs). */
export const CONFIG_FLAGS = {
  config: { type: "string" },
  hostname: { type: "string" },
  store: { type: "string" },
  "node-key": { type: "string" },
  trust: { type: "string" },
  "state-dir": { type: "string" },
  "log-dir": { type: "string" },
  "metrics-listen": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

type ConfigFlagValues = { [K in keyof typeof CONFIG_FLAGS]?: (typeof CONFIG_FLAGS)[K]["type"] extends "boolean" ? boolean : string };

/** Config from file < env < flags, validated once. */
export const agentConfigFrom = (values: ConfigFlagValues, env: NodeJS.ProcessEnv = process.env): AgentConfig => {
  const problems: string[] = [];
  const file = readConfigFile(values.config ?? env.FLEETPLAN_CONFIG, problems);
  const flags: AgentConfigInput = Object.fromEntries(
    Object.entries({
      hostname: values.hostname,
      store: values.store,
      nodeKey: values["node-key"],
      trust: values.trust,
      stateDir: values["state-dir"],
      logDir: values["log-dir"],
      metricsListen: values["metrics-listen"],
    }).filter(([, v]) => v !== undefined),
  );
  return normalizeAgentConfig([file, configFromEnv(env), flags], env, problems);
};

/** Exactly one positional argument, or a usage error naming what is missing. */
export const onePositional = (positionals: string[], what: string): string => {
  if (positionals.length !== 1) throw new FleetplanError("invalid_argument", `expected exactly one ${what}, got ${positionals.length}`);
  return positionals[0]!;
};
