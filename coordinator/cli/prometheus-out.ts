import { chmodSync, existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { CliIo } from "../../shared/cli.ts";
import { FleetplanError } from "../../shared/errors.ts";
import { writeFileAtomic } from "../../shared/files.ts";

/** Where a file for Prometheus goes, and which names its reader picks up. */
export interface PrometheusFile {
  path: string;
  /** e.g. "--prometheus-sd file" */
  what: string;
  /** Name endings the reader picks up (file_sd: .json/.yml/.yaml; textfile collector: .prom). */
  endings: string[];
  reader: string;
}

/**
 * Replace a file that Prometheus or node_exporter reads, atomically (they never see half a file),
 * world-readable (they run as their own users; it holds no secret). A missing directory is an error
 * naming it; a name the reader skips is written, with a warning saying so.
 */
export const writeForPrometheus = (file: PrometheusFile, text: string, io: CliIo): void => {
  const dir = dirname(resolve(file.path));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    const fix = `create it (mkdir -p ${dir}) or pick another path`;
    throw new FleetplanError("not_found", `${file.what} ${file.path}: directory ${dir} does not exist; ${fix}`);
  }
  if (!file.endings.some((e) => file.path.endsWith(e))) {
    io.stderr(`warning: ${file.what} ${file.path} does not end in ${file.endings.join(" or ")}: ${file.reader} will not read it\n`);
  }
  try {
    writeFileAtomic(file.path, text, 0o644);
    // Also under a umask such as 077, which would leave it readable by us alone.
    chmodSync(file.path, 0o644);
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new FleetplanError("invalid_argument", `cannot write ${file.what} ${file.path}: ${why}`);
  }
};
