import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createAgentMetrics, setApplied, setLastRun } from "../../agent/metrics.ts";

/** The state an agent-like exposer reports; rendered by the agent's own metrics code. */
export interface FakeAgentState {
  applied?: { id: number; planHash: string; bootTime: number };
  acceptedId?: number;
  lastRun?: { success: boolean; finishedAt: number; durationMs: number };
  bootTime?: number;
  running?: boolean;
  /** Files of the applied plan found changed (fleetplan_agent_drifted_files). */
  driftedFiles?: number;
  /** The identity labels of fleetplan_agent_info. */
  host?: string;
  nodeKeyId?: string;
}

/** The exposition text a real agent in `state` serves on /metrics. */
export const agentExposition = async (state: FakeAgentState): Promise<string> => {
  const m = createAgentMetrics({ version: "test", store: "nats", host: state.host ?? "", node_key_id: state.nodeKeyId ?? "" });
  if (state.applied) setApplied(m, state.applied);
  if (state.lastRun) setLastRun(m, state.lastRun);
  if (state.acceptedId !== undefined) m.acceptedId.set(state.acceptedId);
  if (state.bootTime !== undefined) m.bootTime.set(state.bootTime);
  m.running.set(state.running ? 1 : 0);
  if (state.driftedFiles !== undefined) m.driftedFiles.set(state.driftedFiles);
  return m.registry.metrics();
};

export interface ExposerRoute {
  body: string;
  /** Answer only after this long (a slow or hung agent). */
  delayMs?: number;
  status?: number;
  /** Send the headers and part of the body, then stall (a hung agent mid-response). */
  stallBody?: boolean;
}

export interface Exposer {
  port: number;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  routes: Map<string, ExposerRoute>;
  /** Requests seen per path, and the most ever in flight at once. */
  hits: Map<string, number>;
  readonly maxInFlight: number;
  close(): Promise<void>;
}

/** One loopback HTTP server answering fixed bodies per path (many fake agents on one port). */
export const startExposer = async (routes: Record<string, ExposerRoute> = {}): Promise<Exposer> => {
  const table = new Map(Object.entries(routes));
  const hits = new Map<string, number>();
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    res.once("close", () => inFlight--);
    const route = table.get(path);
    if (route === undefined) return void res.writeHead(404).end();
    const answer = () => {
      if (res.destroyed) return;
      res.writeHead(route.status ?? 200, { "content-type": "text/plain; version=0.0.4" });
      if (route.stallBody) res.write(route.body.slice(0, route.body.length >> 1));
      else res.end(route.body);
    };
    if (route.delayMs) setTimeout(answer, route.delayMs).unref();
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    routes: table,
    hits,
    get maxInFlight() {
      return maxInFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};
