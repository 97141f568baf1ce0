// Hosts registered with the old X25519-only key line: still accepted, but `server add`, `server
// import` and `status` say their status records are never evidence, and how to migrate.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { StatusRow } from "../../coordinator/cli/status.ts";
import { formatKey, formatNodePublic, generateNodeKey, KeyType } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";
import { createCli } from "../helpers/cli.ts";
import type { Fleetplan } from "../helpers/cli.ts";
import { createWorld } from "../helpers/fleet.ts";
import type { World } from "../helpers/fleet.ts";
import { freePort } from "../helpers/ports.ts";

await sodiumReady();
const MIGRATE = /warning: (\S+): no node identity key, so its status records are never evidence; on the node run `fleetplan-agent pubkey`/;

describe("hosts registered with the old node key line", { timeout: 60_000 }, () => {
  let world: World;
  let cli: Fleetplan;
  const oldKey = generateNodeKey();
  const newKey = generateNodeKey();

  before(async () => {
    world = await createWorld("fleetplan-migration-");
    // No store listens there: status notes it and goes on.
    cli = createCli(world, `nats://127.0.0.1:${await freePort()}`);
    await cli.expect(["init", "--json"]);
  });
  after(() => world?.cleanup());

  it("server add takes the old line, warns how to migrate, and not for the new line", async () => {
    const old = await cli.expect(["server", "add", "old-1", "--node-key", formatKey(KeyType.NodePublic, oldKey.publicKey)]);
    assert.equal(MIGRATE.exec(old.stderr)?.[1], "old-1");
    const fresh = await cli.expect(["server", "add", "new-1", "--node-key", formatNodePublic(newKey.publicKey, newKey.identity.publicKey)]);
    assert.equal(fresh.stderr, "");
  });

  it("server import warns for each old line", async () => {
    const file = join(world.dir, "inventory.json");
    const another = generateNodeKey();
    writeFileSync(
      file,
      JSON.stringify([
        { host: "old-2", node_key: formatKey(KeyType.NodePublic, generateNodeKey().publicKey) },
        { host: "new-2", node_key: formatNodePublic(another.publicKey, another.identity.publicKey) },
      ]),
    );
    const result = await cli.expect(["server", "import", file]);
    assert.deepEqual(
      result.stderr
        .split("\n")
        .filter(Boolean)
        .map((l) => MIGRATE.exec(l)?.[1]),
      ["old-2"],
    );
  });

  it("status warns for old-line hosts and names the fix in the row", async () => {
    const json = await cli.run(["status", "--all", "--json"], { timeoutMs: 20_000 });
    const rows = JSON.parse(json.stdout) as StatusRow[];
    assert.deepEqual(
      rows
        .filter((r) => r.warning !== null)
        .map((r) => r.host)
        .sort(),
      ["old-1", "old-2"],
    );
    assert.match(rows.find((r) => r.host === "old-1")!.warning!, /re-add it with the printed key \(`fleetplan server remove old-1`/);
    const text = await cli.run(["status", "--all"], { timeoutMs: 20_000 });
    assert.deepEqual(
      text.stderr
        .split("\n")
        .map((l) => MIGRATE.exec(l)?.[1])
        .filter(Boolean)
        .sort(),
      ["old-1", "old-2"],
    );
  });
});
