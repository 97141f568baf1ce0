// Inventory input: every problem of a bad input is reported at once, and good input normalised.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { normalizeMetricsUrl, parseServerImport, validateServerInput } from "../../coordinator/inventory.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { formatKey, generateNodeKey, KeyType } from "../../shared/keys.ts";
import { sodiumReady } from "../../shared/sodium.ts";

await sodiumReady();
const dir = mkdtempSync(join(tmpdir(), "fleetplan-inv-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const KEY = generateNodeKey();
const KEY_TEXT = formatKey(KeyType.NodePublic, KEY.publicKey);
const KEY2 = generateNodeKey();
mkdirSync(join(dir, "keys"));
writeFileSync(join(dir, "keys", "web-2.pub"), `${formatKey(KeyType.NodePublic, KEY2.publicKey)}\n`);
const NOW = 1_700_000_000_000;

/** The single invalid_argument error `fn` throws, with its listed problems. */
const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof FleetplanError);
    assert.equal(error.reason, "invalid_argument");
    return error.message
      .split("\n")
      .slice(1)
      .map((l) => l.trim());
  }
  assert.fail("expected an error");
};

describe("validateServerInput", () => {
  it("normalises a complete entry", () => {
    const row = validateServerInput(
      {
        host: "web-1.example.org",
        node_key: `  ${KEY_TEXT.split(" ").slice(0, 2).join(" ")} `,
        metrics: "web-1.example.org:9464",
        ssh: "root@10.0.0.1:2222",
        group: "web",
        bootstrapped: "no",
      },
      { now: NOW },
    );
    assert.deepEqual(row, {
      host: "web-1.example.org",
      nodeKey: KEY_TEXT,
      nodeKeyId: KEY.keyId,
      metricsUrl: "http://web-1.example.org:9464/metrics",
      ssh: "root@10.0.0.1:2222",
      group: "web",
      bootstrapped: false,
      addedAt: NOW,
    });
  });

  it("reads the node key from a .pub file relative to baseDir, and defaults the rest", () => {
    const row = validateServerInput({ host: "web-2", node_key: "keys/web-2.pub" }, { baseDir: dir, now: NOW });
    assert.equal(row.nodeKeyId, KEY2.keyId);
    assert.deepEqual([row.metricsUrl, row.ssh, row.group, row.bootstrapped], [null, null, null, true]);
  });

  it("lists every problem of one entry in one error", () => {
    const problems = problemsOf(() =>
      validateServerInput({
        host: "bad host",
        node_key: "fleetplan-admin-ed25519 AAAA",
        metrics: "ftp://x/",
        ssh: "a@b@c",
        group: "we b",
        bootstrapped: "maybe",
      }),
    );
    assert.equal(problems.length, 6);
    assert.match(problems[0]!, /^server: host: "bad host" is not a valid hostname$/);
    assert.match(problems[1]!, /^server: node_key: /);
    assert.match(problems[2]!, /^server: metrics: scheme must be http or https/);
    assert.match(problems[3]!, /^server: ssh: /);
    assert.match(problems[4]!, /^server: group: /);
    assert.match(problems[5]!, /^server: bootstrapped: /);
  });

  it("requires ssh for a server that is not bootstrapped: SSH is the only way to reach it", () => {
    for (const bootstrapped of [false, "false", "no"]) {
      assert.deepEqual(
        problemsOf(() => validateServerInput({ host: "web-1", node_key: KEY_TEXT, bootstrapped })),
        ["server: ssh is required when bootstrapped is false (plans go over SSH until the agent runs)"],
      );
    }
    assert.equal(validateServerInput({ host: "web-1", node_key: KEY_TEXT, bootstrapped: false, ssh: "root@web-1" }).bootstrapped, false);
  });

  it("requires host and node_key", () => {
    assert.deepEqual(
      problemsOf(() => validateServerInput({})),
      ["server: host is required", "server: node_key is required"],
    );
  });

  it("never echoes a private key given by mistake", () => {
    const privateText = formatKey(KeyType.NodePrivate, KEY.privateKey);
    const [problem] = problemsOf(() => validateServerInput({ host: "web-1", node_key: privateText }));
    assert.match(problem!, /node_key/);
    assert.ok(!problem!.includes(privateText.split(" ")[1]!));
  });
});

describe("normalizeMetricsUrl", () => {
  const cases: [string, string][] = [
    ["10.0.0.5:9464", "http://10.0.0.5:9464/metrics"],
    ["http://h:9464", "http://h:9464/metrics"],
    ["http://h:9464/", "http://h:9464/metrics"],
    ["https://h/agent/metrics", "https://h/agent/metrics"],
    ["http://[::1]:9464", "http://[::1]:9464/metrics"],
  ];
  for (const [input, want] of cases) it(`${input} → ${want}`, () => assert.equal(normalizeMetricsUrl(input), want));
  for (const bad of ["http://user:pw@h:1/metrics", "http://h/metrics#x", "file:///etc/passwd", "http://", "::::"]) {
    it(`refuses ${bad}`, () => assert.throws(() => normalizeMetricsUrl(bad), FleetplanError));
  }
});

