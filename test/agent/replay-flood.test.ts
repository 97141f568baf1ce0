// Replays cost less to refuse than to send (issue 12 item 7): 5,000 copies of an old signed
// envelope leave one ledger row and one log line, like unsigned garbage; each is still counted.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createAgent } from "../../agent/agent.ts";
import type { Agent } from "../../agent/agent.ts";
import { createLogger } from "../../shared/log.ts";
import { createNode, createWorld, sealFor } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";

let world: World;
let node: Node;
let agent: Agent;
const lines: string[] = [];

before(async () => {
  world = await createWorld("fleetplan-replay-flood-");
  node = await createNode(world, "replayed", "nats://127.0.0.1:1");
  const logger = createLogger({ level: "info", write: (line: string) => void lines.push(line) });
  agent = await createAgent(node.config, { feed: null, logger });
});
after(async () => {
  await agent?.stop();
  world?.cleanup();
});

const submit = (bytes: Uint8Array) => agent.submit(bytes, { source: "test", revision: null });

describe("replayed signed envelopes", { timeout: 60_000 }, () => {
  it("5,000 copies of a stale envelope: one ledger row, one log line, 5,000 counted", async () => {
    const old = sealFor(world, node, 100, "true");
    const first = submit(sealFor(world, node, 200, "true"));
    assert.ok(first.accepted);
    await first.outcome;
    const rowsBefore = agent.ledger.envelopes(100_000).length;
    const logBefore = lines.length;
    for (let i = 0; i < 5_000; i++) assert.equal(submit(old).accepted, false);
    const rows = agent.ledger.envelopes(100_000).length - rowsBefore;
    const logged = lines.slice(logBefore).filter((l) => l.includes("envelope_rejected"));
    assert.equal(rows, 1, "one ledger row for the first copy only");
    assert.equal(logged.length, 1, `one log line, got ${logged.length}`);
    assert.equal(agent.ledger.counts().stale, 5_000);
  });

  it("copies of the accepted envelope (duplicates) stay benign and quiet: one row, one info line", async () => {
    const accepted = sealFor(world, node, 300, "true");
    const r = submit(accepted);
    assert.ok(r.accepted);
    await r.outcome;
    const logBefore = lines.length;
    for (let i = 0; i < 1_000; i++) assert.equal(submit(accepted).accepted, false);
    const logged = lines.slice(logBefore).filter((l) => l.includes("envelope_duplicate") || l.includes("envelope_rejected"));
    assert.equal(logged.length, 1);
  });
});
