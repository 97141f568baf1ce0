import { existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseCountFlag } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import { parseDuration } from "../../shared/duration.ts";
import { sealEnvelope } from "../../shared/envelope.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { writeFileAtomic } from "../../shared/files.ts";
import { loadAdminKey, loadNodePublicKey, writeNewKey, writeNewKeyAt } from "../../shared/key-files.ts";
import { formatTrust } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { isValidHostname } from "../../shared/wire.ts";
import type { CoordinatorConfig } from "../config.ts";
import { loadPlanFile } from "../plan-source.ts";
import { bindPlan, planSaltKey } from "../plan-salt.ts";

const print = (io: CliIo, json: boolean, value: Record<string, unknown>, text: string) =>
  io.stdout(json ? `${JSON.stringify({ ok: true, ...value })}\n` : text);

/** `init`, after the database and `configFile` are written: an admin key at the first --admin-key path if missing; the trust file. */
export const init = async (config: CoordinatorConfig, io: CliIo, configFile: string): Promise<number> => {
  await sodiumReady();
  const keyPath = config.adminKeys[0]!;
  const created = !existsSync(keyPath);
  if (created) writeNewKeyAt(keyPath, "admin");
  const keys = config.adminKeys.map(loadAdminKey);
  const trust = formatTrust(keys.map((k) => k.publicKey));
  const value = {
    db: config.db,
    config_file: configFile,
    admin_key: keyPath,
    created_key: created,
    key_ids: keys.map((k) => k.keyId),
    trust,
  };
  print(
    io,
    config.json,
    value,
    `database ${config.db}\nsettings ${configFile}\nadmin key ${keyPath}${created ? " (created)" : ""}\n\nInstall this trust file on every agent (/etc/fleetplan/trust):\n${trust}`,
  );
  return 0;
};

/** `keygen admin --out DIR`: DIR/admin.key (0600) and DIR/admin.pub. */
export const adminKeygen = async (dir: string, config: CoordinatorConfig, io: CliIo): Promise<number> => {
  await sodiumReady();
  const key = writeNewKey(dir, "admin");
  print(
    io,
    config.json,
    { key_id: key.keyId, private: key.privatePath, public: key.publicPath, public_key: key.publicText },
    `admin key ${key.keyId}\n  private: ${key.privatePath} (0600)\n  public:  ${key.publicPath}\n${key.publicText}\n`,
  );
  return 0;
};

/** `trust [--threshold K]`: the trust file for the configured admin keys; K from 1 to their number, as agents require. */
export const printTrust = async (config: CoordinatorConfig, thresholdText: string | undefined, io: CliIo): Promise<number> => {
  await sodiumReady();
  const keys = config.adminKeys.map(loadAdminKey);
  const threshold = parseCountFlag("--threshold", thresholdText ?? "1", new Set(keys.map((k) => k.keyId)).size);
  const trust = formatTrust(
    keys.map((k) => k.publicKey),
    threshold,
  );
  print(io, config.json, { trust, key_ids: keys.map((k) => k.keyId), threshold }, trust);
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
  if (!Number.isSafeInteger(id) || id <= 0)
    throw new FleetplanError("invalid_argument", `--id: ${flags.id} must be a positive integer ≤ 2^53−1`);
  if (!isValidHostname(flags.target!))
    throw new FleetplanError("invalid_argument", `--target: ${JSON.stringify(flags.target)} is not a hostname`);
  const outDir = dirname(resolve(flags.out!));
  if (!statSync(outDir, { throwIfNoEntry: false })?.isDirectory())
    throw new FleetplanError("not_found", `--out: directory ${outDir} does not exist`);
  await sodiumReady();
  const signers = config.adminKeys.map(loadAdminKey);
  const plan = bindPlan(loadPlanFile(flags.plan!).plan, planSaltKey(signers[0]!), flags.target!);
  const now = Date.now();
  const envelope = sealEnvelope(plan.bytes, {
    id,
    target: flags.target!,
    nodePublicKey: loadNodePublicKey(flags["node-key"]!).publicKey,
    signers,
    issued: now,
    expires: now + parseDuration(flags.expires ?? "24h", "--expires"),
  });
  writeFileAtomic(flags.out!, envelope, 0o644);
  print(
    io,
    config.json,
    { out: flags.out, id, target: flags.target, plan_hash: plan.hash, bytes: envelope.length },
    `sealed ${flags.out}: id ${id} for ${flags.target}, plan ${plan.hash.slice(0, 16)}…, ${envelope.length} bytes\n`,
  );
  return 0;
};
