// Types only (plus const-object enums). Implementations live beside them.

/** A file the plan writes atomically before its steps run. Content is secret by default. */
export interface PlanFile {
  path: string;
  /** Octal permission bits, e.g. 0o640 (JSON: a number, or a string such as "0640"). */
  mode: number;
  owner?: string;
  group?: string;
  /** base64 */
  content: string;
}

/** One bash script, run with `bash -euo pipefail`. `env` values are secret. */
export interface PlanStep {
  name: string;
  run: string;
  timeout_s?: number;
  env?: Record<string, string>;
}

/**
 * The plaintext plan. `id` and `target` are optional: when present they must match the
 * envelope header. The coordinator leaves them out so that `plan_hash` names the content
 * alone and an unchanged plan can be recognised as converged across provisioning ids.
 * Version 2 adds `salt`: a per-host secret of the coordinator's, so that the plan hash a
 * store reader sees confirms no guess of the content.
 */
export interface Plan {
  kind: "fleetplan/plan";
  v: 1 | 2;
  /** v2 only: 64 hex digits, the same for every plan of one host (see coordinator/plan-salt.ts). */
  salt?: string;
  id?: number;
  target?: string;
  files: PlanFile[];
  steps: PlanStep[];
}

/** Signed envelope header (canonical JSON on the wire). */
export interface EnvelopeHeader {
  v: 1;
  id: number;
  target: string;
  /** Node key id (hex) of the recipient's X25519 key. */
  recipient: string;
  /** unix ms */
  issued: number;
  /** unix ms */
  expires: number;
  /** BLAKE2b-256 hex of the plaintext plan bytes. */
  plan_hash: string;
  plan_size: number;
  codec: "zstd";
}

/** Parsed wire form: nothing in it is trusted until signatures are checked. */
export interface EnvelopeParts {
  header: EnvelopeHeader;
  headerBytes: Uint8Array;
  ciphertext: Uint8Array;
  /** Every byte the signatures cover (after the domain prefix). */
  signed: Uint8Array;
  signatures: { keyId: string; sig: Uint8Array }[];
}

export interface AdminKeyPair {
  keyId: string;
  publicKey: Uint8Array;
  /** libsodium Ed25519 secret key (64 bytes: seed ‖ public key). */
  privateKey: Uint8Array;
}

export interface NodeKeyPair {
  keyId: string;
  publicKey: Uint8Array;
  privateKey: Uint8Array;
  /** Ed25519 pair derived from the X25519 private key (nodeIdentityFromPrivate): signs status records. */
  identity: { publicKey: Uint8Array; privateKey: Uint8Array };
}

export interface PublicKeyRef {
  keyId: string;
  publicKey: Uint8Array;
}

/** The admin keys an agent accepts and how many distinct ones must sign. */
export interface TrustSet {
  keys: Map<string, Uint8Array>;
  threshold: number;
}

export interface SealOptions {
  id: number;
  target: string;
  nodePublicKey: Uint8Array;
  signers: AdminKeyPair[];
  /** unix ms */
  expires: number;
  /** unix ms; defaults to Date.now() */
  issued?: number;
  /** zstd level, default 3 */
  level?: number;
}

export interface OpenOptions {
  hostname: string;
  nodeKeys: NodeKeyPair;
  trust: TrustSet;
  /** Highest id ever accepted (0 when none) and that envelope's hash, from the ledger. */
  highWaterMark: { id: number; planHash: string | null };
  /** unix ms */
  now: number;
  limits?: Partial<EnvelopeLimits>;
}

export interface EnvelopeLimits {
  maxEnvelopeBytes: number;
  maxHeaderBytes: number;
  maxPlanBytes: number;
  /** Allowed clock skew for `issued`, ms. */
  clockSkewMs: number;
}

/** What openEnvelope hands on to the ledger and executor. */
export interface OpenedEnvelope {
  header: EnvelopeHeader;
  signerIds: string[];
  plan: Plan;
}

/** Agent run states, as published to the status bucket. */
export const AgentState = {
  Idle: "idle",
  Running: "running",
  Succeeded: "succeeded",
  Failed: "failed",
  Interrupted: "interrupted",
  Rejected: "rejected",
} as const;
export type AgentState = (typeof AgentState)[keyof typeof AgentState];

