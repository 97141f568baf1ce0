import { existsSync, mkdirSync, readdirSync, statSync, unlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import type { CliIo } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { readPrivateFile, readTextFile, writeFileAtomic } from "../../shared/files.ts";
import type { CoordinatorConfig } from "../config.ts";
import { openCoordinatorDb } from "../db.ts";
import type { CoordinatorDb } from "../db.ts";
import { bootstrapConsulPolicy, coordinatorConsulPolicy, hostConsulPolicy } from "../store/consul-acl.ts";
import {
  authorityFromSeeds,
  authorityJwts,
  bootstrapPermissions,
  coordinatorPermissions,
  createAuthority,
  credsCurrent,
  hostPermissions,
  issueCreds,
  jwtsInConfig,
  parseCredsText,
  sameClaims,
  serverConfigText,
} from "../store/nats-credentials.ts";
import type { Authority, Revocations, SubjectPermissions } from "../store/nats-credentials.ts";
import type { StoreContext } from "./store.ts";

export interface CredentialsFlags {
  out?: string;
  consul?: boolean;
  rotate?: boolean;
}

/** What happened to one file; `kept` files were left byte for byte as they were. */
type Action = "created" | "kept" | "updated" | "rotated" | "revoked" | "written" | "unchanged";
interface Step {
  file: string;
  action: Action;
  write?: Uint8Array | string;
}

/** What every credential of one run is issued with; `revocations` collects the user keys it retires. */
interface Issuer {
  authority: Authority;
  rotate: boolean;
  revocations: Revocations;
  now: number;
}

const KEY_NAMES = ["operator", "account", "system"] as const;
const CREDS = ".creds";
const USAGE = "usage: fleetplan store credentials --out DIR [--consul] [--rotate]";

const privateDir = (dir: string): string => {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!statSync(dir).isDirectory()) throw new FleetplanError("invalid_argument", `--out: ${dir} is not a directory`);
  return dir;
};

const seedText = (authority: Authority, key: (typeof KEY_NAMES)[number]) => new TextDecoder().decode(authority[key].getSeed());

/** The signing keys under DIR/keys: all three or none (then created); never printed. */
const loadAuthority = (keysDir: string): { authority: Authority; steps: Step[] } => {
  const paths = KEY_NAMES.map((k) => join(keysDir, `${k}.nk`));
  const present = paths.filter((p) => existsSync(p));
  if (present.length === 0) {
    const authority = createAuthority();
    return { authority, steps: KEY_NAMES.map((k, i) => ({ file: paths[i]!, action: "created" as const, write: seedText(authority, k) })) };
  }
  if (present.length < paths.length) {
    const missing = paths.filter((p) => !present.includes(p)).join(", ");
    throw new FleetplanError(
      "not_found",
      `${keysDir} is incomplete (missing ${missing}): restore it from your backup, or use a new --out DIR and re-issue every credential`,
    );
  }
  const seeds = Object.fromEntries(KEY_NAMES.map((k, i) => [k, readPrivateFile(paths[i]!, `NATS ${k} seed`).trim()]));
  try {
    return { authority: authorityFromSeeds(seeds as Record<(typeof KEY_NAMES)[number], string>), steps: [] };
  } catch (error) {
    const why = (error as Error).message;
    throw new FleetplanError("bad_key", `${keysDir}: a seed file is not an nkey seed (${why}); restore it from your backup`);
  }
};

/**
 * One identity's credentials file: a new user key if there is none (or with --rotate, revoking the
 * old one), else the same user key, re-signed only when its permissions changed. A file that is
 * not ours is never replaced silently.
 */
