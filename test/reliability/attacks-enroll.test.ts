// Attacks on `fleetplan server pending` (coordinator/cli/enroll.ts): anyone who can write the
// enrollment prefix chooses the key names and, with any key pair, signed facts. Through the Consul
// fake: escape codes in a key name or in facts are shown as text, never sent to the terminal raw.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { buildAnnouncement } from "../../agent/enroll.ts";
import { enrollCommand } from "../../coordinator/cli/enroll.ts";
import type { CoordinatorConfig } from "../../coordinator/config.ts";
import type { CoordinatorDb } from "../../coordinator/db.ts";
import { coordinatorConsulPolicy } from "../../coordinator/store/consul-acl.ts";
import { CONSUL_ENROLL_PREFIX, signAnnouncement } from "../../shared/enrollment.ts";
import { generateNodeKey } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { consulTestScope, putKey, storeConfigFor } from "../fakes/consul.ts";

// Signed facts may hold what a one-byte CSI (0x9b) or a bidi override (U+202E) does on a terminal.
const FACTS = { os: "Debian\u009b2J", kernel: "6.1.0\u202e", boot_time: 1_760_000_000, arch: "x64" };
// A key name chosen by the attacker: OSC 0 retitles the terminal, CSI 2J clears it.
const EVIL_KEY = "\x1b]0;pwned\x07\x1b[2J";

describe("attacks on fleetplan server pending", { timeout: 30_000 }, () => {
  const scope = consulTestScope();
  before(async () => sodiumReady());

  it("escape codes in a key name or in signed facts are printed as text", async () => {
    const fake = await scope.start({ policies: { coord: coordinatorConsulPolicy() } });
    const headers = { "X-Consul-Token": "coord" };
    const keys = generateNodeKey();
    const record = signAnnouncement(buildAnnouncement("web-9", keys, FACTS, Date.now()), keys.identity.privateKey);
    assert.equal(await putKey(fake.url, `${CONSUL_ENROLL_PREFIX}web-9`, record, headers), 200);
    assert.equal(await putKey(fake.url, `${CONSUL_ENROLL_PREFIX}${encodeURIComponent(EVIL_KEY)}`, "junk", headers), 200);
    const config = { db: "", store: storeConfigFor(fake, "coord"), adminKeys: [], json: false, sources: [] } as CoordinatorConfig;
    const db = { servers: () => [] } as unknown as CoordinatorDb;
    let out = "";
    const io = { stdout: (t: string) => void (out += t), stderr: (t: string) => void (out += t) };
    assert.equal(await enrollCommand("pending", undefined, {}, db, config, io), 0);
    assert.doesNotMatch(out, /[\x1b\x07\u009b\u202e]/, JSON.stringify(out));
    assert.match(out, /\\u\{1b\}\]0;pwned\\u\{7\}\\u\{1b\}\[2J .*NOT VERIFIED \(malformed/);
    assert.match(out, /web-9 .*Debian\\u\{9b\}2J\s+6\.1\.0\\u\{202e\}\s+x64 .*verified/);
  });
});
