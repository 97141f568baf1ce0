// fleetplan-agent's per-command help and did-you-mean (issue 17), in process: no store, no ledger.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { AGENT_HELP } from "../../agent/cli/help.ts";
import { main } from "../../agent/cli/main.ts";

const agent = async (args: string[]) => {
  let stdout = "";
  let stderr = "";
  const code = await main(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
};

describe("fleetplan-agent help", { timeout: 20_000 }, () => {
  it("every command main.ts dispatches has a help entry", () => {
    const source = readFileSync(new URL("../../agent/cli/main.ts", import.meta.url), "utf8");
    const commands = [...source.matchAll(/^ {6}case "([a-z-]+)":/gm)].map((m) => m[1]!);
    assert.ok(commands.length >= 7, `found ${commands.length} commands`);
    assert.deepEqual(
      commands.filter((c) => AGENT_HELP[c] === undefined),
      [],
      "commands without an entry in agent/cli/help.ts",
    );
  });

  it("CMD --help and help CMD print the command's own page, exit 0", async () => {
    for (const args of [
      ["history", "--help"],
      ["help", "history"],
      ["history", "-h"],
    ]) {
      const r = await agent(args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage: fleetplan-agent history \[--limit N\]/);
      assert.match(r.stdout, /--limit N +at most N runs/);
      assert.match(r.stdout, /Example:\n {2}fleetplan-agent history --limit 5 --json/);
    }
    assert.match((await agent(["--help"])).stdout, /^fleetplan-agent .* — verifies and applies/);
  });

  it("an unknown command or flag names the nearest", async () => {
    const cmd = await agent(["histroy"]);
    assert.equal(cmd.code, 2);
    assert.match(cmd.stderr, /unknown command "histroy" \(did you mean history\?\); see fleetplan-agent --help/);
    assert.match((await agent(["help", "stauts"])).stderr, /did you mean status\?/);
    const flag = await agent(["status", "--stat-dir", "/tmp"]);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /Unknown option '--stat-dir' \(did you mean --state-dir\?\)/);
  });
});
