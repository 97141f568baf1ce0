// Which status records count as evidence (coordinator/status-evidence.ts, pure), and what
// waitForOutcomes does with the others: one case per forgery, each refused with its reason.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ServerRow } from "../../coordinator/db.ts";
import { createStatusVerifier, verifyStatusRecord } from "../../coordinator/status-evidence.ts";
import { waitForOutcomes } from "../../coordinator/wait.ts";
import type { PushEvent } from "../../coordinator/push.ts";
import { formatKey, formatNodePublic, generateNodeKey, KeyType } from "../../shared/keys.ts";
import { sodium, sodiumReady } from "../../shared/sodium.ts";
import { MAX_STATUS_BYTES, signStatusRecord, statusSignedBytes } from "../../shared/status.ts";
import type { AgentStatus, NodeKeyPair, PlanStore, StatusRecord } from "../../shared/types.ts";

await sodiumReady();
const ID = 20261205120000;
const A = generateNodeKey();
const B = generateNodeKey();
const OLD = generateNodeKey();
const row = (host: string, nodeKey: string): ServerRow => ({
  host,
  nodeKey,
  nodeKeyId: "",
  metricsUrl: null,
  ssh: null,
  group: null,
  bootstrapped: true,
  addedAt: 0,
});
const INVENTORY = [
  row("host-a", formatNodePublic(A.publicKey, A.identity.publicKey)),
  row("host-b", formatNodePublic(B.publicKey, B.identity.publicKey)),
  row("host-old", formatKey(KeyType.NodePublic, OLD.publicKey)),
];
const verify = createStatusVerifier(INVENTORY);

const status = (host: string, over: Partial<AgentStatus> = {}): AgentStatus => ({
  host,
  state: "succeeded",
  id: ID,
  plan_hash: "a".repeat(64),
  step_index: null,
  steps: 2,
  since: 1_000,
  boot_time: 7,
  result: "succeeded",
  applied_id: ID,
  applied_hash: "a".repeat(64),
  applied_boot_time: 7,
  version: "test",
  ...over,
});
const text = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const record = (key: string, st: AgentStatus, by: NodeKeyPair): StatusRecord => ({
  key,
  value: signStatusRecord(st, by.identity.privateKey),
});
const reasonOf = (r: StatusRecord) => {
  const checked = verify(r);
  return checked.ok ? "ok" : checked.reason;
};

describe("verifyStatusRecord", () => {
  it("accepts a record signed by the host's own identity, read from its own key", () => {
    const checked = verify(record("host-a", status("host-a"), A));
    assert.deepEqual(checked, { ok: true, status: status("host-a") });
  });

  it("refuses a record signed by another node's identity: bad_signature", () => {
    assert.equal(reasonOf(record("host-b", status("host-b"), A)), "bad_signature");
  });

  it("refuses a record whose body names another host than its store key: wrong_host", () => {
    assert.equal(reasonOf(record("host-a", status("host-b"), A)), "wrong_host");
    assert.deepEqual(verify(record("host-a", status("host-b"), A)), { ok: false, reason: "wrong_host", claimedHost: "host-b" });
  });

  it("refuses an unsigned record (the old bare status, or no sig): unsigned", () => {
    assert.equal(reasonOf({ key: "host-b", value: text(status("host-b")) }), "unsigned");
    assert.equal(reasonOf({ key: "host-b", value: text({ v: 1, status: status("host-b") }) }), "unsigned");
  });

  it("refuses a record altered after signing: bad_signature", () => {
    const signed = JSON.parse(new TextDecoder().decode(record("host-b", status("host-b", { applied_id: ID - 1 }), B).value)) as {
      status: AgentStatus;
    };
    signed.status.applied_id = ID;
    assert.equal(reasonOf({ key: "host-b", value: text(signed) }), "bad_signature");
  });

  it("refuses garbage, oversized, unknown fields (e.g. a step name) and a bad signature encoding: malformed", () => {
    const sig = sodium.to_base64(new Uint8Array(64), sodium.base64_variants.ORIGINAL);
    const cases: Uint8Array[] = [
      new TextEncoder().encode("{not json"),
      text([1, 2]),
      new Uint8Array(MAX_STATUS_BYTES + 1).fill(0x20),
      text({ v: 1, status: { ...status("host-b"), step: "install nginx" }, sig }),
      text({ v: 2, status: status("host-b"), sig }),
      text({ v: 1, status: status("host-b"), sig: "!!!" }),
      text({ v: 1, status: status("host-b"), sig: "AAAA" }),
      text({ v: 1, status: { ...status("host-b"), state: "converged" }, sig }),
      text({ v: 1, status: status("host-b"), sig, extra: 1 }),
    ];
    assert.deepEqual(
      cases.map((value) => reasonOf({ key: "host-b", value })),
      cases.map(() => "malformed"),
    );
  });

  it("refuses a record under a key the inventory does not have: unknown_host", () => {
    const stranger = generateNodeKey();
    assert.equal(reasonOf(record("host-z", status("host-z"), stranger)), "unknown_host");
    assert.equal(verifyStatusRecord(record("host-a", status("host-a"), A), null).ok, false);
  });

  it("refuses even a genuine record of a host registered with the old key form: no_identity_key", () => {
    assert.equal(reasonOf(record("host-old", status("host-old"), OLD)), "no_identity_key");
  });

  it("signs the domain prefix and the canonical JSON of the status", () => {
    const bytes = new TextDecoder().decode(statusSignedBytes(status("host-a")));
    assert.ok(bytes.startsWith('fleetplan/status/v1\0{"applied_boot_time":7,'));
  });
});

