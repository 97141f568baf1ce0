import {
  Algorithms,
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
  fromSeed,
} from "@nats-io/jwt";
import type { Account, ClaimsData, KeyPair, User } from "@nats-io/jwt";
import { ENROLL_BUCKET, ENROLL_INBOX_PREFIX } from "../../shared/enrollment.ts";
import { defaultInboxPrefix, directGetSubject, kvStream, kvSubject, logsBucket, notifySubject } from "../../shared/store-layout.ts";
import { freshKey, TRUST_KEYS } from "../../shared/trust-layout.ts";
import type { StoreConfig } from "../../shared/types.ts";
import { fastKeyPair } from "./nkey-signer.ts";

// NATS decentralized auth for fleetplan: one operator, one account holding the buckets, and a
// user per host plus one for the coordinator, each user JWT signed by the account key. Pure:
// keys and JWTs in, JWTs and text out; cli/credentials.ts does the file I/O.

/** The buckets and subject prefixes the permissions are cut from. */
export type StoreLayout = Pick<StoreConfig, "planBucket" | "statusBucket" | "notifyPrefix">;

/** What one identity may publish to and subscribe to; everything else is denied by the server. */
export interface SubjectPermissions {
  pub: string[];
  sub: string[];
}

/** The signing keys behind every credential: kept under DIR/keys, never printed. */
export interface Authority {
  operator: KeyPair;
  account: KeyPair;
  /** nats-server needs a system account in operator mode; nobody gets credentials for it. */
  system: KeyPair;
}

/** An account's revoked user keys: user public key → unix seconds (JWTs issued up to then are refused). */
export type Revocations = Record<string, number>;

const ALG = { algorithm: Algorithms.v2 };
const CONNECTION_TYPES: User["allowed_connection_types"] = ["STANDARD", "WEBSOCKET"];
// -1 = unlimited. Limits left out of an account JWT mean 0: no connections, no subscriptions (and
// nats.js then reports a connect timeout, not the server's error). JetStream is enabled by its storage.
const ACCOUNT_LIMITS = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
};

/** A node reads its own plan (direct get), writes its own status and sealed output, hears its own notices and replies: nothing more. */
export const hostPermissions = (layout: StoreLayout, host: string): SubjectPermissions => ({
  pub: [
    directGetSubject(layout.planBucket, host),
    kvSubject(layout.statusBucket, host),
    kvSubject(logsBucket(layout), host),
    // Trust documents (every version) and its own freshness record, beside the plans (shared/trust-layout.ts).
    directGetSubject(layout.planBucket, TRUST_KEYS),
    directGetSubject(layout.planBucket, freshKey(host)),
  ],
  sub: [
    notifySubject(layout, host),
    `${defaultInboxPrefix(host)}.>`,
    notifySubject(layout, TRUST_KEYS),
    notifySubject(layout, freshKey(host)),
  ],
});

/** The JetStream API and key subjects of one KV bucket's stream (found by running Kvm create/open/get/update/watch). */
const bucketSubjects = (bucket: string): string[] => {
  const stream = kvStream(bucket);
  return [
    `$JS.API.STREAM.*.${stream}`,
    `$JS.API.STREAM.MSG.*.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.*.${stream}`,
    `$JS.API.CONSUMER.*.${stream}.>`,
    `$JS.FC.${stream}.>`,
    kvSubject(bucket, ">"),
  ];
};

/** The coordinator owns the fleetplan buckets (plans, status, enrollment) and nothing else in the account. */
export const coordinatorPermissions = (layout: StoreLayout): SubjectPermissions => ({
  pub: [
    "$JS.API.INFO",
    ...bucketSubjects(layout.planBucket),
    ...bucketSubjects(layout.statusBucket),
    ...bucketSubjects(logsBucket(layout)),
    ...bucketSubjects(ENROLL_BUCKET),
  ],
  sub: ["_INBOX.>"],
});

/**
 * The shared bootstrap credential of not-yet-enrolled nodes: put an announcement into the enrollment
 * bucket and hear the PubAck on the bootstrap reply prefix. No plan, status or JetStream API subject.
 */
export const bootstrapPermissions = (): SubjectPermissions => ({
  pub: [kvSubject(ENROLL_BUCKET, ">")],
  sub: [`${ENROLL_INBOX_PREFIX}.>`],
});

const fastAuthority = (authority: Authority): Authority => ({
  operator: fastKeyPair(authority.operator, "O"),
  account: fastKeyPair(authority.account, "A"),
  system: fastKeyPair(authority.system, "A"),
});

/** Fresh operator, account and system keys for a new credentials directory. */
export const createAuthority = (): Authority =>
  fastAuthority({ operator: createOperator(), account: createAccount(), system: createAccount() });

