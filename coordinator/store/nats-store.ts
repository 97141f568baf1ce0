import { connect, Empty, headers } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { FleetplanError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import { natsConnectOptions } from "../../shared/nats-options.ts";
import { withRetry } from "../../shared/retry.ts";
import { PUT_CAS_ROUNDS } from "../../shared/store-config.ts";
import { directGetSubject, kvSubject, logsBucket } from "../../shared/store-layout.ts";
import type { PlanStore, PutResult, StatusRecord, StoreConfig } from "../../shared/types.ts";
import { ensureStoreLayout } from "./nats-layout.ts";
import { createReplyMux } from "./reply-mux.ts";

// JetStream's answers to a put whose expected last sequence is not the key's (StreamWrongLastSequence[Unknown]).
const WRONG_LAST_SEQUENCE = new Set([10071, 10164]);

const DECODER = new TextDecoder();

/** A PubAck's stored sequence, or null when the compare-and-set lost (the key is not at the expected revision). */
const judgePubAck = (data: Uint8Array, host: string): number | null => {
  let ack: { seq?: unknown; error?: { description?: string; err_code?: number } };
  try {
    ack = JSON.parse(DECODER.decode(data)) as typeof ack;
  } catch {
    throw new FleetplanError("store_rejected", `put ${host}: the reply is not a JetStream PubAck`);
  }
  if (ack.error && WRONG_LAST_SEQUENCE.has(ack.error.err_code ?? 0)) return null;
  if (ack.error)
    throw new FleetplanError("store_rejected", `put ${host}: ${ack.error.description ?? "refused"} (${ack.error.err_code ?? "?"})`);
  if (typeof ack.seq !== "number") throw new FleetplanError("store_rejected", `put ${host}: the PubAck has no sequence`);
  return ack.seq;
};

const unavailable = (config: StoreConfig, error: unknown) =>
  new FleetplanError("store_unavailable", `NATS at ${config.servers.join(",")}: ${(error as Error).message}`, { cause: error });

/** Coordinator side of NATS JetStream KV: put envelopes, read and follow agent status. */
export const createNatsStore = async (
  config: StoreConfig,
  opts: { logger: Logger; attempts?: number; putBudgetMs?: number },
): Promise<PlanStore> => {
  const log = opts.logger;
  const retry = {
    attempts: opts.attempts ?? 4,
    onRetry: (e: unknown, n: number, ms: number) =>
      log.warn("store_retry", { op: "connect", attempt: n, retry_ms: ms, error: (e as Error).message }),
  };
  const nc: NatsConnection = await withRetry(() => connect(natsConnectOptions(config, { name: "fleetplan", forever: false })), retry).catch(
    (e) => {
      throw unavailable(config, e);
    },
  );
  // Missing buckets are created with the full layout; an outdated one stops here (store_layout_outdated).
  const openBuckets = async (): Promise<[KV, KV]> => {
    await ensureStoreLayout(nc, config, { update: false });
    const kvm = new Kvm(nc);
    const open = (bucket: string) => kvm.open(bucket, { timeout: config.timeoutMs });
    return Promise.all([open(config.planBucket), open(config.statusBucket)]);
  };
  const [plans, statuses] = await openBuckets().catch(async (e) => {
    await nc.close();
    throw e instanceof FleetplanError ? e : unavailable(config, e);
  });
  const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
  // Revisions count per stream, and a recreated bucket starts them again: a remembered base counts only in this one.
  const epoch = await plans.status().then(
    (s) => `${config.planBucket}@${s.streamInfo.created}`,
    async (e) => {
      await nc.close();
      throw unavailable(config, e);
    },
  );

  // The puts' requests: one reply subscription, one timer for all (reply-mux.ts). A put attempt has a deadline;
  // each of its requests waits at most the store timeout within it.
  const mux = createReplyMux(nc, config.inboxPrefix, Math.max(10, Math.min(250, config.timeoutMs / 10)));
  const attemptMs = 3 * config.timeoutMs + 1_000;
  const request = (host: string, subject: string, data: Uint8Array, attemptEnd: number, h?: ReturnType<typeof headers>) => {
    const timeoutEnd = performance.now() + config.timeoutMs;
    const expired = () =>
      timeoutEnd < attemptEnd
        ? new Error(`no answer from NATS within ${config.timeoutMs} ms`)
        : new FleetplanError("store_timeout", `put ${host} timed out after ${attemptMs} ms`);
    return mux.request(subject, data, { ...(h && { headers: h }), deadline: Math.min(timeoutEnd, attemptEnd), expired });
  };

  // The value a put judges. First a direct get: one request, and a missing key is a 404, not a JetStream API error
  // built per host. After a conflict, a get through the stream's leader, which a lagging follower cannot answer stale.
  type Current = { revision: number; live: Uint8Array | null } | null;
  const readCurrent = async (host: string, round: number, attemptEnd: number): Promise<Current> => {
    if (round > 0) {
      const entry = await plans.get(host);
      return entry && { revision: entry.revision, live: entry.operation === "PUT" ? entry.value : null };
    }
    const reply = await request(host, directGetSubject(config.planBucket, host), Empty, attemptEnd);
    const h = reply.headers;
    if (h?.code === 404) return null;
    const revision = Number(h?.get("Nats-Sequence"));
    if (!h || !(revision > 0)) {
      throw new FleetplanError("store_unavailable", `direct get of ${host}: ${h?.code ?? "no headers"} ${h?.description ?? ""}`.trim());
    }
    const op = h.get("KV-Operation");
    return { revision, live: op === "DEL" || op === "PURGE" ? null : reply.data };
  };

  // A put on condition that the key is at `expected` (0: absent), as one plain request with JetStream's header:
  // null when it is not. Lighter on the main thread than nats.js's kv.update, which builds errors for async stacks.
  const casPut = async (host: string, envelope: Uint8Array, expected: number, attemptEnd: number): Promise<number | null> => {
    const h = headers();
    h.set("Nats-Expected-Last-Subject-Sequence", String(expected));
    const reply = await request(host, kvSubject(config.planBucket, host), envelope, attemptEnd, h);
    return judgePubAck(reply.data, host);
  };

  // Compare-and-set against the value read: a write that landed in between fails the put with
  // "wrong last sequence", and the value is read and judged again. With a base (the revision our last put to this key
  // left, remembered by the coordinator; 0 for a host never delivered to), first a put on it without any read: only a
  // write since then by someone else, a lost answer or a recreated bucket makes it read. Many run at once (push.ts): requests are pipelined.
  type Keep = ((current: Uint8Array) => string | null) | undefined;
  const putOnce = async (host: string, envelope: Uint8Array, keep: Keep, base?: Required<PutResult>): Promise<number> => {
    const attemptEnd = performance.now() + attemptMs;
    if (base && (base.revision === 0 || base.epoch === epoch)) {
      const revision = await casPut(host, envelope, base.revision, attemptEnd);
      if (revision !== null) return revision;
    }
    for (let round = 0; round < PUT_CAS_ROUNDS; round++) {
      const current = await readCurrent(host, round, attemptEnd);
      // These very bytes (sealing is randomised): an earlier attempt landed and its answer was lost, e.g. to a leader change.
      if (current?.live && Buffer.from(current.live).equals(envelope)) return current.revision;
      const why = current?.live && keep ? keep(current.live) : null;
      if (why) throw new FleetplanError("superseded", `${host}: ${why}`);
      const revision = await casPut(host, envelope, current?.revision ?? 0, attemptEnd);
      if (revision !== null) return revision;
    }
    throw new FleetplanError(
      "conflict",
      `${host}: its envelope changed under ${PUT_CAS_ROUNDS} puts in a row (other coordinators publishing?)`,
    );
  };

  // A put issued while the server is down hangs for the JetStream timeout and throws, even after
  // a reconnect (docs/dependencies.md): each attempt is bounded (attemptMs, by the mux's deadlines) and retried with
  // jittered backoff. One attempt: a put on the base, a read and a put, and one more read and put after a conflict.
  const put: PlanStore["put"] = async (host, envelope, keep, base) => {
    if (envelope.length > maxPayload - 4096) {
      throw new FleetplanError(
        "value_too_large",
        `envelope for ${host} is ${envelope.length} bytes; the NATS server's max_payload is ${maxPayload} bytes (raise max_payload in nats-server.conf)`,
      );
    }
    const revision = await withRetry(
      () => putOnce(host, envelope, keep, base),
      // Retried for a time budget, not a count: a cluster electing a new leader refuses puts for seconds.
      {
        attempts: opts.attempts ?? Infinity,
        budgetMs: opts.putBudgetMs ?? 30_000,
        isPermanent: (e) => e instanceof FleetplanError && e.reason === "superseded",
        onRetry: (e, n, ms) => log.warn("store_retry", { op: "put", host, attempt: n, retry_ms: ms, error: (e as Error).message }),
      },
    ).catch((e) => {
      throw e instanceof FleetplanError ? e : unavailable(config, e);
    });
    return { revision, epoch };
  };

  const revision: PlanStore["revision"] = async (host) => (await plans.get(host))?.revision ?? null;

  // Read every status with one ordered watch of the last values: one round trip, not one per host.
  const readStatuses = async (): Promise<StatusRecord[]> => {
    const result: StatusRecord[] = [];
    const keys = (await statuses.status()).values;
    if (keys === 0) return result;
    const watcher = await statuses.watch({ include: KvWatchInclude.LastValue });
    const timer = setTimeout(() => watcher.stop(), config.timeoutMs);
    for await (const e of watcher) {
      if (e.operation === "PUT") result.push({ key: e.key, value: e.value });
      if (e.delta === 0) break;
    }
    clearTimeout(timer);
    watcher.stop();
    return result;
  };

  // On a connection of its own, closed with the watch: this CLI's connection gives up after a few
  // reconnects, and a caller that starts the watch again after a longer store outage needs a live one.
  // Ends (returns) when that connection closes; throws store_unavailable when it cannot be opened.
  const watchStatuses: PlanStore["watchStatuses"] = async (onRecord, signal) => {
    const conn = await connect(natsConnectOptions(config, { name: "fleetplan-watch", forever: false })).catch((e) => {
      throw unavailable(config, e);
    });
    try {
      const bucket = await new Kvm(conn).open(config.statusBucket, { timeout: config.timeoutMs });
      const watcher = await bucket.watch({ include: KvWatchInclude.LastValue }).catch((e) => {
        throw unavailable(config, e);
      });
      const stop = () => watcher.stop();
      signal.addEventListener("abort", stop, { once: true });
      if (signal.aborted) stop();
      try {
        for await (const e of watcher) {
          if (e.operation === "PUT") onRecord({ key: e.key, value: e.value });
        }
      } finally {
        signal.removeEventListener("abort", stop);
      }
    } finally {
      await conn.close();
    }
  };

  // A host's sealed output records, newest first: the logs bucket keeps the last few per host.
  const outputs: NonNullable<PlanStore["outputs"]> = async (host) => {
    const bucket = await new Kvm(nc).open(logsBucket(config), { timeout: config.timeoutMs });
    const found: Uint8Array[] = [];
    const history = await bucket.history({ key: host });
    for await (const e of history) if (e.operation === "PUT") found.unshift(e.value);
    return found;
  };

  return {
    kind: "nats",
    put,
    revision,
    statuses: readStatuses,
    watchStatuses,
    outputs,
    close: async () => {
      mux.close();
      await nc.drain().catch(() => nc.close());
    },
  };
};
