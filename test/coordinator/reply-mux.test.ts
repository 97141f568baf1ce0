// The puts' request mux (coordinator/store/reply-mux.ts) against a real nats-server: replies reach
// their own request, a subject nobody answers fails fast, a silent responder expires at the
// deadline, closing fails what still waits, and replies go under the connection's inbox prefix.
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { createReplyMux } from "../../coordinator/store/reply-mux.ts";
import { type NatsServer, startNats } from "../helpers/nats.ts";

const T = { timeout: 20_000 };
const ENCODER = new TextEncoder();
const expired = () => new Error("expired");

describe("reply mux, against a real nats-server", T, () => {
  let server: NatsServer;
  let nc: NatsConnection;
  before(async () => {
    server = await startNats();
    nc = await connect({ servers: server.url, inboxPrefix: "_INBOX_fp.coord" });
    // An echo service that answers with the subject's last token and where the reply went.
    nc.subscribe("echo.*", { callback: (_, m) => void m.respond(ENCODER.encode(`${m.subject.split(".")[1]} ${m.reply}`)) });
    nc.subscribe("silent", { callback: () => {} });
    await nc.flush();
  });
  after(async () => {
    await nc?.close();
    await server?.stop();
  });

  it("answers 500 requests in flight, each with its own reply, under the inbox prefix", T, async () => {
    const mux = createReplyMux(nc, "_INBOX_fp.coord", 20);
    const deadline = performance.now() + 5_000;
    const replies = await Promise.all(
      Array.from({ length: 500 }, (_, i) => mux.request(`echo.${i}`, ENCODER.encode("x"), { deadline, expired })),
    );
    replies.forEach((m, i) => {
      const [token, reply] = m.string().split(" ");
      assert.equal(token, String(i));
      assert.match(reply!, /^_INBOX_fp\.coord\.[^.]+\.[0-9a-z]+$/);
    });
    mux.close();
  });

  it("fails a request nobody can answer, and one whose responder stays silent at its deadline", T, async () => {
    const mux = createReplyMux(nc, undefined, 20);
    const far = performance.now() + 5_000;
    await assert.rejects(mux.request("nobody.here", new Uint8Array(), { deadline: far, expired }), /no responders on nobody\.here/);
    const started = performance.now();
    await assert.rejects(mux.request("silent", new Uint8Array(), { deadline: started + 200, expired }), /^Error: expired$/);
    const waited = performance.now() - started;
    assert.ok(waited >= 195 && waited < 2_000, `expired after ${waited} ms`);
    mux.close();
  });

  it("close fails every request still waiting", T, async () => {
    const mux = createReplyMux(nc, undefined, 20);
    const waiting = mux.request("silent", new Uint8Array(), { deadline: performance.now() + 10_000, expired });
    await new Promise((resolve) => setTimeout(resolve, 50));
    mux.close();
    await assert.rejects(waiting, /the store was closed/);
  });
});