const planCreds = async (issuer: Issuer, file: string, name: string, perms: SubjectPermissions): Promise<Step> => {
  const { authority, revocations } = issuer;
  if (!existsSync(file)) return { file, action: "created", write: await issueCreds(authority, name, perms) };
  const current = parseCredsText(readPrivateFile(file, "credentials file"));
  const ours = current !== null && current.claims.iss === authority.account.getPublicKey();
  if (issuer.rotate) {
    if (ours) revocations[current.claims.sub] = issuer.now;
    return { file, action: "rotated", write: await issueCreds(authority, name, perms) };
  }
  if (!ours) {
    const why = current === null ? "is not a NATS credentials file" : "was issued by another account key than the one in keys/";
    throw new FleetplanError("conflict", `${file} ${why}; pass --rotate to replace it with new keys, or remove it`);
  }
  if (credsCurrent(current.claims, authority, name, perms)) return { file, action: "kept" };
  return { file, action: "updated", write: await issueCreds(authority, name, perms, current.seed) };
};

/** Credentials of hosts no longer in the inventory: revoked in the account JWT and removed. */
const planRemoved = (issuer: Issuer, hostsDir: string, hosts: Set<string>): Step[] =>
  readdirSync(hostsDir)
    .filter((f) => f.endsWith(CREDS) && !hosts.has(f.slice(0, -CREDS.length)))
    .map((f) => {
      const file = join(hostsDir, f);
      const current = parseCredsText(readPrivateFile(file, "credentials file"));
      if (current?.claims.iss === issuer.authority.account.getPublicKey()) issuer.revocations[current.claims.sub] = issuer.now;
      return { file, action: "revoked" as const };
    });

// User keys revoked so far (rotated or removed hosts): the account JWT lists them all.
const readRevocations = (file: string): Revocations => {
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readTextFile(file, "revocations")) as Revocations;
  } catch (error) {
    if (error instanceof FleetplanError) throw error;
    throw new FleetplanError("invalid_argument", `${file} is not JSON (${(error as Error).message}); restore it from your backup`);
  }
};

/** The server configuration; JWTs already there are kept while they say the same, so the text changes only with the claims. */
const planServerConfig = async (file: string, authority: Authority, revocations: Revocations): Promise<Step> => {
  const fresh = await authorityJwts(authority, revocations);
  const old = existsSync(file) ? readTextFile(file, "nats-server.conf") : "";
  const [operator, account, system] = jwtsInConfig(old);
  const keep = (o: string | undefined, f: string) => (o !== undefined && sameClaims(o, f) ? o : f);
  const jwts = { operator: keep(operator, fresh.operator), account: keep(account, fresh.account), system: keep(system, fresh.system) };
  const text = serverConfigText(authority, jwts);
  return text === old ? { file, action: "unchanged" } : { file, action: old === "" ? "created" : "written", write: text };
};

const natsSteps = async (dir: string, hosts: string[], config: CoordinatorConfig, rotate: boolean): Promise<Step[]> => {
  const keysDir = privateDir(join(dir, "keys"));
  const hostsDir = privateDir(join(dir, "hosts"));
  const { authority, steps } = loadAuthority(keysDir);
  const revocationsFile = join(keysDir, "revocations.json");
  const issuer: Issuer = { authority, rotate, revocations: readRevocations(revocationsFile), now: Math.floor(Date.now() / 1000) };
  const before = JSON.stringify(issuer.revocations);
  steps.push(await planCreds(issuer, join(dir, "coordinator.creds"), "coordinator", coordinatorPermissions(config.store)));
  // Shared by new nodes for `fleetplan-agent enroll`: it may only put announcements.
  steps.push(await planCreds(issuer, join(dir, "bootstrap.creds"), "bootstrap", bootstrapPermissions()));
  for (const host of hosts) {
    steps.push(await planCreds(issuer, join(hostsDir, `${host}${CREDS}`), host, hostPermissions(config.store, host)));
  }
  steps.push(...planRemoved(issuer, hostsDir, new Set(hosts)));
  if (JSON.stringify(issuer.revocations) !== before) {
    steps.push({ file: revocationsFile, action: "written", write: `${JSON.stringify(issuer.revocations, null, 2)}\n` });
  }
  steps.push(await planServerConfig(join(dir, "nats-server.conf"), authority, issuer.revocations));
  return steps;
};

