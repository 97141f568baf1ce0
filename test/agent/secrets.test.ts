// Plan secrets (file content, step env values, the scripts themselves) stay out of everything the
// agent reports: its log, the status bucket, /metrics and the ledger — on success and on failure.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import type { Plan } from "../../shared/types.ts";
import { sealFor, waitFor } from "../helpers/fleet.ts";
import { startKvScope, waitMetric } from "../helpers/agent-scope.ts";

const scope = await startKvScope();
after(() => scope.cleanup());
const { kv, world } = scope;

const secret = (what: string): string => `${what}-${randomBytes(16).toString("hex")}`;
const b64 = (text: string): string => Buffer.from(text).toString("base64");

// Every row of every ledger table, as text.
const dumpLedger = (path: string): string => {
  const db = new Database(path, { readonly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
    assert.ok(
      tables.some((t) => t.name === "runs"),
      "the ledger has its tables",
    );
    return tables.map(({ name }) => JSON.stringify(db.prepare(`SELECT * FROM "${name}"`).all())).join("\n");
  } finally {
    db.close();
  }
};

const assertNoSecret = (where: string, text: string, secrets: string[]): void => {
  for (const s of secrets) {
    assert.ok(!text.includes(s), `${where} contains the secret ${s}`);
    assert.ok(!text.includes(b64(s)), `${where} contains the secret ${s} in base64`);
  }
};

describe("no secret reaches the agent's log, status, metrics or ledger", () => {
  test("success, failing step and failing file write", async () => {
    const node = await scope.node("secrets-1", { logLevel: "debug" });
    const conf = join(node.root, "app.conf");
    const s = {
      file: secret("FILE"),
      env: secret("ENV"),
      script: secret("SCRIPT"),
      failEnv: secret("FAILENV"),
      failScript: secret("FAILSCRIPT"),
      badFile: secret("BADFILE"),
    };
    const plans: [number, string, Plan][] = [
      [
        1,
        "succeeded",
        {
          kind: "fleetplan/plan",
          v: 1,
          files: [{ path: conf, mode: 0o600, content: b64(s.file) }],
          steps: [
            {
              name: "uses-secrets",
              env: { API_TOKEN: s.env },
              run: `# ${s.script}\ncat ${conf}\necho "$API_TOKEN"\necho "$API_TOKEN" >&2`,
            },
          ],
        },
      ],
      [
        2,
        "failed",
        {
          kind: "fleetplan/plan",
          v: 1,
          files: [],
          steps: [
            {
              name: "fails-loudly",
              env: { API_TOKEN: s.failEnv },
              run: `# ${s.failScript}\necho "$API_TOKEN" >&2\ncat ${conf} >&2\nexit 7`,
            },
          ],
        },
      ],
      [
        3,
        "failed",
        {
          kind: "fleetplan/plan",
          v: 1,
          files: [{ path: "/fleetplan-outside-the-roots/x.conf", mode: 0o600, content: b64(s.badFile) }],
          steps: [{ name: "never", run: "true" }],
        },
      ],
    ];
    const proc = await scope.process(node);
    const reported: string[] = [];
    for (const [id, result, plan] of plans) {
      await kv.put(node.host, sealFor(world, node, id, plan));
      await waitMetric(node, "fleetplan_agent_accepted_provisioning_id", (v) => v === id);
      await waitMetric(node, "fleetplan_agent_running", (v) => v === 0);
      await waitFor(
        async () => (await kv.status(node.host))?.status?.state === result && (await kv.status(node.host))?.status?.id === id,
        10_000,
        `status ${id} ${result}`,
      );
      reported.push(`status ${id}: ${(await kv.status(node.host))!.raw}`);
      reported.push(`metrics after ${id}: ${await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text()}`);
    }
    assert.equal(await proc.stop(), 0);

    // The secrets did reach where they belong, so their absence elsewhere means something.
    assert.equal(readFileSync(conf, "utf8"), s.file);
    const runLogs = readdirSync(node.config.logDir)
      .map((f) => readFileSync(join(node.config.logDir, f), "utf8"))
      .join("\n");
    assert.ok(runLogs.includes(s.env) && runLogs.includes(s.failEnv) && runLogs.includes(s.file), "step output is in the run logs");

    const all = Object.values(s);
    assertNoSecret("agent log", proc.log(), all);
    for (const text of reported) assertNoSecret(text.slice(0, text.indexOf(":")), text, all);
    const ledger = dumpLedger(join(node.config.stateDir, "ledger.db"));
    assert.match(ledger, /fleetplan-outside-the-roots\/x\.conf/, "the file error is recorded, by path");
    assertNoSecret("ledger", ledger, all);
  });
});