/** Live status an agent publishes under its hostname (docs/protocol.md, Stores). */
export interface AgentStatus {
  host: string;
  state: AgentState;
  /** Provisioning id the state refers to (for `rejected`: the rejected envelope's id). */
  id: number | null;
  plan_hash: string | null;
  /** Step position only: names would be plan content in clear (docs/protocol.md, status records). */
  step_index: number | null;
  steps: number | null;
  /** unix ms when this state began */
  since: number;
  /** unix seconds, /proc/stat btime */
  boot_time: number;
  /** reason code of the last outcome: `succeeded`, `failed`, a reject reason, ... */
  result: string | null;
  /** Last successfully applied id/hash, so one status read answers convergence. */
  applied_id: number | null;
  applied_hash: string | null;
  applied_boot_time: number | null;
  version: string;
  /** A failed run only (absent from older agents' records): stable code, e.g. step_failed, step_timeout, file_outside_roots. */
  failure_reason?: string | null;
  /** Exit code of the failing step (null: killed, timed out by signal, or no step ran). */
  exit_code?: number | null;
  /** 0-based index of the failing step, null when no step ran (files). */
  failed_step?: number | null;
  /** Files of the applied plan that no longer match what it wrote (agent/drift.ts); null before a check, absent from older agents. */
  drifted_files?: number | null;
}

export const StoreKind = { Nats: "nats", Consul: "consul" } as const;
export type StoreKind = (typeof StoreKind)[keyof typeof StoreKind];

export interface TlsOptions {
  ca?: string;
  cert?: string;
  key?: string;
}

/** Normalised store selection, shared by agent and coordinator. */
export interface StoreConfig {
  kind: StoreKind;
  /** For NATS, every server URL; for Consul, the single base URL (http/https). */
  servers: string[];
  planBucket: string;
  statusBucket: string;
  /** KV replicas when the buckets are created (NATS cluster). */
  replicas: number;
  /** Timeout for one store request, ms. */
  timeoutMs: number;
  /** NATS: the plan bucket republishes a notice of each put to `<notifyPrefix>.<host>`. */
  notifyPrefix: string;
  /** NATS: reply subject prefix of this connection (agents: defaultInboxPrefix(host)). */
  inboxPrefix?: string;
  user?: string;
  pass?: string;
  /** NATS token, or Consul ACL token. */
  token?: string;
  /** NATS .creds file. */
  credsFile?: string;
  tls?: TlsOptions;
  /** Consul datacenter. */
  datacenter?: string;
}

/** A status value read from the store, with the host its store key names (not the host it claims). */
export interface StatusRecord {
  key: string;
  value: Uint8Array;
}

export interface PutResult {
  /** Store revision (NATS sequence, Consul ModifyIndex) of the new value. */
  revision: number;
  /** The store instance that revision counts in (NATS: bucket and stream creation time); a recreated bucket starts again. */
  epoch?: string;
}

/** Coordinator side of a store: publish envelopes, read and follow agent status. */
export interface PlanStore {
  readonly kind: string;
  /**
   * Publish `envelope` as `host`'s latest, conditional on the value it replaces (compare-and-set:
   * a concurrent write makes it read again). `keep` says why the current value must stay (the
   * put then fails `superseded`), or null to replace it. `base`: what an earlier put of ours returned for
   * `host`; while the key is still at that revision, the put replaces it without reading it first. Revision 0 (any
   * epoch): the caller never delivered to `host`, so the put first assumes the key absent.
   */
  put(host: string, envelope: Uint8Array, keep?: (current: Uint8Array) => string | null, base?: Required<PutResult>): Promise<PutResult>;
  /** Latest envelope revision per host (for dry-run checks and diagnostics). */
  revision(host: string): Promise<number | null>;
  /** Every status record as stored: nothing in one is evidence until the coordinator verified it. */
  statuses(): Promise<StatusRecord[]>;
  /** Calls onRecord for every status record written, current ones first, until the signal aborts. */
  watchStatuses(onRecord: (record: StatusRecord) => void, signal: AbortSignal): Promise<void>;
  /** The sealed output records a host stored (shared/output-seal.ts), newest first; unverified. */
  outputs?(host: string): Promise<Uint8Array[]>;
  close(): Promise<void>;
}

export interface FeedEvents {
  /** Called once per stored revision, one at a time (awaited). */
  onEnvelope(envelope: Uint8Array, revision: number): Promise<void>;
  onConnection?(connected: boolean): void;
  /** NATS: a trust document or this host's freshness record was put (agent/trust-chain.ts reads it). */
  onSideNotice?(kind: "trust" | "fresh"): void;
}

/** Agent side of a store: follow this host's envelope key, publish this host's status. */
export interface PlanFeed {
  readonly kind: string;
  /** Delivers the latest envelope, then every new one; re-reads after each reconnect. */
  follow(host: string, events: FeedEvents): Promise<void>;
  /** Store this host's signed status record under its own status key. */
  putStatus(host: string, record: Uint8Array): Promise<void>;
  /** Read a store key beside the plans (shared/trust-layout.ts), null when missing. */
  readSide?(key: string): Promise<Uint8Array | null>;
  /** Store this host's sealed output record (a failed run's tail) under its own logs key. */
  putOutput?(host: string, record: Uint8Array): Promise<void>;
  close(): Promise<void>;
}
