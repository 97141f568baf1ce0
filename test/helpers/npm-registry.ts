// A read-only npm registry on a loopback port that serves exactly the production packages of
// package-lock.json, with their tarballs taken from the local npm cache (filled by `npm ci`).
// `npm install -g TARBALL --registry URL` then resolves and downloads every dependency without
// leaving 127.0.0.1, the way it would from registry.npmjs.org.
import { spawnSync } from "node:child_process";
import { readFileSync, realpathSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

interface LockEntry {
  version?: string;
  integrity?: string;
  dev?: boolean;
  link?: boolean;
  [field: string]: unknown;
}

// Manifest fields npm reads from a packument version; everything else comes from the tarball.
const MANIFEST_FIELDS = [
  "dependencies",
  "optionalDependencies",
  "peerDependencies",
  "peerDependenciesMeta",
  "bin",
  "engines",
  "os",
  "cpu",
  "license",
  "hasInstallScript",
];

/** npm's own cacache module and cache directory, for reading tarballs by integrity. */
const npmCache = (): { get: (cache: string, integrity: string) => Promise<Buffer>; dir: string } => {
  const npmBin = realpathSync(spawnSync("sh", ["-c", "command -v npm"], { encoding: "utf8" }).stdout.trim());
  const cacache = createRequire(join(dirname(npmBin), "..", "package.json"))("cacache") as {
    get: { byDigest: (cache: string, integrity: string) => Promise<Buffer> };
  };
  const dir = spawnSync("npm", ["config", "get", "cache"], { encoding: "utf8" }).stdout.trim();
  return { get: (cache, integrity) => cacache.get.byDigest(cache, integrity), dir: join(dir, "_cacache") };
};

/** Start the registry for `lockPath`'s production tree; `url` ends with a slash. */
export const startLockRegistry = async (lockPath: string): Promise<{ url: string; served: string[]; close: () => Promise<void> }> => {
  const lock = JSON.parse(readFileSync(lockPath, "utf8")) as { packages: Record<string, LockEntry> };
  const versions = new Map<string, Map<string, LockEntry>>();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === "" || entry.dev || entry.link || !entry.version || !entry.integrity) continue;
    const name = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
    if (!versions.has(name)) versions.set(name, new Map());
    versions.get(name)!.set(entry.version, entry);
  }
  const cache = npmCache();
  const served: string[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? "/").split("?")[0]!.slice(1));
    const tarball = /^(.+)\/-\/[^/]+-(\d[^/]*)\.tgz$/.exec(path);
    const entry = tarball ? versions.get(tarball[1]!)?.get(tarball[2]!) : undefined;
    if (tarball && entry) {
      served.push(`${tarball[1]}@${tarball[2]}`);
      cache.get(cache.dir, entry.integrity!).then(
        (bytes) => res.writeHead(200, { "content-type": "application/octet-stream" }).end(bytes),
        (error: Error) => res.writeHead(500).end(`not in the npm cache (run npm ci): ${error.message}`),
      );
      return;
    }
    const known = versions.get(path);
    if (!known) return void res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const packument = {
      name: path,
      "dist-tags": { latest: [...known.keys()].at(-1) },
      versions: Object.fromEntries(
        [...known].map(([version, e]) => [
          version,
          {
            name: path,
            version,
            ...Object.fromEntries(MANIFEST_FIELDS.filter((f) => e[f] !== undefined).map((f) => [f, e[f]])),
            dist: { tarball: `${base}${path}/-/${path.split("/").at(-1)}-${version}.tgz`, integrity: e.integrity },
          },
        ]),
      ),
    };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(packument));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return { url, served, close: () => new Promise((resolve) => server.close(() => resolve())) };
};
