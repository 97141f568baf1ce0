// Trust documents and freshness records under per-host NATS credentials (operator mode, a real
// nats-server): a host reads every trust version and hears their notices, reads its own freshness
// record and not another host's, and cannot write either; the coordinator's credentials can.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { createNatsFeed } from "../../agent/store/nats-feed.ts";
import {
  authorityJwts,
  coordinatorPermissions,
  createAuthority,
  hostPermissions,
  issueCreds,
  serverConfigText,
} from "../../coordinator/store/nats-credentials.ts";
import { openSideStore } from "../../coordinator/trust-store.ts";
import type { SideStore } from "../../coordinator/trust-store.ts";
import { silentLogger } from "../../shared/log.ts";
import { kvSubject } from "../../shared/store-layout.ts";
import { freshKey, trustKey } from "../../shared/trust-layout.ts";
import type { PlanFeed, StoreConfig } from "../../shared/types.ts";
import { startNats } from "../helpers/nats.ts";
import type { NatsServer } from "../helpers/nats.ts";
import { waitFor } from "../helpers/ports.ts";
import { testStoreConfig } from "../helpers/store-layout.ts";

const enc = (text: string) => new TextEncoder().encode(text);
const dec = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));

describe("trust and freshness keys under per-host NATS credentials", { timeout: 60_000 }, () => {
  let dir: string;
  let server: NatsServer;
  let side: SideStore;
  let feed: PlanFeed;
  let config: (creds: string) => StoreConfig;
  const notices: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "fleetplan-trust-creds-"));
    const authority = createAuthority();
    writeFileSync(join(dir, "auth.conf"), serverConfigText(authority, await authorityJwts(authority, {})));
    writeFileSync(join(dir, "main.conf"), "jetstream {}\ninclude ./auth.conf\n");
    const layout = testStoreConfig("nats://127.0.0.1:1");
    writeFileSync(join(dir, "coordinator.creds"), await issueCreds(authority, "coordinator", coordinatorPermissions(layout)), {
      mode: 0o600,
    });
    writeFileSync(join(dir, "host-a.creds"), await issueCreds(authority, "host-a", hostPermissions(layout, "host-a")), { mode: 0o600 });
    server = await startNats({ configFile: join(dir, "main.conf") });
    config = (creds) => ({ ...testStoreConfig(server.url), credsFile: join(dir, creds), timeoutMs: 2_000 });
    side = await openSideStore(config("coordinator.creds"));
    await side.put("host-a", enc("envelope-a"));
    feed = createNatsFeed(config("host-a.creds"), { logger: silentLogger });
    void feed.follow("host-a", { onEnvelope: async () => {}, onSideNotice: (kind) => void notices.push(kind) });
  });

  after(async () => {
    await feed?.close();
    await side?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a host reads trust versions and its own freshness record, and hears their notices", { timeout: 20_000 }, async () => {
    await side.create(trustKey(2), enc("trust-2"));
    await side.put(freshKey("host-a"), enc("fresh-a"));
    await side.put(freshKey("host-b"), enc("fresh-b"));
    assert.equal(dec(await feed.readSide!(trustKey(2))), "trust-2");
    assert.equal(await feed.readSide!(trustKey(3)), null);
    assert.equal(dec(await feed.readSide!(freshKey("host-a"))), "fresh-a");
    await side.create(trustKey(3), enc("trust-3"));
    await waitFor(() => notices.includes("trust"), 5_000, "a trust notice");
    await side.put(freshKey("host-a"), enc("fresh-a2"));
    await waitFor(() => notices.includes("fresh"), 5_000, "a freshness notice");
  });

  it("a host cannot read another host's freshness record, nor write a trust version or a freshness record", {
    timeout: 20_000,
  }, async () => {
    await assert.rejects(feed.readSide!(freshKey("host-b")), /Permissions Violation|store_unavailable|direct get/i);
    const nc = await connect({
      servers: server.url,
      authenticator: credsAuthenticator(readFileSync(join(dir, "host-a.creds"))),
      timeout: 5_000,
    });
    try {
      for (const key of [trustKey(4), freshKey("host-a")]) {
        const subject = kvSubject("fleetplan-plans", key);
        await assert.rejects(jetstream(nc).publish(subject, enc("forged"), { timeout: 2_000 }), /Permissions Violation/);
      }
    } finally {
      await nc.close();
    }
    assert.equal(await side.get(trustKey(4)), null);
    assert.equal(dec(await side.get(freshKey("host-a"))), "fresh-a2");
  });
});
