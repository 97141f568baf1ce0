# fleetplan as a Nix flake: the package (nix/package.nix), the NixOS module for the agent
# (nix/module.nix, its `package` defaulting to this flake's package) and an overlay adding
# pkgs.fleetplan. See nix/README.md.
{
  description = "fleetplan: signed, encrypted provisioning plans for a fleet, with proof of convergence";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: {
        default = pkgs.callPackage ./nix/package.nix { };
      });

      overlays.default = final: prev: {
        fleetplan = final.callPackage ./nix/package.nix { };
      };

      nixosModules.default = { lib, pkgs, ... }: {
        imports = [ ./nix/module.nix ];
        services.fleetplan-agent.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      };
    };
}
