import { join } from "node:path";
import { formatTable } from "../../shared/cli.ts";
import type { CliIo } from "../../shared/cli.ts";
import type { AgentConfig } from "../config.ts";
import { checkDrift } from "../drift.ts";
import { openLedger } from "../ledger.ts";

// `fleetplan-agent drift`: the same check the daemon runs, from this process, against the ledger.
// It does not change the daemon's metric or status: `systemctl kill -s USR1 fleetplan-agent` does.

/** Check the applied plan's files now and print one line per file; exit 1 when any drifted. */
export const driftCommand = (config: AgentConfig, json: boolean, io: CliIo): number => {
  const ledger = openLedger(join(config.stateDir, "ledger.db"));
  try {
    const applied = ledger.lastSuccess();
    const recorded = ledger.appliedFiles();
    const report = checkDrift(recorded, config.fileRoots, Date.now());
    if (json) {
      const files = report.files.map((f) => ({ path: f.path, drifted: f.drifted, problems: f.problems, detail: f.detail }));
      const checkedAt = new Date(report.checkedAt).toISOString();
      const doc = { host: config.hostname, applied_id: applied?.id ?? null, checked_at: checkedAt, drifted: report.drifted, files };
      io.stdout(`${JSON.stringify(doc)}\n`);
    } else if (recorded.length === 0) {
      io.stdout(
        applied === null
          ? "no plan applied yet: nothing to check\n"
          : `no files recorded for applied id ${applied.id}: it wrote none, or ran before this agent version recorded them ` +
              "(the next successful run will)\n",
      );
    } else {
      io.stdout(
        formatTable(
          ["path", "state", "detail"],
          report.files.map((f) => [f.path, f.drifted ? "drifted" : "ok", f.detail]),
        ),
      );
      io.stdout(`${report.drifted} of ${report.files.length} file(s) drifted from applied id ${applied?.id ?? "?"}\n`);
    }
    return report.drifted > 0 ? 1 : 0;
  } finally {
    ledger.close();
  }
};
