# The fleetplan package: the coordinator CLI `fleetplan` and the agent `fleetplan-agent`, built
# from this repository with buildNpmPackage (npm ci from package-lock.json, `npm run build`,
# production node_modules only).
#
#   pkgs.callPackage ./nix/package.nix { }     # or the flake: packages.<system>.default
#
# npmDepsHash is the hash of the npm dependencies fetched from package-lock.json. It is a
# placeholder (lib.fakeHash) because it could not be computed here (no nixpkgs on the machine
# this was written on): build once, Nix fails with "hash mismatch ... got: sha256-...", put
# that value here. Do the same after every change to package-lock.json.
{ lib, buildNpmPackage, nodejs_20, python3 }:

buildNpmPackage {
  pname = "fleetplan";
  version = (lib.importJSON ../package.json).version;

  # The repository without .git, the database files and build output.
  src = lib.cleanSourceWith {
    src = lib.cleanSource ../.;
    filter = path: type: !(builtins.elem (baseNameOf path) [ "node_modules" "dist" ".demo" ]);
  };

  npmDepsHash = lib.fakeHash;

  # better-sqlite3 12 and execa 9 need Node.js 20 or 21 (13.x and 10.x need 22); the native
  # modules are compiled for this nodejs, which the agent's service also runs (nix/module.nix).
  nodejs = nodejs_20;
  # node-gyp compiles better-sqlite3 and zstd-napi: their prebuilt downloads fail in the sandbox.
  nativeBuildInputs = [ python3 ];

  # `npm run build` (tsc into dist/) is the default build script. The install step packs the
  # package.json "files" list; its prepack would build a second time.
  npmPackFlags = [ "--ignore-scripts" ];

  passthru = { nodejs = nodejs_20; };

  meta = {
    description = "Signed, encrypted provisioning plans for every server of a fleet, with proof of convergence";
    license = lib.licenses.asl20;
    mainProgram = "fleetplan";
    platforms = lib.platforms.linux;
  };
}
