// The coordinator's Consul store against the Consul fake over real HTTP: put/revision,
// size limits, ACL denial, status records (raw bytes, judged by the caller) and their watch,
// with the agent feed publishing status.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { createConsulFeed } from "../../agent/store/consul-feed.ts";
import { createConsulStore } from "../../coordinator/store/consul-store.ts";
import type { ConsulOptions } from "../../shared/consul-client.ts";
import type { AgentStatus } from "../../shared/types.ts";
import { consulTestScope, type FakeConsul, putKey, storeConfigFor } from "../fakes/consul.ts";
import { waitFor } from "../helpers/ports.ts";
import { agentStatus } from "../helpers/status.ts";

const status = (host: string, state: AgentStatus["state"], id: number | null = null): AgentStatus => agentStatus({ host, state, id });
// The store does not judge records: any bytes do here (coordinator/status-evidence.ts verifies them).
const bytes = (s: AgentStatus) => new TextEncoder().encode(JSON.stringify(s));
const text = (value: Uint8Array) => new TextDecoder().decode(value);
const puts = (fake: FakeConsul) => fake.requests.filter((r) => r.method === "PUT").length;

const scope = consulTestScope();
const start = scope.start;
const storeOn = (fake: FakeConsul, opts: ConsulOptions & { token?: string } = {}) =>
  scope.defer(createConsulStore(storeConfigFor(fake, opts.token), { waitMs: 1_000, backoff: { initialMs: 20, maxMs: 100 }, ...opts }));

describe("consul store: envelopes", () => {
  it("puts an envelope and reports its ModifyIndex as the revision", async () => {
    const fake = await start({ initialIndex: 50 });
    const store = storeOn(fake);
    assert.equal(await store.revision("web-1"), null);
    const envelope = new Uint8Array([0x46, 0x50, 0x45, 0x31, 0, 255, 7]);
    assert.deepEqual(await store.put("web-1", envelope), { revision: 51 });
    assert.equal(await store.revision("web-1"), 51);
    const res = await fetch(`${fake.url}/v1/kv/fleetplan/plans/web-1`);
    const [entry] = (await res.json()) as { Value: string; ModifyIndex: number }[];
    assert.deepEqual(new Uint8Array(Buffer.from(entry!.Value, "base64")), envelope, "raw bytes went up unchanged");
    assert.deepEqual(await store.put("web-1", new Uint8Array([1])), { revision: 52 });
  });

  it("refuses an envelope over Consul's 512 KiB limit before uploading it", async () => {
    const fake = await start();
    const store = storeOn(fake);
    await assert.rejects(store.put("web-1", new Uint8Array(524_289)), (e: Error & { reason?: string }) => {
      assert.equal(e.reason, "value_too_large");
      assert.match(
        e.message,
        /plan envelope for web-1 is 524289 bytes, Consul's KV value limit is 524288 bytes \(raise limits\.kv_max_value_size/,
      );
      return true;
    });
    assert.equal(puts(fake), 0, "the fake saw no PUT");
  });

  it("reports a server-side 413 as value_too_large without retrying", async () => {
    const fake = await start({ maxValueBytes: 100 });
    const store = storeOn(fake);
    await assert.rejects(store.put("web-1", new Uint8Array(101)), { reason: "value_too_large" });
    assert.equal(puts(fake), 1);
  });

  it("retries an ACL denial a bounded number of times, then names it", async () => {
    const fake = await start({ token: "right" });
    const store = storeOn(fake, { token: "wrong", attempts: 3 });
    await assert.rejects(store.put("web-1", new Uint8Array(8)), {
      reason: "store_rejected",
      message: "consul: permission denied (check the ACL token)",
    });
    // The put's first request, reading the value it would replace, is refused three times.
    assert.equal(fake.requests.length, 3);
    assert.equal(puts(fake), 0);
  });

  it("reports an unreachable Consul as store_unavailable after its attempts", async () => {
    const fake = await start();
    const store = storeOn(fake, { attempts: 2 });
    await fake.stop();
    await assert.rejects(store.revision("web-1"), { reason: "store_unavailable" });
  });
});

describe("consul store: statuses", () => {
  it("reads every status record as stored, each with the host its key names (not the one it claims)", async () => {
    const fake = await start();
    const store = storeOn(fake);
    const feed = scope.defer(createConsulFeed(storeConfigFor(fake)));
    await feed.putStatus("web-1", bytes(status("web-1", "succeeded", 7)));
    await feed.putStatus("web-2", bytes(status("web-2", "running", 8)));
    assert.equal(await putKey(fake.url, "fleetplan/status/web-3", "{not json"), 200);
    assert.equal(await putKey(fake.url, "fleetplan/status/web-4", JSON.stringify(status("web-1", "failed"))), 200);
    const all = new Map((await store.statuses()).map((r) => [r.key, text(r.value)]));
    assert.deepEqual([...all.keys()].sort(), ["web-1", "web-2", "web-3", "web-4"]);
    assert.equal(all.get("web-1"), JSON.stringify(status("web-1", "succeeded", 7)));
    assert.equal(all.get("web-3"), "{not json");
    assert.equal(all.get("web-4"), JSON.stringify(status("web-1", "failed")));
  });

  it("is empty when no agent has reported yet", async () => {
    const fake = await start();
    assert.equal((await storeOn(fake).statuses()).length, 0);
  });

  it("watches statuses: current ones first, then each change once, until aborted", async () => {
    const fake = await start();
    const store = storeOn(fake);
    const feed = scope.defer(createConsulFeed(storeConfigFor(fake)));
    await feed.putStatus("web-1", bytes(status("web-1", "idle")));
    await feed.putStatus("web-2", bytes(status("web-2", "idle")));
    const seen: string[] = [];
    const stop = new AbortController();
    const watching = store.watchStatuses(
      (r) => void seen.push(`${r.key}:${(JSON.parse(text(r.value)) as AgentStatus).state}`),
      stop.signal,
    );
    await waitFor(() => seen.length === 2, 5_000, "the current statuses");
    assert.deepEqual(seen.sort(), ["web-1:idle", "web-2:idle"]);
    await feed.putStatus("web-2", bytes(status("web-2", "running", 9)));
    await waitFor(() => seen.length === 3, 5_000, "the change");
    assert.equal(seen[2], "web-2:running");
    await sleep(1_300); // a blocking wait runs out without a change
    assert.equal(seen.length, 3, "nothing delivered twice");
    const t0 = Date.now();
    stop.abort();
    await watching;
    assert.ok(Date.now() - t0 < 500, "aborting ends the watch promptly");
  });

  it("close() ends a running status watch", async () => {
    const fake = await start();
    const store = createConsulStore(storeConfigFor(fake), { waitMs: 60_000 });
    const watching = store.watchStatuses(() => {}, new AbortController().signal);
    await waitFor(() => fake.requests.some((r) => r.index !== undefined), 5_000, "a held blocking query");
    const t0 = Date.now();
    await store.close();
    await watching;
    assert.ok(Date.now() - t0 < 500);
  });
});
