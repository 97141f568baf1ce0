// Load (issue 7 item 5): 200 in-process agents, 10 pushes in a row, through bench/load-core.ts.
// Agents are newest-wins: each one's ledger must show the ids it ran strictly increasing (never an
// older id after a newer one, none twice) and the last pushed id applied. runLoad bounds every
// wait by one deadline (FLEETPLAN_LOAD_DEADLINE_MS, default 240 s) and its cleanup by CLEANUP_MS;
// the test's own timeout is 45 s longer still (200 agents' work on one event loop can make timers
// fire 15 s late), so a slow machine fails with runLoad's message naming what was missing for which
// agents. The figures go to the test's diagnostics.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { CLEANUP_MS, runLoad } from "../../bench/load-core.ts";
import { checkAgent } from "../../bench/load-check.ts";

const AGENTS = 200;
const PUSHES = 10;

// The deadline for runLoad, from FLEETPLAN_LOAD_DEADLINE_MS (ms) when set.
const deadlineMs = (raw = process.env.FLEETPLAN_LOAD_DEADLINE_MS): number => {
  if (raw === undefined || raw === "") return 240_000;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 1) {
    throw new RangeError(`FLEETPLAN_LOAD_DEADLINE_MS must be a positive integer of milliseconds (e.g. 240000), got "${raw}"`);
  }
  return ms;
};
const DEADLINE_MS = deadlineMs();

// Anything left open (a store connection reconnecting forever) would keep node's test runner
// waiting with no end: name it and exit. The timer is unref'd, so it never delays a clean exit.
after(() => {
  setTimeout(() => {
    const held = process.getActiveResourcesInfo().join(", ");
    console.error(`load.test.ts: still running 10 s after the tests ended, held by ${held}; exiting`);
    process.exit(1);
  }, 10_000).unref();
});

describe("load: the newest-wins check", { timeout: 5_000 }, () => {
  const runs = [
    { id: 1, state: "succeeded" },
    { id: 2, state: "superseded" },
    { id: 4, state: "succeeded" },
  ];
  const ok = { host: "h", runs, executed: [1, 4] };
  it("accepts skipped and superseded ids when the ids run only go up and the last one is applied", () => {
    assert.deepEqual(checkAgent(ok, 4), []);
  });
  it("names an older id run after a newer one, an id run twice, and a last id not applied", () => {
    assert.match(checkAgent({ ...ok, executed: [4, 1] }, 4).join("\n"), /h: ran ids \[4,1\] in that order; want strictly increasing/);
    assert.match(checkAgent({ ...ok, executed: [1, 1, 4] }, 4).join("\n"), /h: ran ids \[1,1,4\] in that order/);
    assert.deepEqual(checkAgent(ok, 5), ["h: last pushed id 5 not applied (newest accepted: 4 (succeeded); applied [1,4])"]);
    const cut = { ...ok, runs: [...ok.runs, { id: 5, state: "running" }], executed: [1, 4, 5] };
    assert.deepEqual(checkAgent(cut, 6), ["h: last pushed id 6 not applied (newest accepted: 5 (running); applied [1,4])"]);
  });
});

describe(`load: ${AGENTS} agents, ${PUSHES} pushes in a row`, { timeout: DEADLINE_MS + CLEANUP_MS + 45_000 }, () => {
  it(`newest wins on every agent, all converge within ${DEADLINE_MS} ms`, async (t) => {
    const report = (figure: Record<string, unknown>) => t.diagnostic(JSON.stringify({ bench: "load", ...figure }));
    const result = await runLoad({ agents: AGENTS, pushes: PUSHES, deadlineMs: DEADLINE_MS, report });
    const shown = result.problems.slice(0, 20).join("\n");
    const count = `${result.problems.length} problem(s)${result.problems.length > 20 ? ", the first 20" : ""}`;
    assert.equal(result.problems.length, 0, `${count}:\n${shown}`);
    assert.ok(result.runs_succeeded >= AGENTS * 2, "every agent applied at least the readiness push and the last one");
  });
});
