import { connect } from "@nats-io/transport-node";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { FleetplanError, reasonOf } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import { natsConnectOptions } from "../../shared/nats-options.ts";
import { backoffDelay } from "../../shared/retry.ts";
import { defaultInboxPrefix, logsBucket, notifySubject } from "../../shared/store-layout.ts";
import { freshKey, TRUST_KEYS } from "../../shared/trust-layout.ts";
import type { FeedEvents, PlanFeed, StoreConfig } from "../../shared/types.ts";
import { directGet, putRecord } from "./nats-direct.ts";
import type { KeyRead } from "./nats-direct.ts";

// Notices are the delivery path; this re-read (± 50 %) only catches one that was lost.
const SAFETY_NET_MS = 60_000;
// A read behind a notice (a follower answered) is retried this many times before the safety net takes over.
const BEHIND_RETRIES = 5;

/** The last message taken: its stream sequence and store time. */
export interface Delivered {
  seq: number;
  time: number;
}

/**
 * What a read means against what was delivered (pure): `new` to take; `reset` when the sequence did
 * not grow but the message is younger (the bucket was recreated or restored: sequences start again);
 * `old` otherwise (nothing new, or a follower behind the leader).
 */
export const judgeRead = (last: Delivered, read: { seq: number; time: number }): "new" | "reset" | "old" =>
  read.seq > last.seq ? "new" : read.time > last.time ? "reset" : "old";

/** A wake-up flag: set by notices and reconnects, awaited by the one reader with a timer. */
const createWake = (signal: AbortSignal) => {
  let dirty = true;
  let release: (() => void) | undefined;
  return {
    set: () => {
      dirty = true;
      release?.();
    },
    wait: async (ms: number): Promise<boolean> => {
      if (!dirty && !signal.aborted) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          release = () => {
            clearTimeout(timer);
            resolve();
          };
          signal.addEventListener("abort", release, { once: true });
        });
        if (release) signal.removeEventListener("abort", release);
        release = undefined;
      }
      const woken = dirty;
      dirty = false;
      return woken;
    },
  };
};

/** The promise's value, or undefined after `ms`; the timer does not outlive the answer. */
const withinMs = <T>(promise: Promise<T>, ms: number): Promise<T | undefined> => {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, ms, undefined)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
};

const jitter = (ms: number): number => Math.round(ms * (0.5 + Math.random()));

/**
 * Agent side of NATS JetStream KV, with no consumer and no bucket handle: subscribe to this host's
 * notices (the plan bucket republishes a headers-only copy of every put), and read the key with a
 * direct get at start, on every notice newer than what was delivered, after every reconnect, after
 * a failure (with backoff) and about once a minute as a safety net. Only the latest value matters.
 */
