// Coordinator side of Consul KV: publish envelopes to fleetplan/plans/<host>, read and follow
// fleetplan/status/. Request rules, the watch loop and the HTTP exchange live in
// shared/consul-*.ts; this file only hands them node:http(s).

import { readFileSync } from "node:fs";
import { readPrivateBytes } from "../../shared/files.ts";
import * as http from "node:http";
import * as https from "node:https";
import { type ConsulOptions, createConsulClient, exchange, watchKv } from "../../shared/consul-client.ts";
import { consulTransport } from "../../shared/consul-transport.ts";
import { type KvEntry, kvGetRequest, kvPutRequest, parseKvCasWrite, parseKvRead } from "../../shared/consul-kv.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { CONSUL_PREFIX, PUT_CAS_ROUNDS } from "../../shared/store-config.ts";
import type { PlanStore, PutResult, StatusRecord, StoreConfig } from "../../shared/types.ts";

/**
 * A PlanStore over Consul KV. A put is refused before upload when over `maxValueBytes`; its
 * revision is the key's ModifyIndex, read back (consistent) after the write because Consul's
 * PUT answers only `true`. `watchStatuses` hands over every current status first, then each
 * key whose ModifyIndex changed, until its signal or close() aborts it.
 */
export const createConsulStore = (config: StoreConfig, opts: ConsulOptions = {}): PlanStore => {
  const transport = consulTransport(config, {
    http,
    https,
    readFile: readFileSync,
    readPrivateFile: (path) => readPrivateBytes(path, "TLS key"),
  });
  const { client, close: abort } = createConsulClient(config, opts, transport.send);
  const { tuning } = client;
  const watches = new Set<Promise<void>>();

  const read = (key: string, recurse = false) =>
    exchange(client, kvGetRequest(config, key, { recurse, consistent: !recurse }), parseKvRead);

  // Compare-and-set (?cas=) against the value read: a write in between makes Consul answer
  // false, and the value is read and judged again.
  const put = async (host: string, envelope: Uint8Array, keep?: (current: Uint8Array) => string | null): Promise<PutResult> => {
    const key = CONSUL_PREFIX.plans + host;
    for (let round = 0; round < PUT_CAS_ROUNDS; round++) {
      const current = (await read(key)).entries.find((e) => e.key === key);
      const why = current && keep ? keep(current.value) : null;
      if (why) throw new FleetplanError("superseded", `${host}: ${why}`);
      const request = kvPutRequest(config, key, envelope, `plan envelope for ${host}`, tuning.maxValueBytes, current?.modifyIndex ?? 0);
      if (!(await exchange(client, request, parseKvCasWrite))) continue;
      const entry = (await read(key)).entries.find((e) => e.key === key);
      if (!entry || Buffer.compare(entry.value, envelope) !== 0) {
        throw new FleetplanError(
          "conflict",
          `consul: ${key} changed again before its revision could be read (another coordinator publishing?)`,
        );
      }
      return { revision: entry.modifyIndex };
    }
    throw new FleetplanError("conflict", `consul: ${key} changed under ${PUT_CAS_ROUNDS} puts in a row (other coordinators publishing?)`);
  };

  const revision = async (host: string): Promise<number | null> => {
    const key = CONSUL_PREFIX.plans + host;
    return (await read(key)).entries.find((e) => e.key === key)?.modifyIndex ?? null;
  };

  // The store key names the host; what the record claims is checked by the coordinator.
  const toRecord = (entry: KvEntry): StatusRecord => ({ key: entry.key.slice(CONSUL_PREFIX.status.length), value: entry.value });

  const statuses = async (): Promise<StatusRecord[]> =>
    (await read(CONSUL_PREFIX.status, true)).entries.filter((e) => e.key.length > CONSUL_PREFIX.status.length).map(toRecord);

  const watchStatuses = async (onRecord: (record: StatusRecord) => void, signal: AbortSignal): Promise<void> => {
    const seen = new Map<string, number>();
    const watch = watchKv(client, {
      request: (index) => kvGetRequest(config, CONSUL_PREFIX.status, { recurse: true, index, waitMs: tuning.waitMs }),
      onRead: (entries) => {
        for (const entry of entries) {
          if (seen.get(entry.key) === entry.modifyIndex || entry.key.length <= CONSUL_PREFIX.status.length) continue;
          seen.set(entry.key, entry.modifyIndex);
          onRecord(toRecord(entry));
        }
      },
      signal: AbortSignal.any([signal, client.signal]),
    });
    watches.add(watch);
    await watch.finally(() => watches.delete(watch));
  };

  const close = async (): Promise<void> => {
    abort();
    await Promise.allSettled(watches);
    transport.destroy();
  };

  // Consul keeps only the latest output record of a host.
  const outputs = async (host: string): Promise<Uint8Array[]> => {
    const key = CONSUL_PREFIX.logs + host;
    return (await read(key)).entries.filter((e) => e.key === key).map((e) => e.value);
  };

  return { kind: "consul", put, revision, statuses, watchStatuses, outputs, close };
};