/** A store whose status watch delivers `records` in order, then waits for the abort. */
const storeWith = (records: StatusRecord[]): PlanStore => ({
  kind: "test",
  put: async () => ({ revision: 1 }),
  revision: async () => null,
  statuses: async () => records,
  watchStatuses: async (onRecord, signal) => {
    for (const r of records) onRecord(r);
    if (!signal.aborted) await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  },
  close: async () => {},
});

describe("waitForOutcomes believes only evidence", { timeout: 10_000 }, () => {
  const wait = async (records: StatusRecord[]) => {
    const events: PushEvent[] = [];
    const result = await waitForOutcomes(
      storeWith(records),
      new Map([["host-b", { id: ID, putAt: 0 }]]),
      verify,
      300,
      (e) => void events.push(e),
    );
    return { ...result, events };
  };

  it("takes the host's own signed record as its outcome", async () => {
    const { outcomes, refused } = await wait([record("host-b", status("host-b"), B)]);
    assert.deepEqual(outcomes.get("host-b"), { outcome: "succeeded", reason: null });
    assert.deepEqual(refused, {});
  });

  it("reports forgeries as status_refused, counts them and reports no outcome", async () => {
    const { outcomes, refused, events } = await wait([
      record("host-b", status("host-b"), A),
      record("host-a", status("host-b"), A),
      { key: "host-b", value: text(status("host-b")) },
    ]);
    assert.equal(outcomes.size, 0);
    assert.deepEqual(refused, { bad_signature: 1, wrong_host: 1, unsigned: 1 });
    assert.deepEqual(
      events.map((e) => e.event === "status_refused" && [e.host, e.claimed_host, e.reason]),
      [
        ["host-b", "host-b", "bad_signature"],
        ["host-a", "host-b", "wrong_host"],
        ["host-b", "host-b", "unsigned"],
      ],
    );
  });

  it("drops a replayed record older (signed since) than one already seen from the host: stale", async () => {
    const failedEarlier = record("host-b", status("host-b", { state: "failed", result: "failed", applied_id: null, since: 500 }), B);
    const running = record("host-b", status("host-b", { state: "running", result: null, applied_id: null, since: 900 }), B);
    const { outcomes, refused } = await wait([running, failedEarlier]);
    assert.equal(outcomes.size, 0, "the older failed record did not end the wait");
    assert.deepEqual(refused, { stale: 1 });
  });
});
