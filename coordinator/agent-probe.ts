// Is an agent demonstrably down? One cheap GET of its metrics endpoint: any HTTP answer means the
// agent process is up; a refused or silent connection counts as a miss (wait.ts decides from misses).
import type { ServerRow } from "./db.ts";

/** One probe answers within this long, or counts as a miss. */
const PROBE_TIMEOUT_MS = 1_000;

/** A probe per host with a metrics URL: true (answered), false (unreachable); hosts without one are never probed (null). */
export const createMetricsProbe = (servers: Pick<ServerRow, "host" | "metricsUrl">[], timeoutMs = PROBE_TIMEOUT_MS) => {
  const urls = new Map(servers.flatMap((s) => (s.metricsUrl ? [[s.host, s.metricsUrl] as const] : [])));
  return async (host: string): Promise<boolean | null> => {
    const url = urls.get(host);
    if (url === undefined) return null;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel();
      return true;
    } catch {
      return false;
    }
  };
};
