// One test per attack that can reach an agent through the store: each is rejected with its
// reason, counted, recorded as seen, and changes nothing else — no high-water mark, no run, no file.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Agent } from "../../agent/agent.ts";
import { sealEnvelope } from "../../shared/envelope.ts";
import { generateAdminKey } from "../../shared/keys.ts";
import type { Plan } from "../../shared/types.ts";
import { metricValue, sealFor, waitFor } from "../helpers/fleet.ts";
import type { Node } from "../helpers/fleet.ts";
import { appendMarker, markerLines, startKvScope, waitMetric } from "../helpers/agent-scope.ts";

const scope = await startKvScope();
after(() => scope.cleanup());
const { kv, world } = scope;
const HOUR = 3_600_000;

let node: Node;
let agent: Agent;
let baseline: { hwm: ReturnType<Agent["ledger"]["highWaterMark"]>; runs: number; files: Record<string, string> };

// Every file under the node's root with its mode and content.
const snapshot = (dir: string, out: Record<string, string> = {}): Record<string, string> => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isDirectory()) snapshot(path, out);
    else out[path] = `${st.mode.toString(8)} ${readFileSync(path, "base64")}`;
  }
  return out;
};

// What every hostile envelope would do if it ran: write a file and append to the marker.
const hostile = (label: string): Plan => ({
  kind: "fleetplan/plan",
  v: 1,
  files: [{ path: join(node.root, `${label}.conf`), mode: 0o644, content: Buffer.from(label).toString("base64") }],
  steps: [{ name: label, run: appendMarker(node, label) }],
});

const flipAt = (bytes: Uint8Array, at: number): Uint8Array => {
  const copy = Uint8Array.from(bytes);
  copy[at]! ^= 0x01;
  return copy;
};

// A signature entry is an 8-byte key id and a 64-byte signature, after a 1-byte count.
const SIG_BLOCK = 1 + 8 + 64;

const attacks: [string, () => Uint8Array][] = [
  ["malformed", () => sealFor(world, node, 2001, hostile("malformed")).subarray(0, -1)],
  ["unsupported_version", () => flipAt(sealFor(world, node, 2002, hostile("version")), 4)],
  [
    "bad_signature",
    () => {
      const e = sealFor(world, node, 2003, hostile("bad-sig"));
      return flipAt(e, e.length - SIG_BLOCK - 5);
    },
  ],
  [
    "untrusted_signer",
    () =>
      sealEnvelope(hostile("untrusted"), {
        id: 2004,
        target: node.host,
        nodePublicKey: node.keys.publicKey,
        signers: [generateAdminKey()],
        expires: Date.now() + HOUR,
      }),
  ],
  ["wrong_target", () => sealFor(world, { ...node, host: "someone-else" }, 2005, hostile("wrong-target"))],
  ["expired", () => sealFor(world, node, 2006, hostile("expired"), { issued: Date.now() - 2 * HOUR, expires: Date.now() - HOUR })],
  ["from_future", () => sealFor(world, node, 2007, hostile("future"), { issued: Date.now() + HOUR, expires: Date.now() + 2 * HOUR })],
  ["stale", () => sealFor(world, node, 999, hostile("stale"))],
];

const UNVERIFIED = new Set(["too_large", "malformed", "unsupported_version", "bad_signature", "untrusted_signer", "wrong_target"]);

describe("envelopes rejected through the store change nothing", () => {
  before(async () => {
    node = await scope.node("reject-1");
    agent = await scope.agent(node);
    await kv.put(node.host, sealFor(world, node, 1000, appendMarker(node, "1000")));
    await waitFor(() => agent.ledger.lastSuccess()?.id === 1000, 10_000, "the baseline run to succeed");
    await agent.idle();
    baseline = { hwm: agent.ledger.highWaterMark(), runs: agent.ledger.runs(100).length, files: snapshot(node.root) };
    assert.equal(baseline.hwm.id, 1000);
  });

  for (const [reason, make] of attacks) {
    test(`${reason}: rejected, counted (recorded as seen once signed); high-water mark, runs and files untouched`, async () => {
      await kv.put(node.host, make());
      await waitMetric(node, `fleetplan_agent_envelopes_total{result="${reason}"}`, (v) => v === 1);
      await agent.idle();
      // Unverified rejections (anyone with store access can send them in bulk) are only
      // counted; the others are recorded as a row.
      assert.equal(agent.ledger.counts()[reason], 1);
      if (UNVERIFIED.has(reason)) assert.notEqual(agent.ledger.envelopes(1)[0]?.result, reason);
      else assert.equal(agent.ledger.envelopes(1)[0]?.result, reason);
      assert.deepEqual(agent.ledger.highWaterMark(), baseline.hwm);
      assert.equal(agent.ledger.runs(100).length, baseline.runs);
      assert.deepEqual(snapshot(node.root), baseline.files);
      assert.deepEqual(markerLines(node), ["1000"]);
      assert.equal(await metricValue(node, 'fleetplan_agent_envelopes_total{result="accepted"}'), 1);
      assert.equal(await metricValue(node, "fleetplan_agent_accepted_provisioning_id"), 1000);
      await waitFor(async () => (await kv.status(node.host))?.status?.result === reason, 5_000, `status to show ${reason}`);
      assert.equal((await kv.status(node.host))?.status?.applied_id, 1000);
    });
  }
});