export const createNatsFeed = (config: StoreConfig, opts: { logger: Logger; safetyNetMs?: number }): PlanFeed => {
  const log = opts.logger;
  const closed = new AbortController();
  const wake = createWake(closed.signal);
  const safetyNetMs = opts.safetyNetMs ?? SAFETY_NET_MS;
  let nc: NatsConnection | undefined;
  // Resolved once the first connection is open: a status published at start waits for it
  // (bounded) instead of failing and logging on every start.
  let opened!: (conn: NatsConnection) => void;
  const firstConnection = new Promise<NatsConnection>((resolve) => (opened = resolve));
  let last: Delivered = { seq: 0, time: 0 };
  let noticed = 0; // highest sequence a notice announced since the last reset
  let connected = false;

  const onNotice = (error: Error | null, msg: Msg): void => {
    if (error) {
      // E.g. a credential that does not allow this subject: only the safety-net re-read delivers then.
      log.error("store_notice_failed", { error: error.message, subject: msg?.subject });
      return;
    }
    const seq = Number(msg.headers?.get("Nats-Sequence"));
    if (seq === last.seq) return;
    if (seq > noticed) noticed = seq;
    wake.set();
  };

  const followConnection = async (conn: NatsConnection, events: FeedEvents): Promise<void> => {
    for await (const s of conn.status()) {
      if (s.type === "disconnect") {
        connected = false;
        events.onConnection?.(false);
        log.warn("store_disconnected", { server: String(s.server) });
      } else if (s.type === "reconnect") {
        connected = true;
        events.onConnection?.(true);
        log.info("store_reconnected", { server: String(s.server) });
        wake.set(); // notices sent while away are lost: read the key again
      }
    }
  };

  // Connect (nats.js then reconnects forever) and subscribe before the first read, so no put between
  // the read and the subscription can go unnoticed.
  const open = async (host: string, events: FeedEvents): Promise<NatsConnection> => {
    const conn = await connect(
      natsConnectOptions(
        { ...config, inboxPrefix: config.inboxPrefix ?? defaultInboxPrefix(host) },
        {
          name: `fleetplan-agent/${host}`,
          forever: true,
        },
      ),
    );
    // close() ran while the first connect was pending (it waits for the server forever): nothing else would close it.
    if (closed.signal.aborted) {
      await conn.close();
      throw new FleetplanError("store_unavailable", "the feed was closed while connecting");
    }
    try {
      conn.subscribe(notifySubject(config, host), { callback: onNotice });
      // Trust documents and this host's freshness record: notices only wake agent/trust-chain.ts.
      for (const [key, kind] of [
        [TRUST_KEYS, "trust"],
        [freshKey(host), "fresh"],
      ] as const) {
        conn.subscribe(notifySubject(config, key), {
          callback: (error) => (error ? log.warn("store_notice_failed", { error: error.message, key }) : events.onSideNotice?.(kind)),
        });
      }
      await conn.flush();
    } catch (error) {
      await conn.close();
      throw error;
    }
    void followConnection(conn, events);
    connected = true;
    events.onConnection?.(true);
    log.info("store_connected", { store: config.servers.join(","), server: conn.getServer() });
    return conn;
  };

  // Read the key and hand a newer value to the agent. A revision counts as delivered only once the
  // agent took it: when onEnvelope throws (the ledger could not record it), this throws and the
  // caller reads it again after a backoff. Delete and purge markers advance without delivering.
  const readOnce = async (conn: NatsConnection, host: string, events: FeedEvents, woken: boolean): Promise<void> => {
    const read: KeyRead = await directGet(conn, config.planBucket, host, config.timeoutMs);
    if (read.found) {
      const verdict = judgeRead(last, read);
      if (verdict === "reset") {
        log.warn("store_revision_reset", { revision: read.seq, delivered: last.seq });
        last = { seq: 0, time: 0 };
        noticed = 0;
      }
      if (verdict !== "old") {
        if (!woken) log.warn("store_notice_missed", { revision: read.seq, delivered: last.seq });
        if (!read.deleted) await events.onEnvelope(read.value, read.seq);
        last = { seq: read.seq, time: read.time };
      }
    }
    if (noticed > last.seq) throw new FleetplanError("store_unavailable", `read revision ${last.seq}, a notice announced ${noticed}`);
  };

  const follow = async (host: string, events: FeedEvents): Promise<void> => {
    let conn: NatsConnection | undefined;
    for (let attempt = 0, behind = 0, waitMs = 0; !closed.signal.aborted; ) {
      const woken = await wake.wait(waitMs);
      if (closed.signal.aborted) break;
      try {
        if (!conn) opened((conn = nc = await open(host, events)));
        await readOnce(conn, host, events, woken || attempt > 0);
        attempt = behind = 0;
        waitMs = jitter(safetyNetMs);
      } catch (error) {
        if (closed.signal.aborted) break;
        if (noticed > last.seq && ++behind > BEHIND_RETRIES) noticed = last.seq;
        waitMs = backoffDelay(attempt++, { initialMs: 500, maxMs: 30_000 });
        // Silence while disconnected is the outage (logged as such), not a missing bucket.
        const reason = connected && reasonOf(error) === "store_bucket_missing" ? "store_bucket_missing" : "store_read_failed";
        log.warn(reason, { error: (error as Error).message, retry_ms: waitMs });
      }
    }
  };

  // A plain request to the status key's subject, checked by its PubAck: no bucket handle is needed.
  const putStatus = async (host: string, record: Uint8Array): Promise<void> => {
    const conn = nc ?? (await withinMs(firstConnection, config.timeoutMs));
    if (!conn) throw new FleetplanError("store_unavailable", `not connected to NATS within ${config.timeoutMs} ms`);
    await putRecord(conn, config.statusBucket, host, record, config.timeoutMs);
  };

  // One direct get of a key beside the plans (trust documents, freshness): null when missing or deleted.
  const readSide = async (key: string): Promise<Uint8Array | null> => {
    const conn = nc ?? (await withinMs(firstConnection, config.timeoutMs));
    if (!conn) throw new FleetplanError("store_unavailable", `not connected to NATS within ${config.timeoutMs} ms`);
    const read = await directGet(conn, config.planBucket, key, config.timeoutMs);
    return read.found && !read.deleted ? read.value : null;
  };

  const close = async (): Promise<void> => {
    closed.abort();
    await nc?.drain().catch(() => nc?.close());
  };

  // The sealed output of a failed run, the same way under this host's key of the logs bucket.
  const putOutput = async (host: string, record: Uint8Array): Promise<void> => {
    const conn = nc ?? (await withinMs(firstConnection, config.timeoutMs));
    if (!conn) throw new FleetplanError("store_unavailable", `not connected to NATS within ${config.timeoutMs} ms`);
    await putRecord(conn, logsBucket(config), host, record, config.timeoutMs);
  };

  return { kind: "nats", follow, putStatus, putOutput, readSide, close };
};