/** Keys back from their seeds (the DIR/keys/*.nk files). */
export const authorityFromSeeds = (seeds: Record<keyof Authority, string>): Authority =>
  fastAuthority({
    operator: fromSeed(new TextEncoder().encode(seeds.operator)),
    account: fromSeed(new TextEncoder().encode(seeds.account)),
    system: fromSeed(new TextEncoder().encode(seeds.system)),
  });

/** The user claims a credential carries: its subjects, and client connections only (plain or WebSocket; no leaf nodes). */
export const userClaims = (perms: SubjectPermissions): Partial<User> => ({
  pub: { allow: perms.pub },
  sub: { allow: perms.sub },
  allowed_connection_types: CONNECTION_TYPES,
});

/** A user's credentials file (JWT + seed) for `credsFile` / `--creds`; a new user key unless `seed` is given. */
export const issueCreds = async (authority: Authority, name: string, perms: SubjectPermissions, seed?: string): Promise<Uint8Array> => {
  const user = fastKeyPair(seed === undefined ? createUser() : fromSeed(new TextEncoder().encode(seed)), "U");
  const jwt = await encodeUser(name, user, authority.account, userClaims(perms), ALG);
  return fmtCreds(jwt, user);
};

/** Whether a credential already says what it should (issuer, name, permissions): then it is kept as it is, unsigned again. */
export const credsCurrent = (claims: ClaimsData<User>, authority: Authority, name: string, perms: SubjectPermissions): boolean => {
  const pick = (c: Partial<User>) => JSON.stringify([c.pub, c.sub, c.allowed_connection_types]);
  return claims.iss === authority.account.getPublicKey() && claims.name === name && pick(claims.nats) === pick(userClaims(perms));
};

const SECTION = /-----BEGIN [A-Z ]+-----\s*\n\s*(\S+)\s*\n/g;

/**
 * A JWT's claims, its signature not checked: these are our own files under DIR (whoever can write
 * there holds the account key anyway), and @nats-io/jwt's decode verifies in JavaScript (~15 ms each).
 */
export const readClaims = <T>(jwt: string): ClaimsData<T> =>
  JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8")) as ClaimsData<T>;

/** The JWT and seed in a credentials file, or null when the text is not one. */
export const parseCredsText = (text: string): { jwt: string; seed: string; claims: ClaimsData<User> } | null => {
  const [jwt, seed] = [...text.matchAll(SECTION)].map((m) => m[1]!);
  if (jwt === undefined || seed === undefined) return null;
  try {
    return { jwt, seed, claims: readClaims<User>(jwt) };
  } catch {
    return null;
  }
};

/** Whether two JWTs say the same thing (issuer, subject, name, claims); issue time and id aside. */
export const sameClaims = (a: string, b: string): boolean => {
  const pick = (jwt: string) => {
    const c = readClaims(jwt);
    return JSON.stringify([c.iss, c.sub, c.name, c.nats]);
  };
  try {
    return pick(a) === pick(b);
  } catch {
    return false;
  }
};

/** The operator, account and system account JWTs the server configuration preloads. */
export const authorityJwts = async (authority: Authority, revocations: Revocations) => {
  const system = authority.system.getPublicKey();
  const account: Partial<Account> = { limits: ACCOUNT_LIMITS, ...(Object.keys(revocations).length > 0 && { revocations }) };
  return {
    operator: await encodeOperator("fleetplan", authority.operator, { system_account: system }, ALG),
    account: await encodeAccount("fleetplan", authority.account, account, { ...ALG, signer: authority.operator }),
    system: await encodeAccount("SYS", authority.system, {}, { ...ALG, signer: authority.operator }),
  };
};

/** nats-server.conf text: includable from the server's main configuration (which sets port, JetStream, TLS). */
export const serverConfigText = (authority: Authority, jwts: { operator: string; account: string; system: string }): string =>
  [
    "# fleetplan: NATS decentralized auth, written by `fleetplan store credentials`.",
    "# Include it from nats-server's main configuration (`include ./fleetplan-auth.conf`); JetStream must be enabled there.",
    "# Users are not listed here: each credentials file carries a user JWT signed by the account key.",
    `operator: ${jwts.operator}`,
    `system_account: ${authority.system.getPublicKey()}`,
    "resolver: MEMORY",
    "resolver_preload: {",
    `  ${authority.account.getPublicKey()}: ${jwts.account}`,
    `  ${authority.system.getPublicKey()}: ${jwts.system}`,
    "}",
    "",
  ].join("\n");

const JWT_LINE = /^(?:operator:|\s+[A-Z0-9]{56}:)\s*(\S+)\s*$/gm;

/** The JWTs in a nats-server.conf written by serverConfigText, in its order (operator, account, system). */
export const jwtsInConfig = (text: string): string[] => [...text.matchAll(JWT_LINE)].map((m) => m[1]!);
