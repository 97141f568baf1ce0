// Shared by both bins: runs a CLI's main, then exits once everything written is flushed.
// process.exit() right after writing drops what a slow pipe has not read yet
// (`fleetplan server list --json | (sleep 2; wc -c)` lost all but the first 64 KiB).

const flushed = (stream) =>
  new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    stream.write("", () => resolve());
  });

/** Run `main(argv)` and exit with its code once stdout and stderr are flushed. */
export const runCli = async (main) => {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  // Exit explicitly: a client library may keep a socket open after a failed connect.
  process.exit(code);
};
