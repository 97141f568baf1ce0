// Coded errors. The `reason` strings are a public contract: they appear verbatim in logs,
// in the `result` label of fleetplan_agent_envelopes_total, and in CLI `--json` output.

/** Why an envelope was rejected, in docs/protocol.md's verification order. */
export const RejectReason = {
  TooLarge: "too_large",
  Malformed: "malformed",
  UnsupportedVersion: "unsupported_version",
  BadSignature: "bad_signature",
  UntrustedSigner: "untrusted_signer",
  WrongTarget: "wrong_target",
  Expired: "expired",
  FromFuture: "from_future",
  Stale: "stale",
  Duplicate: "duplicate",
  DecryptFailed: "decrypt_failed",
  DecompressFailed: "decompress_failed",
  HashMismatch: "hash_mismatch",
  InvalidPlan: "invalid_plan",
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

/** Operational failures outside envelope verification. */
export const OpReason = {
  InvalidConfig: "invalid_config",
  InvalidArgument: "invalid_argument",
  InsecureKeyFile: "insecure_key_file",
  BadKey: "bad_key",
  NotFound: "not_found",
  StoreUnavailable: "store_unavailable",
  StoreTimeout: "store_timeout",
  StoreRejected: "store_rejected",
  /** NATS: a bucket does not exist (agents wait; `fleetplan store init` creates it). */
  StoreBucketMissing: "store_bucket_missing",
  /** NATS: a bucket lacks the layout agents need (republish, direct get); `fleetplan store init` updates it. */
  StoreLayoutOutdated: "store_layout_outdated",
  ValueTooLarge: "value_too_large",
  SshFailed: "ssh_failed",
  AgentMissing: "agent_missing",
  LedgerError: "ledger_error",
  Conflict: "conflict",
  Superseded: "superseded",
  MetricsUnavailable: "metrics_unavailable",
  /** A trust document in the store that does not parse or does not verify. */
  BadTrust: "bad_trust",
  /** A trust document that is not exactly the next version of the one in force (a skip or a fork). */
  TrustVersion: "trust_version",
  /** The newest trust version expired before it was adopted. */
  TrustExpired: "trust_expired",
  /** A freshness (heartbeat) record that does not parse. */
  BadFreshness: "bad_freshness",
  /** Another live coordinator process holds the rollout's lease. */
  RolloutBusy: "rollout_busy",
  /** `push --wait`: the agent's metrics stopped answering and it sent no status. */
  AgentDown: "agent_down",
  /** A record read from one host's key that names another host. */
  WrongHost: "wrong_host",
  /** An output record not sealed to any admin key given. */
  NotARecipient: "not_a_recipient",
  /** A host registered without an identity key: its signed records cannot be checked. */
  NoIdentityKey: "no_identity_key",
} as const;
export type OpReason = (typeof OpReason)[keyof typeof OpReason];

export type Reason = RejectReason | OpReason;

/** Base for every error fleetplan throws on purpose: a stable code plus a human message. */
export class FleetplanError<R extends string = Reason> extends Error {
  readonly reason: R;
  constructor(reason: R, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.reason = reason;
  }
}

/** An envelope failed one step of docs/protocol.md's verification order. */
export class EnvelopeError extends FleetplanError<RejectReason> {
  /** Provisioning id from the header, when it could be parsed (for logging only). */
  readonly id: number | undefined;
  constructor(reason: RejectReason, message: string, id?: number, options?: { cause?: unknown }) {
    super(reason, message, options);
    this.id = id;
  }
}

/** Benign rejections: a redelivery of what is already accepted must not raise alarms. */
export const isBenign = (reason: string): boolean => reason === RejectReason.Duplicate;

/** The reason code of any thrown value; unknown errors map to `internal`. */
export const reasonOf = (error: unknown): string => (error instanceof FleetplanError ? error.reason : "internal");
