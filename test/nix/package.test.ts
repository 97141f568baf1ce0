// Every .nix file of the repository parses, and the flake's outputs, evaluated against a stand-in
// for nixpkgs (nixpkgs is not available here, so nothing is built): the package is
// buildNpmPackage with the version of package.json and a placeholder npmDepsHash, the overlay
// adds pkgs.fleetplan, and the NixOS module defaults `package` to the flake's package.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const hasNix = spawnSync("nix-instantiate", ["--version"]).error === undefined;
const skip = hasNix ? false : "nix-instantiate is not installed";
const VERSION: string = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;

// Every .nix file outside node_modules, dist and hidden directories.
const nixFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name.startsWith(".") || e.name === "node_modules" || e.name === "dist") return [];
    const path = join(dir, e.name);
    return e.isDirectory() ? nixFiles(path) : e.name.endsWith(".nix") ? [path] : [];
  });

// The flake's outputs against stub nixpkgs: callPackage imports the file with stub arguments, and
// buildNpmPackage returns its arguments (plus the store path it would have).
const harness = `
{ flakePath }:
let
  lib = {
    importJSON = path: builtins.fromJSON (builtins.readFile path);
    cleanSource = src: src;
    cleanSourceWith = { src, filter }: { inherit src; filterIsFunction = builtins.isFunction filter; };
    fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    licenses.asl20 = "asl20";
    platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
    genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    mkDefault = value: { _type = "override"; priority = 1000; content = value; };
  };
  stubArgs = {
    inherit lib;
    buildNpmPackage = attrs: attrs // { outPath = "/nix/store/00000000000000000000000000000000-" + attrs.pname; };
    nodejs_20 = "nodejs_20";
    python3 = "python3";
  };
  pkgsFor = system: {
    callPackage = path: args: import path (stubArgs // args);
    stdenv.hostPlatform.system = system;
  };
  nixpkgs = { inherit lib; legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] pkgsFor; };
  flake = import flakePath;
  self = flake.outputs { inherit self nixpkgs; };
  package = self.packages.x86_64-linux.default;
  overlaid = self.overlays.default (pkgsFor "x86_64-linux") { };
  module = self.nixosModules.default { inherit lib; pkgs = pkgsFor "x86_64-linux"; };
in {
  inherit (flake) description;
  nixpkgsUrl = flake.inputs.nixpkgs.url;
  systems = builtins.attrNames self.packages;
  package = {
    inherit (package) pname version npmDepsHash npmPackFlags nativeBuildInputs nodejs;
    passthruNodejs = package.passthru.nodejs;
    filtered = package.src.filterIsFunction;
  };
  overlayPname = overlaid.fleetplan.pname;
  moduleImports = map toString module.imports;
  modulePackage = module.services.fleetplan-agent.package.content.outPath;
  modulePriority = module.services.fleetplan-agent.package.priority;
}
`;

test("nix-instantiate parses every .nix file of the repository", { skip }, () => {
  const files = nixFiles(root);
  assert.deepEqual(files.map((f) => relative(root, f)).sort(), ["flake.nix", "nix/module.nix", "nix/package.nix"]);
  for (const file of files) {
    const result = spawnSync("nix-instantiate", ["--parse", file], { encoding: "utf8" });
    assert.equal(result.status, 0, `${relative(root, file)}: ${result.stderr}`);
  }
});

test("the flake exposes the package, the overlay and the module defaulting to the package", { skip }, () => {
  const result = spawnSync(
    "nix-instantiate",
    ["--eval", "--strict", "--json", "--expr", harness, "--arg", "flakePath", join(root, "flake.nix")],
    { encoding: "utf8" },
  );
  assert.equal(result.status, 0, result.stderr);
  const out = JSON.parse(result.stdout);
  assert.deepEqual(out.systems, ["aarch64-linux", "x86_64-linux"]);
  assert.deepEqual(out.package, {
    pname: "fleetplan",
    version: VERSION,
    npmDepsHash: "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    npmPackFlags: ["--ignore-scripts"],
    nativeBuildInputs: ["python3"],
    nodejs: "nodejs_20",
    passthruNodejs: "nodejs_20",
    filtered: true,
  });
  assert.equal(out.overlayPname, "fleetplan");
  assert.deepEqual(out.moduleImports, [join(root, "nix", "module.nix")]);
  assert.equal(out.modulePackage, "/nix/store/00000000000000000000000000000000-fleetplan");
  assert.equal(out.modulePriority, 1000, "the flake package is a default the user can override");
});
