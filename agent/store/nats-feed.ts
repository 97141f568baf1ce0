import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { setTimeout as sleep } from "node:timers/promises";
import { FleetplanError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import { bucketOptions, createOrOpen, natsConnectOptions } from "../../shared/nats-options.ts";
import { backoffDelay, withTimeout } from "../../shared/retry.ts";
import { encodeStatus } from "../../shared/status.ts";
import type { AgentStatus, FeedEvents, PlanFeed, StoreConfig } from "../../shared/types.ts";

// A watch whose consumer lived on a cluster node that died goes silent while this connection
// stays up: nats.js notices only after two missed 30 s heartbeats, 60-90 s later (measured in
// test/reliability/cluster.test.ts). Re-read the key this often; a watch still behind a moment
// later (a healthy one delivers within milliseconds) is restarted.
const RESYNC_MS = 10_000;
const RESYNC_GRACE_MS = 1_000;

const openBucket = (kvm: Kvm, name: string, opts: ReturnType<typeof bucketOptions>): Promise<KV> =>
  createOrOpen(() => kvm.create(name, opts), () => kvm.open(name, { timeout: opts.timeout }));

/**
 * Agent side of NATS JetStream KV: read the latest value of this host's key, then watch
 * from the next revision. Every reconnect restarts that cycle, so an update missed while
 * disconnected is read on return; revisions already delivered are never delivered again.
 */
export const createNatsFeed = (config: StoreConfig, opts: { logger: Logger }): PlanFeed => {
  const log = opts.logger;
  const closed = new AbortController();
  let nc: NatsConnection | undefined;
  let plans: KV | undefined;
  let statuses: KV | undefined;
  let stopWatch: (() => void) | undefined;

  // Connect once (nats.js then reconnects forever), and open the buckets until that succeeds:
  // JetStream may still be starting, or electing a leader, when the connection is up.
  const ensureConnection = async (host: string, events: FeedEvents): Promise<void> => {
    if (!nc) {
      nc = await connect(natsConnectOptions(config, { name: `fleetplan-agent/${host}`, forever: true }));
      void followConnection(nc, events);
    }
    if (plans && statuses) return;
    const kvm = new Kvm(nc);
    plans = await openBucket(kvm, config.planBucket, bucketOptions(config, 5));
    statuses = await openBucket(kvm, config.statusBucket, bucketOptions(config, 1));
    events.onConnection?.(true);
    log.info("store_connected", { store: config.servers.join(","), server: nc.getServer() });
  };

  const followConnection = async (conn: NatsConnection, events: FeedEvents): Promise<void> => {
    for await (const s of conn.status()) {
      if (s.type === "disconnect") {
        events.onConnection?.(false);
        log.warn("store_disconnected", { server: String(s.server) });
      } else if (s.type === "reconnect") {
        events.onConnection?.(true);
        log.info("store_reconnected", { server: String(s.server) });
        stopWatch?.(); // re-read the latest value: the watch may have missed updates
      }
    }
  };

  const follow = async (host: string, events: FeedEvents): Promise<void> => {
    let lastRevision = 0;
    // A revision counts as delivered only once the agent took it: when onEnvelope throws (the
    // ledger could not record it), the loop below backs off and reads it again. Delete and
    // purge markers advance the revision without delivering anything.
    const take = async (entry: { operation: string; value: Uint8Array; revision: number }) => {
      if (entry.revision <= lastRevision) return;
      if (entry.operation === "PUT") await events.onEnvelope(entry.value, entry.revision);
      lastRevision = entry.revision;
    };
    const resync = setInterval(() => {
      void (async () => {
        const latest = await plans?.get(host);
        if (!latest || latest.revision === lastRevision || closed.signal.aborted) return;
        if (latest.revision > lastRevision) {
          await sleep(RESYNC_GRACE_MS);
          if (latest.revision <= lastRevision || closed.signal.aborted) return;
          log.warn("store_watch_stalled", { revision: latest.revision, delivered: lastRevision });
        }
        // Stalled, or revisions went backwards: the loop reads the key again and starts over.
        stopWatch?.();
      })().catch(() => {}); // the store is unreachable: the watch loop reports that itself
    }, RESYNC_MS);
    resync.unref();
    closed.signal.addEventListener("abort", () => clearInterval(resync), { once: true });
    for (let attempt = 0; !closed.signal.aborted; ) {
      try {
        await ensureConnection(host, events);
        const latest = await plans!.get(host);
        if (latest && latest.revision < lastRevision) {
          // The bucket was recreated or restored: its revisions started again.
          log.warn("store_revision_reset", { revision: latest.revision, delivered: lastRevision });
          lastRevision = 0;
        }
        if (latest) await take(latest);
        const watcher = await plans!.watch({ key: host, resumeFromRevision: lastRevision + 1 });
        stopWatch = () => watcher.stop();
        attempt = 0;
        try {
          for await (const entry of watcher) await take(entry);
        } finally {
          watcher.stop();
        }
      } catch (error) {
        if (closed.signal.aborted) break;
        const delay = backoffDelay(attempt++, { initialMs: 500, maxMs: 30_000 });
        log.warn("store_watch_failed", { error: (error as Error).message, retry_ms: delay });
        await sleep(delay, undefined, { signal: closed.signal }).catch(() => {});
      }
    }
  };

  const putStatus = async (status: AgentStatus): Promise<void> => {
    if (!statuses) throw new FleetplanError("store_unavailable", "not connected to NATS yet");
    await withTimeout(statuses.put(status.host, encodeStatus(status), { timeout: config.timeoutMs }), config.timeoutMs + 1_000, () =>
      new FleetplanError("store_timeout", `status put timed out after ${config.timeoutMs} ms`));
  };

  const close = async (): Promise<void> => {
    closed.abort();
    stopWatch?.();
    await nc?.drain().catch(() => nc?.close());
  };

  return { kind: "nats", follow, putStatus, close };
};
