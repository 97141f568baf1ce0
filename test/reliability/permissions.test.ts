// File permissions (issue 7 item 6): the real agent binary refuses to start, exit code 2, with a
// message naming the file and the fix, when its node private key is readable by others, its
// trust file writable by others, or its state dir writable by others. The same node with the
// modes fixed starts.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { AGENT_BIN, createNode, createWorld, startAgentProcess } from "../helpers/fleet.ts";
import type { Node, World } from "../helpers/fleet.ts";

const run = promisify(execFile);
// Nothing listens here: the agent must refuse before it ever connects.
const STORE = "nats://127.0.0.1:1";

const startAgent = async (node: Node): Promise<{ code: number; stderr: string }> => {
  const r = await run("node", [AGENT_BIN, "run", "--config", node.configPath], { timeout: 20_000 }).catch((e) => e);
  return { code: typeof r.code === "number" ? r.code : 0, stderr: String(r.stderr) };
};

describe("the agent refuses insecure files", { timeout: 60_000 }, () => {
  let world: World;

  before(async () => {
    world = await createWorld("fleetplan-perms-");
  });

  after(() => world?.cleanup());

  it("node private key readable by others (0644): exit 2, names the key and `chmod 600`", async () => {
    const node = await createNode(world, "perm-key", STORE);
    chmodSync(node.nodeKeyPath, 0o644);
    const { code, stderr } = await startAgent(node);
    assert.equal(code, 2, stderr);
    assert.match(
      stderr,
      new RegExp(
        `node key ${node.nodeKeyPath} is accessible by group or others \\(mode 0644\\); run: chmod 600 ${node.nodeKeyPath} \\(insecure_key_file\\)`,
      ),
    );
  });

  it("trust file writable by others (0666): exit 2, names the file and `chmod go-w`", async () => {
    const trust = join(world.dir, "trust-writable");
    copyFileSync(world.trustPath, trust);
    chmodSync(trust, 0o666);
    const node = await createNode(world, "perm-trust", STORE, { trust });
    const { code, stderr } = await startAgent(node);
    assert.equal(code, 2, stderr);
    assert.match(
      stderr,
      new RegExp(`trust file ${trust} is writable by group or others \\(mode 0666\\); run: chmod go-w ${trust} \\(insecure_key_file\\)`),
    );
  });

  it("state dir writable by others (0777): exit 2, names the dir and `chmod 700`; fixed, the agent starts", async () => {
    const node = await createNode(world, "perm-state", STORE);
    mkdirSync(node.config.stateDir, { mode: 0o700 });
    chmodSync(node.config.stateDir, 0o777);
    const { code, stderr } = await startAgent(node);
    assert.equal(code, 2, stderr);
    const dir = node.config.stateDir;
    assert.match(
      stderr,
      new RegExp(`state dir ${dir} is writable by group or others \\(mode 0777\\); run: chmod 700 ${dir} \\(insecure_key_file\\)`),
    );

    chmodSync(dir, 0o700);
    const agent = await startAgentProcess(node);
    assert.equal(await agent.stop(), 0, agent.log());
  });
});
