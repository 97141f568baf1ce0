// Load (issue 7 item 5): 200 in-process agents, 10 pushes in a row, through bench/load-core.ts.
// Every ledger must show the last id applied and every earlier id applied once or superseded:
// none missed, none twice, none out of order. The figures go to the test's diagnostics.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runLoad } from "../../bench/load-core.ts";

const AGENTS = 200;
const PUSHES = 10;

describe("load: 200 agents, 10 pushes in a row", { timeout: 120_000 }, () => {
  it("no missed, duplicated or out-of-order runs; converges within 90 s", async (t) => {
    const result = await runLoad({ agents: AGENTS, pushes: PUSHES, timeoutMs: 90_000, report: (f) => t.diagnostic(JSON.stringify({ bench: "load", ...f })) });
    assert.deepEqual(result.problems, []);
    // The readiness push (id 1) and the 10 timed ones: each either ran once or was superseded.
    assert.equal(result.runs_succeeded + result.runs_superseded, AGENTS * (PUSHES + 1));
    assert.ok(result.runs_succeeded >= AGENTS * 2, "every agent applied at least the readiness push and the last one");
    assert.ok(result.converge_ms < 90_000, `converged in ${result.converge_ms} ms`);
  });
});
