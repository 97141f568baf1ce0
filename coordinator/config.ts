import { dirname, join, resolve } from "node:path";
import { FleetplanError } from "../shared/errors.ts";
import { normalizeStoreConfig } from "../shared/store-config.ts";
import type { StoreConfig } from "../shared/types.ts";

/** Coordinator settings: global flags over FLEETPLAN_* env vars over defaults. */
export interface CoordinatorConfig {
  db: string;
  store: StoreConfig;
  /** Admin private keys that sign every envelope (several for k-of-n trust sets). */
  adminKeys: string[];
  json: boolean;
}

export interface CoordinatorFlags {
  db?: string;
  store?: string;
  "admin-key"?: string[];
  replicas?: string;
  json?: boolean;
}

/** Validate once; one `invalid_config` error lists every problem. */
export const normalizeCoordinatorConfig = (flags: CoordinatorFlags, env: NodeJS.ProcessEnv = process.env): CoordinatorConfig => {
  const problems: string[] = [];
  const db = resolve(flags.db ?? env.FLEETPLAN_DB ?? "fleetplan.db");
  const replicas = flags.replicas ?? env.FLEETPLAN_REPLICAS;
  const store = normalizeStoreConfig({ url: flags.store ?? env.FLEETPLAN_STORE, ...(replicas !== undefined && { replicas: Number(replicas) }) }, problems, env);
  const fromEnv = env.FLEETPLAN_ADMIN_KEY ? env.FLEETPLAN_ADMIN_KEY.split(",") : [];
  const adminKeys = (flags["admin-key"]?.length ? flags["admin-key"] : fromEnv.length ? fromEnv : [defaultAdminKey(db)]).map((p) => resolve(p));
  if (problems.length > 0) throw new FleetplanError("invalid_config", `invalid configuration:\n  - ${problems.join("\n  - ")}`);
  return { db, store, adminKeys, json: flags.json ?? false };
};

/** `fleetplan init` keeps the admin key beside the database unless told otherwise. */
export const defaultAdminKey = (db: string): string => join(dirname(db), "keys", "admin.key");
