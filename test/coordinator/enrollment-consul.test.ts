// Enrollment over Consul KV, against the Consul fake (test/fakes/consul.ts) enforcing the generated
// policies: the agent puts its announcement with the bootstrap token read from a file, the
// coordinator lists and removes it; the bootstrap token reaches no plan or status key.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildAnnouncement, putAnnouncement } from "../../agent/enroll.ts";
import { pendingRows } from "../../coordinator/enrollment.ts";
import { bootstrapConsulPolicy, coordinatorConsulPolicy } from "../../coordinator/store/consul-acl.ts";
import { openEnrollStore } from "../../coordinator/store/enroll-store.ts";
import { signAnnouncement } from "../../shared/enrollment.ts";
import type { FleetplanError } from "../../shared/errors.ts";
import { generateNodeKey } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { consulTestScope, putKey, storeConfigFor } from "../fakes/consul.ts";

const FACTS = { os: "Debian GNU/Linux 12 (bookworm)", kernel: "6.1.0", boot_time: 1_760_000_000, arch: "x64" };

describe("enrollment over Consul (fake)", { timeout: 30_000 }, () => {
  const scope = consulTestScope();
  let dir: string;
  let tokenFile: string;

  before(async () => {
    await sodiumReady();
    dir = mkdtempSync(join(tmpdir(), "fleetplan-enroll-consul-"));
    tokenFile = join(dir, "bootstrap.token");
    writeFileSync(tokenFile, "boot\n", { mode: 0o600 });
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it("the bootstrap token puts an announcement; the coordinator lists it verified and removes it", async () => {
    const fake = await scope.start({ policies: { coord: coordinatorConsulPolicy(), boot: bootstrapConsulPolicy() } });
    const keys = generateNodeKey();
    const record = signAnnouncement(buildAnnouncement("web-7", keys, FACTS, Date.now()), keys.identity.privateKey);
    await putAnnouncement(storeConfigFor(fake), tokenFile, "web-7", record);
    const store = scope.defer(await openEnrollStore(storeConfigFor(fake, "coord")));
    const [row] = pendingRows(await store.list(), [], Date.now());
    assert.deepEqual([row?.host, row?.verified, row?.fingerprint, row?.state], ["web-7", true, keys.keyId, "pending"]);
    await store.remove("web-7");
    assert.deepEqual(await store.list(), []);
  });

  it("the bootstrap token cannot read or write plan or status keys", async () => {
    const fake = await scope.start({ policies: { coord: coordinatorConsulPolicy(), boot: bootstrapConsulPolicy() } });
    assert.equal(await putKey(fake.url, "fleetplan/plans/web-1", "envelope", { "X-Consul-Token": "coord" }), 200);
    const asBoot = (path: string, method = "GET") =>
      fetch(`${fake.url}/v1/kv/${path}`, { method, headers: { "X-Consul-Token": "boot" }, ...(method === "PUT" && { body: "forged" }) });
    for (const [path, method] of [
      ["fleetplan/plans/web-1", "GET"],
      ["fleetplan/plans/web-1", "PUT"],
      ["fleetplan/status/web-1", "PUT"],
      ["fleetplan/status/web-1", "GET"],
      ["fleetplan/plans/?recurse", "DELETE"],
    ] as const) {
      assert.equal((await asBoot(path, method)).status, 403, `${method} ${path}`);
    }
    const keys = generateNodeKey();
    const record = signAnnouncement(buildAnnouncement("web-8", keys, FACTS, Date.now()), keys.identity.privateKey);
    const noToken = join(dir, "empty.token");
    writeFileSync(noToken, "\n", { mode: 0o600 });
    await assert.rejects(
      putAnnouncement(storeConfigFor(fake), noToken, "web-8", record),
      (e: FleetplanError) => e.reason === "invalid_argument" && /is empty/.test(e.message),
    );
  });
});
