// Enrollment announcements (pure): signed by the identity of the node line they carry, refused when
// forged, altered, oversized or read from another host's key; the coordinator's pending/accept decisions;
// the Consul bootstrap policy (write announcements only) through the fake's ACL rules.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { decideAccept, pendingRows } from "../../coordinator/enrollment.ts";
import type { StoredAnnouncement } from "../../coordinator/enrollment.ts";
import type { ServerRow } from "../../coordinator/db.ts";
import { bootstrapConsulPolicy } from "../../coordinator/store/consul-acl.ts";
import { CONSUL_ENROLL_PREFIX, MAX_ENROLLMENT_BYTES, parseAnnouncement, signAnnouncement } from "../../shared/enrollment.ts";
import type { Announcement } from "../../shared/enrollment.ts";
import type { FleetplanError } from "../../shared/errors.ts";
import { formatKey, formatNodePublic, generateNodeKey, KeyType } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { CONSUL_PREFIX } from "../../shared/store-config.ts";
import type { NodeKeyPair } from "../../shared/types.ts";
import { mayRead, mayWrite, parseKeyRules } from "../fakes/consul-acl.ts";

const T = { timeout: 10_000 };
let node: NodeKeyPair;
let other: NodeKeyPair;

const announcementFor = (keys: NodeKeyPair, host = "web-7"): Announcement => ({
  host,
  node_key: formatNodePublic(keys.publicKey, keys.identity.publicKey),
  hostname: "web-7.example",
  version: "1.2.3",
  facts: { os: "Debian GNU/Linux 12 (bookworm)", kernel: "6.1.0-18-amd64", boot_time: 1_760_000_000, arch: "x64" },
  issued: 1_765_000_000_000,
});
const stored = (value: Uint8Array, key = "web-7"): StoredAnnouncement => ({ key, value, revision: 3, storedAt: null });
const row = (keys: NodeKeyPair, host = "web-7"): ServerRow => ({
  host,
  nodeKey: formatNodePublic(keys.publicKey, keys.identity.publicKey),
  nodeKeyId: keys.keyId,
  metricsUrl: null,
  ssh: null,
  group: null,
  bootstrapped: true,
  addedAt: 0,
});
const rewrite = (bytes: Uint8Array, edit: (doc: { announcement: Announcement; sig: string }) => void): Uint8Array => {
  const doc = JSON.parse(new TextDecoder().decode(bytes)) as { announcement: Announcement; sig: string };
  edit(doc);
  return new TextEncoder().encode(JSON.stringify(doc));
};

before(async () => {
  await sodiumReady();
  node = generateNodeKey();
  other = generateNodeKey();
});

describe("announcement", () => {
  it("signed by the node's identity: parses and verifies, naming its key id", T, () => {
    const parsed = parseAnnouncement(signAnnouncement(announcementFor(node), node.identity.privateKey), "web-7");
    assert.equal(parsed.ok, true);
    assert.equal(parsed.key?.keyId, node.keyId);
    assert.deepEqual(parsed.announcement, announcementFor(node));
  });

  it("forged: another key's signature over this node's line is bad_signature", T, () => {
    const parsed = parseAnnouncement(signAnnouncement(announcementFor(node), other.identity.privateKey), "web-7");
    assert.equal(parsed.ok, false);
    assert.equal(!parsed.ok && parsed.reason, "bad_signature");
  });

  it("altered after signing (a fact changed) is bad_signature", T, () => {
    const bytes = rewrite(signAnnouncement(announcementFor(node), node.identity.privateKey), (d) => (d.announcement.facts.os = "Evil OS"));
    const parsed = parseAnnouncement(bytes, "web-7");
    assert.equal(!parsed.ok && parsed.reason, "bad_signature");
  });

  it("read from another host's key is wrong_host", T, () => {
    const parsed = parseAnnouncement(signAnnouncement(announcementFor(node), node.identity.privateKey), "db-1");
    assert.equal(!parsed.ok && parsed.reason, "wrong_host");
  });

  it("oversized, not JSON, unknown fields, old X25519-only key line: malformed", T, () => {
    const good = signAnnouncement(announcementFor(node), node.identity.privateKey);
    const cases = [
      new Uint8Array(MAX_ENROLLMENT_BYTES + 1).fill(0x20),
      new TextEncoder().encode("{not json"),
      rewrite(good, (d) => Object.assign(d.announcement, { plan: "x" })),
      rewrite(good, (d) => (d.announcement.node_key = formatKey(KeyType.NodePublic, node.publicKey))),
    ];
    for (const bytes of cases) {
      const parsed = parseAnnouncement(bytes, "web-7");
      assert.equal(!parsed.ok && parsed.reason, "malformed");
    }
    assert.throws(() => signAnnouncement({ ...announcementFor(node), hostname: "x".repeat(300) }, node.identity.privateKey), /too long/);
  });
});