const consulSteps = (dir: string, hosts: string[]): Step[] => {
  const consulDir = privateDir(join(dir, "consul"));
  const hostsDir = privateDir(join(consulDir, "hosts"));
  const step = (file: string, text: string): Step => {
    if (!existsSync(file)) return { file, action: "created", write: text };
    return readTextFile(file, "policy") === text ? { file, action: "unchanged" } : { file, action: "written", write: text };
  };
  const coordinator = step(join(consulDir, "coordinator.hcl"), coordinatorConsulPolicy());
  const bootstrap = step(join(consulDir, "bootstrap.hcl"), bootstrapConsulPolicy());
  return [coordinator, bootstrap, ...hosts.map((h) => step(join(hostsDir, `${h}.hcl`), hostConsulPolicy(h)))];
};

const nextSteps = (dir: string, consul: boolean, reload: boolean): string[] =>
  consul
    ? [
        "Create one policy per file (consul acl policy create -name fleetplan-HOST -rules @FILE) and a token per host with it;" +
          " the agent reads it from storeOptions.token.",
        "bootstrap.hcl is for new nodes' `fleetplan-agent enroll` (one shared token, in the file given to --bootstrap-creds).",
      ]
    : [
        reload
          ? `Install ${dir}/nats-server.conf on the server (include it from its config), then reload nats-server` +
            " (SIGHUP, or nats-server --signal reload=PID)."
          : "nats-server.conf is unchanged: no reload needed.",
        `Copy ${dir}/hosts/HOST.creds to each node (mode 0600, owned by the agent's user) and set storeOptions.credsFile in agent.json.`,
        `Run the coordinator with --creds ${dir}/coordinator.creds (or FLEETPLAN_CREDS).`,
        `New nodes enroll with ${dir}/bootstrap.creds (fleetplan-agent enroll --bootstrap-creds FILE): it may only put announcements.`,
      ];

/** `store credentials --out DIR [--consul] [--rotate]`: per-host least-privilege NATS credentials (or Consul ACL policies). */
export const credentialsCommand = async (
  flags: CredentialsFlags,
  config: CoordinatorConfig,
  db: CoordinatorDb,
  io: CliIo,
): Promise<number> => {
  if (!flags.out) throw new FleetplanError("invalid_argument", USAGE);
  if (flags.consul && flags.rotate) {
    throw new FleetplanError(
      "invalid_argument",
      "--rotate is for NATS credentials; Consul tokens are rotated in Consul (consul acl token update)",
    );
  }
  const dir = privateDir(resolve(flags.out));
  const hosts = db.servers().map((s) => s.host);
  // Everything is decided before anything is written: a conflict leaves DIR as it was.
  const steps = flags.consul ? consulSteps(dir, hosts) : await natsSteps(dir, hosts, config, flags.rotate ?? false);
  for (const step of steps) {
    if (step.write !== undefined) writeFileAtomic(step.file, step.write, 0o600);
    else if (step.action === "revoked") unlinkSync(step.file);
  }
  const reload = steps.some((s) => s.file.endsWith("nats-server.conf") && s.action !== "unchanged");
  const next = nextSteps(dir, flags.consul ?? false, reload);
  if (config.json) {
    const files = steps.map(({ file, action }) => ({ file, action }));
    io.stdout(`${JSON.stringify({ ok: true, dir, hosts: hosts.length, files, next })}\n`);
  } else {
    io.stdout(`${steps.map((s) => `${s.action.padEnd(9)} ${s.file}`).join("\n")}\n\n${next.join("\n")}\n`);
  }
  return 0;
};

/** The `store credentials` entry of the store dispatch, which runs before main opens a database: the inventory is opened here. */
export const storeCredentials = async (ctx: StoreContext): Promise<number> => {
  const { config, values, io } = ctx;
  if (!existsSync(config.db)) throw new FleetplanError("not_found", `no database at ${config.db}; run \`fleetplan init\` (or pass --db)`);
  const db = openCoordinatorDb(config.db);
  try {
    return await credentialsCommand(values as CredentialsFlags, config, db, io);
  } finally {
    db.close();
  }
};
