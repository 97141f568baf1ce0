// The Consul transport against a tiny node:http server that streams a body without end: the
// reply is cut off at maxReplyBytes with a coded error instead of filling the memory.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { kvGetRequest } from "../../shared/consul-kv.ts";
import { CONSUL_MAX_REPLY_BYTES, consulTransport, singleKeyReplyBytes } from "../../shared/consul-transport.ts";
import { normalizeStoreConfig } from "../../shared/store-config.ts";
import { waitFor } from "../helpers/ports.ts";

const CHUNK = Buffer.alloc(64 * 1024, "a");

// Streams `total` bytes (chunked, no Content-Length) and records how many went out before the client hung up.
const startServer = async (total: number) => {
  const state = { sent: 0, closedEarly: false };
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "Content-Type": "application/json", "X-Consul-Index": "5" });
    res.on("close", () => (state.closedEarly = !res.writableFinished));
    const pump = (): void => {
      while (state.sent < total && !res.destroyed) {
        const chunk = CHUNK.subarray(0, Math.min(CHUNK.length, total - state.sent));
        state.sent += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      if (!res.destroyed) res.end();
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const problems: string[] = [];
  const config = normalizeStoreConfig(
    { url: `consul://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutMs: 5_000 },
    problems,
    {},
  );
  assert.deepEqual(problems, []);
  return { state, config, stop: () => new Promise<void>((resolve) => server.close(() => resolve())).then(() => undefined) };
};

const stops: (() => Promise<void>)[] = [];
after(async () => {
  for (const stop of stops) await stop();
});

describe("consul transport", () => {
  it("cuts off a reply over maxReplyBytes with value_too_large, long before the sender is done", async () => {
    const server = await startServer(96 * 1024 * 1024);
    const transport = consulTransport(server.config, { http, https, readFile: readFileSync }, 256 * 1024);
    stops.push(server.stop, async () => transport.destroy());
    const request = kvGetRequest(server.config, "fleetplan/plans/web-1");
    await assert.rejects(transport.send(request, new AbortController().signal), {
      reason: "value_too_large",
      message:
        "consul: the reply for fleetplan/plans/web-1 exceeds 262144 bytes and was cut off (a value over maxValueBytes, or not Consul answering)",
    });
    await waitFor(() => server.state.closedEarly, 5_000, "the server to see the connection dropped");
    assert.ok(server.state.sent < 64 * 1024 * 1024, `the server got to send ${server.state.sent} bytes`);
  });

  it("takes a reply of exactly maxReplyBytes", async () => {
    const server = await startServer(256 * 1024);
    const transport = consulTransport(server.config, { http, https, readFile: readFileSync }, 256 * 1024);
    stops.push(server.stop, async () => transport.destroy());
    const reply = await transport.send(kvGetRequest(server.config, "k"), new AbortController().signal);
    assert.equal(reply.body.length, 256 * 1024);
  });

  it("sizes the caps: a single key holds one base64 value plus 64 KiB, a prefix read 64 MiB", () => {
    assert.equal(singleKeyReplyBytes(524_288), 699_051 + 65_536);
    assert.equal(CONSUL_MAX_REPLY_BYTES, 64 * 1024 * 1024);
  });
});