describe("pending and accept decisions", () => {
  it("pending rows: verified, flagged when the inventory holds the host with another key, accepted with the same key", T, () => {
    const value = signAnnouncement(announcementFor(node), node.identity.privateKey);
    const [fresh] = pendingRows([stored(value)], [], 1_765_000_060_000);
    assert.deepEqual([fresh!.verified, fresh!.state, fresh!.fingerprint, fresh!.age_s], [true, "pending", node.keyId, 60]);
    const [conflict] = pendingRows([stored(value)], [row(other)], 0);
    assert.deepEqual([conflict!.state, conflict!.inventory_key_id], ["key_conflict", other.keyId]);
    assert.equal(pendingRows([stored(value)], [row(node)], 0)[0]!.state, "accepted");
    const [forged] = pendingRows([stored(signAnnouncement(announcementFor(node), other.identity.privateKey))], [], 0);
    assert.equal(forged!.verified, false);
    assert.match(forged!.problem!, /^bad_signature/);
  });

  it("accept: adds a verified announcement; refuses forged, wrong fingerprint, another key in the inventory, none", T, () => {
    const value = signAnnouncement(announcementFor(node), node.identity.privateKey);
    assert.deepEqual(decideAccept("web-7", stored(value), undefined, node.keyId), {
      add: true,
      nodeKey: formatNodePublic(node.publicKey, node.identity.publicKey),
      keyId: node.keyId,
    });
    assert.deepEqual(decideAccept("web-7", stored(value), row(node), undefined), { add: false, keyId: node.keyId });
    const reasonOf = (fn: () => unknown) => {
      try {
        fn();
        return "accepted";
      } catch (error) {
        return (error as FleetplanError).reason;
      }
    };
    const forged = signAnnouncement(announcementFor(node), other.identity.privateKey);
    assert.equal(
      reasonOf(() => decideAccept("web-7", stored(forged), undefined, undefined)),
      "bad_signature",
    );
    assert.equal(
      reasonOf(() => decideAccept("web-7", stored(value), undefined, other.keyId)),
      "bad_key",
    );
    assert.equal(
      reasonOf(() => decideAccept("web-7", stored(value), undefined, "nothex")),
      "invalid_argument",
    );
    assert.equal(
      reasonOf(() => decideAccept("web-7", stored(value), row(other), undefined)),
      "conflict",
    );
    assert.equal(
      reasonOf(() => decideAccept("web-7", undefined, undefined, undefined)),
      "not_found",
    );
  });
});

describe("Consul bootstrap policy", () => {
  it("writes announcements only: no plan or status key, read or write", T, () => {
    const rules = parseKeyRules(bootstrapConsulPolicy());
    assert.equal(mayWrite(rules, `${CONSUL_ENROLL_PREFIX}web-7`), true);
    for (const key of [`${CONSUL_PREFIX.plans}web-1`, `${CONSUL_PREFIX.status}web-1`, "fleetplan/other"]) {
      assert.equal(mayRead(rules, key), false, key);
      assert.equal(mayWrite(rules, key), false, key);
    }
  });
});
