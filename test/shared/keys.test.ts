// Key text forms, key ids and trust files: everything an operator pastes must round-trip, and
// anything else must fail as `bad_key` naming the source, never echoing key material.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import {
  FleetplanError,
  formatKey,
  formatTrust,
  generateAdminKey,
  generateNodeKey,
  keyIdOf,
  KeyType,
  parseKey,
  parseTrust,
  sodium,
  sodiumReady,
} from "../../shared/mod.ts";
import type { AdminKeyPair, NodeKeyPair } from "../../shared/mod.ts";

const assertBadKey = (fn: () => unknown, message?: RegExp): void => {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof FleetplanError, String(error));
    assert.equal(error.reason, "bad_key");
    if (message) assert.match(error.message, message);
    return true;
  });
};

describe("keys", () => {
  let admin: AdminKeyPair;
  let node: NodeKeyPair;
  before(async () => {
    await sodiumReady();
    admin = generateAdminKey();
    node = generateNodeKey();
  });

  it("round-trips all four key types through their text form", () => {
    const cases: [KeyType, Uint8Array][] = [
      [KeyType.AdminPublic, admin.publicKey],
      [KeyType.AdminPrivate, admin.privateKey],
      [KeyType.NodePublic, node.publicKey],
      [KeyType.NodePrivate, node.privateKey],
    ];
    for (const [type, key] of cases) {
      const text = formatKey(type, key);
      assert.ok(text.startsWith(`${type} `));
      assert.ok(!text.includes("\n"));
      assert.deepEqual(parseKey(`  ${text}\n`, type, "test"), key);
    }
  });

  it("writes the key id after public keys only", () => {
    assert.equal(formatKey(KeyType.AdminPublic, admin.publicKey).split(" ")[2], admin.keyId);
    assert.equal(formatKey(KeyType.AdminPrivate, admin.privateKey).split(" ").length, 2);
    assert.equal(formatKey(KeyType.NodePrivate, node.privateKey).split(" ").length, 2);
  });

  it("derives the key id as the first 8 bytes of BLAKE2b-256, hex", () => {
    for (const key of [admin.publicKey, node.publicKey]) {
      const expected = Buffer.from(sodium.crypto_generichash(32, key, null))
        .subarray(0, 8)
        .toString("hex");
      assert.equal(keyIdOf(key), expected);
      assert.match(expected, /^[0-9a-f]{16}$/);
    }
    assert.equal(admin.keyId, keyIdOf(admin.publicKey));
    assert.equal(node.keyId, keyIdOf(node.publicKey));
  });

  it("refuses a key of the wrong type", () => {
    assertBadKey(() => parseKey(formatKey(KeyType.NodePublic, node.publicKey), KeyType.AdminPublic, "trust.pub"), /trust\.pub/);
    assertBadKey(() => parseKey(formatKey(KeyType.AdminPrivate, admin.privateKey), KeyType.AdminPublic, "x"));
  });

  it("refuses bad base64", () => {
    assertBadKey(() => parseKey(`${KeyType.AdminPublic} !!!not-base64!!!`, KeyType.AdminPublic, "x"), /base64/);
  });

  it("refuses a key of the wrong length", () => {
    const short = sodium.to_base64(admin.publicKey.subarray(0, 31), sodium.base64_variants.ORIGINAL);
    assertBadKey(() => parseKey(`${KeyType.AdminPublic} ${short}`, KeyType.AdminPublic, "x"), /32 bytes/);
    const pub = sodium.to_base64(admin.publicKey, sodium.base64_variants.ORIGINAL);
    assertBadKey(() => parseKey(`${KeyType.AdminPrivate} ${pub}`, KeyType.AdminPrivate, "x"), /64 bytes/);
  });

  it("refuses a key id that does not match the key", () => {
    const [type, b64] = formatKey(KeyType.AdminPublic, admin.publicKey).split(" ");
    assertBadKey(() => parseKey(`${type} ${b64} 0000000000000000`, KeyType.AdminPublic, "x"), /does not match/);
  });

  it("never echoes key material in errors", () => {
    const secret = formatKey(KeyType.NodePrivate, node.privateKey);
    assert.throws(
      () => parseKey(secret, KeyType.AdminPrivate, "node.key"),
      (error: unknown) => {
        assert.ok(error instanceof Error && !error.message.includes(secret.split(" ")[1]!));
        return true;
      },
    );
  });
});

describe("trust files", () => {
  let admins: AdminKeyPair[];
  before(async () => {
    await sodiumReady();
    admins = [generateAdminKey(), generateAdminKey(), generateAdminKey()];
  });
  const line = (k: AdminKeyPair) => formatKey(KeyType.AdminPublic, k.publicKey);

  it("reads keys, comments, blank lines and a threshold", () => {
    const text = [
      "# fleet admins",
      "",
      `${line(admins[0]!)}   # alice`,
      "threshold 2  # two of three",
      line(admins[1]!),
      line(admins[2]!),
      "",
    ].join("\n");
    const trust = parseTrust(text, "trust");
    assert.equal(trust.threshold, 2);
    assert.deepEqual([...trust.keys.keys()].sort(), admins.map((k) => k.keyId).sort());
    assert.deepEqual(trust.keys.get(admins[0]!.keyId), admins[0]!.publicKey);
  });

  it("defaults the threshold to 1", () => assert.equal(parseTrust(line(admins[0]!), "trust").threshold, 1));

  it("round-trips through formatTrust", () => {
    const trust = parseTrust(
      formatTrust(
        admins.map((k) => k.publicKey),
        3,
      ),
      "trust",
    );
    assert.equal(trust.threshold, 3);
    assert.equal(trust.keys.size, 3);
  });

  it("refuses a threshold above the number of distinct keys", () => {
    assertBadKey(() => parseTrust(`threshold 2\n${line(admins[0]!)}\n${line(admins[0]!)}\n`, "trust"), /exceeds/);
  });

  it("refuses a threshold that is not a positive integer", () => {
    for (const t of ["0", "-1", "1.5", "two"]) assertBadKey(() => parseTrust(`threshold ${t}\n${line(admins[0]!)}`, "trust"));
  });

  it("refuses a file without keys", () => assertBadKey(() => parseTrust("# nobody\n", "trust"), /no admin public keys/));

  it("names the offending line", () => {
    assertBadKey(
      () => parseTrust(`${line(admins[0]!)}\nfleetplan-node-x25519 AAAA\n`, "/etc/fleetplan/trust"),
      /\/etc\/fleetplan\/trust:2/,
    );
  });
});
