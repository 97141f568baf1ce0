// One process of bench/scale.ts: COUNT real agent feeds (agent/store/nats-feed.ts, no executor),
// hosts scale-START .. scale-(START+COUNT-1). Prints `{"ready":n}` once every feed has read its
// key, then `{"h":index,"t":ms}` per delivered envelope, on stdout; exits when stdin closes.
import { parseArgs } from "node:util";
import { createNatsFeed } from "../agent/store/nats-feed.ts";
import { silentLogger } from "../shared/log.ts";
import { mapLimit } from "../shared/pool.ts";
import { normalizeStoreConfig } from "../shared/store-config.ts";
import type { PlanFeed } from "../shared/types.ts";

const { values } = parseArgs({ options: { url: { type: "string" }, start: { type: "string" }, count: { type: "string" } } });
const config = normalizeStoreConfig({ url: values.url! }, [], {});
const start = Number(values.start);
const count = Number(values.count);
const feeds: PlanFeed[] = [];
const out: string[] = [];
const flush = () => {
  if (out.length > 0) process.stdout.write(`${out.splice(0).join("\n")}\n`);
};
setInterval(flush, 50).unref();

let connected = 0;
const indexes = Array.from({ length: count }, (_, i) => start + i);
// Connections opened a few hundred at a time: the server's accept backlog is finite.
await mapLimit(indexes, 200, async (index) => {
  const feed = createNatsFeed(config, { logger: silentLogger });
  feeds.push(feed);
  await new Promise<void>((resolve) => {
    void feed.follow(`scale-${index}`, {
      onEnvelope: async () => void out.push(`{"h":${index},"t":${Date.now()}}`),
      onConnection: (up) => {
        if (up) resolve();
      },
    });
  });
  connected++;
});
out.push(`{"ready":${connected}}`);
flush();
process.stdin.resume();
process.stdin.on("end", () => {
  void Promise.all(feeds.map((f) => f.close())).finally(() => process.exit(0));
});
