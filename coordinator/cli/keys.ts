import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { CliIo } from "../../shared/cli.ts";
import { parseDuration } from "../../shared/duration.ts";
import { sealEnvelope } from "../../shared/envelope.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { writeFileAtomic } from "../../shared/files.ts";
import { loadAdminKey, loadNodePublicKey, writeNewKey } from "../../shared/key-files.ts";
import { formatTrust } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { isValidHostname } from "../../shared/wire.ts";
import type { CoordinatorConfig } from "../config.ts";
import { openCoordinatorDb } from "../db.ts";
import { loadPlanFile } from "../plan-source.ts";

const print = (io: CliIo, json: boolean, value: Record<string, unknown>, text: string) =>
  io.stdout(json ? `${JSON.stringify({ ok: true, ...value })}\n` : text);

/** `init`: the database and, if missing, an admin key beside it; prints the trust file. */
export const init = async (config: CoordinatorConfig, io: CliIo): Promise<number> => {
  await sodiumReady();
  mkdirSync(dirname(config.db), { recursive: true, mode: 0o700 });
  openCoordinatorDb(config.db).close();
  const keyPath = config.adminKeys[0]!;
  const created = !existsSync(keyPath);
  if (created) writeNewKey(dirname(keyPath), "admin");
  const keys = config.adminKeys.map(loadAdminKey);
  const trust = formatTrust(keys.map((k) => k.publicKey));
  print(io, config.json, { db: config.db, admin_key: keyPath, created_key: created, key_ids: keys.map((k) => k.keyId), trust },
    `database ${config.db}\nadmin key ${keyPath}${created ? " (created)" : ""}\n\nInstall this trust file on every agent (/etc/fleetplan/trust):\n${trust}`);
  return 0;
};

/** `keygen admin --out DIR`: DIR/admin.key (0600) and DIR/admin.pub. */
export const adminKeygen = async (dir: string, config: CoordinatorConfig, io: CliIo): Promise<number> => {
  await sodiumReady();
  const key = writeNewKey(dir, "admin");
  print(io, config.json, { key_id: key.keyId, private: key.privatePath, public: key.publicPath, public_key: key.publicText },
    `admin key ${key.keyId}\n  private: ${key.privatePath} (0600)\n  public:  ${key.publicPath}\n${key.publicText}\n`);
  return 0;
};

/** `trust [--threshold K]`: the trust file for the configured admin keys. */
export const printTrust = async (config: CoordinatorConfig, threshold: number, io: CliIo): Promise<number> => {
  await sodiumReady();
  io.stdout(formatTrust(config.adminKeys.map(loadAdminKey).map((k) => k.publicKey), threshold));
  return 0;
};

export interface SealFlags {
  plan?: string;
  target?: string;
  "node-key"?: string;
  id?: string;
  expires?: string;
  out?: string;
}

/** `seal`: one envelope file, for air-gapped or manual delivery. Bypasses the database. */
export const seal = async (flags: SealFlags, config: CoordinatorConfig, io: CliIo): Promise<number> => {
  const missing = (["plan", "target", "node-key", "id", "out"] as const).filter((k) => !flags[k]);
  if (missing.length > 0) throw new FleetplanError("invalid_argument", `seal needs ${missing.map((m) => `--${m}`).join(", ")}`);
  const id = Number(flags.id);
  if (!Number.isSafeInteger(id) || id <= 0) throw new FleetplanError("invalid_argument", `--id: ${flags.id} must be a positive integer ≤ 2^53−1`);
  if (!isValidHostname(flags.target!)) throw new FleetplanError("invalid_argument", `--target: ${JSON.stringify(flags.target)} is not a hostname`);
  await sodiumReady();
  const plan = loadPlanFile(flags.plan!);
  const now = Date.now();
  const envelope = sealEnvelope(plan.bytes, {
    id, target: flags.target!, nodePublicKey: loadNodePublicKey(flags["node-key"]!).publicKey,
    signers: config.adminKeys.map(loadAdminKey), issued: now, expires: now + parseDuration(flags.expires ?? "24h", "--expires"),
  });
  writeFileAtomic(flags.out!, envelope, 0o644);
  print(io, config.json, { out: flags.out, id, target: flags.target, plan_hash: plan.hash, bytes: envelope.length },
    `sealed ${flags.out}: id ${id} for ${flags.target}, plan ${plan.hash.slice(0, 16)}…, ${envelope.length} bytes\n`);
  return 0;
};