describe("parseServerImport", () => {
  const keyFile = join(dir, "keys", "web-2.pub");

  it("reads a JSON array", () => {
    const text = JSON.stringify([
      { host: "web-1", node_key: KEY_TEXT, metrics: "http://web-1:9464", group: "web" },
      { host: "web-2", node_key: "keys/web-2.pub", bootstrapped: false, ssh: "web-2" },
    ]);
    const rows = parseServerImport(text, join(dir, "fleet.json"), { now: NOW });
    assert.deepEqual(
      rows.map((r) => [r.host, r.nodeKeyId, r.metricsUrl, r.bootstrapped, r.ssh]),
      [
        ["web-1", KEY.keyId, "http://web-1:9464/metrics", true, null],
        ["web-2", KEY2.keyId, null, false, "web-2"],
      ],
    );
  });

  it("reads CSV with a header in any order, quoted fields, CRLF and blank lines", () => {
    const text = `group,host,node_key,metrics,ssh,bootstrapped\r\n\r\nweb,web-1,"${KEY_TEXT}",,"ops@[::1]:22",\r\n,web-2,${keyFile},https://web-2/m,root@web-2,false\r\n`;
    const rows = parseServerImport(text, join(dir, "fleet.csv"), { now: NOW });
    assert.deepEqual(
      rows.map((r) => [r.host, r.group, r.nodeKey, r.ssh, r.metricsUrl, r.bootstrapped]),
      [
        ["web-1", "web", KEY_TEXT, "ops@[::1]:22", null, true],
        ["web-2", null, formatKey(KeyType.NodePublic, KEY2.publicKey), "root@web-2", "https://web-2/m", false],
      ],
    );
  });

  it("lists every bad CSV line with its line number, including duplicate hosts", () => {
    const text = [
      "host,node_key,metrics,ssh,group,bootstrapped",
      `web-1,${KEY_TEXT},,,,`,
      `web-1,${KEY_TEXT},,,,`,
      `web_3!,${KEY_TEXT},,,,`,
      `web-4,missing.pub,,,,`,
      `web-5,${KEY_TEXT},,,`,
      `web-6,${KEY_TEXT},http://h:1/#x,root@h:99999,,`,
      `web-7,"${KEY_TEXT},,,,`,
    ].join("\n");
    const problems = problemsOf(() => parseServerImport(text, "fleet.csv"));
    assert.deepEqual(problems, [
      "fleet.csv:3: host web-1 already appears at fleet.csv:2",
      'fleet.csv:4: host: "web_3!" is not a valid hostname',
      problems[2],
      "fleet.csv:6: expected 6 fields, got 5",
      "fleet.csv:7: metrics: URL must not have a #fragment",
      "fleet.csv:7: ssh: port 99999 is not in 1..65535",
      "fleet.csv:8: bad quoting",
    ]);
    assert.match(problems[2]!, /^fleet\.csv:5: node_key: cannot read node public key .*missing\.pub: ENOENT$/);
  });

  it("lists hosts already in the inventory with the other problems", () => {
    const text = JSON.stringify([
      { host: "web-1", node_key: KEY_TEXT },
      { host: "web-2", node_key: KEY_TEXT, group: "a b" },
      { host: "web-3", node_key: KEY_TEXT },
    ]);
    assert.deepEqual(
      problemsOf(() => parseServerImport(text, "f.json", { existing: new Set(["web-1", "web-3"]) })),
      [
        "f.json[0]: host web-1 is already in the inventory",
        'f.json[1]: group: "a b" must match [A-Za-z0-9_.-]{1,64}',
        "f.json[2]: host web-3 is already in the inventory",
      ],
    );
  });

  it("refuses a CSV header with unknown columns or without node_key", () => {
    const problems = problemsOf(() => parseServerImport(`host,key,host\nweb-1,${KEY_TEXT},web-1\n`, "fleet.csv"));
    assert.deepEqual(problems, [
      "fleet.csv:1: header has unknown or repeated column(s) key, host; expected host,node_key,metrics,ssh,group,bootstrapped",
      "fleet.csv:1: header must name host and node_key",
    ]);
  });

  it("lists every bad JSON entry by index", () => {
    const text = JSON.stringify([
      { host: "web-1", node_key: KEY_TEXT, colour: "blue" },
      "web-2",
      { host: 7, node_key: KEY_TEXT },
      { host: "web-1", node_key: KEY_TEXT, bootstrapped: 3 },
    ]);
    assert.deepEqual(
      problemsOf(() => parseServerImport(text, "f.json")),
      [
        "f.json[0]: unknown field(s) colour; expected host, node_key, metrics, ssh, group, bootstrapped, node_key_id, tags",
        "f.json[1]: expected an object",
        "f.json[2]: host must be a string",
        "f.json[3]: bootstrapped: 3 is not true/false",
      ],
    );
  });

  it("refuses JSON that is not an array, broken JSON and empty files", () => {
    assert.deepEqual(
      problemsOf(() => parseServerImport('{"host":"x"}', "f.json")),
      ["f.json: expected a JSON array of servers"],
    );
    assert.match(problemsOf(() => parseServerImport("[{", "f.json"))[0]!, /^f\.json: not valid JSON/);
    assert.deepEqual(
      problemsOf(() => parseServerImport("\n\n", "f.csv")),
      ["f.csv: no servers"],
    );
    assert.deepEqual(
      problemsOf(() => parseServerImport("[]", "f.json")),
      ["f.json: no servers"],
    );
  });

  it("caps a huge problem list", () => {
    const text = `host,node_key\n${Array.from({ length: 120 }, (_, i) => `bad host ${i},${KEY_TEXT}`).join("\n")}`;
    const problems = problemsOf(() => parseServerImport(text, "f.csv"));
    assert.equal(problems.length, 51);
    assert.equal(problems[50], "... and 70 more");
  });
});
