# NixOS module for the fleetplan agent. It mirrors systemd/fleetplan-agent.service;
# the comments there explain each setting. Keep the two in step
# (test/nix/module.test.ts compares them).
#
#   imports = [ ./path/to/fleetplan/nix/module.nix ];   # or the flake's nixosModules.default
#   services.fleetplan-agent = {
#     enable = true;
#     store = "nats://nats.example.org:4222";
#     storeCredentialsFile = "/etc/fleetplan/store.creds";   # from `fleetplan store credentials`
#   };
{ config, lib, pkgs, ... }:

let
  cfg = config.services.fleetplan-agent;
  inherit (lib) mkEnableOption mkOption mkIf types;

  # Same path as the Debian unit, so the CLI and docs stay the same everywhere.
  configPath = "/etc/fleetplan/agent.json";
  # systemd puts the credentials of LoadCredential= here while the service runs.
  credentialsDir = "/run/credentials/fleetplan-agent.service";
  # The store credentials reach the agent as a path (storeOptions.credsFile) to the systemd
  # credential: the file's content never enters the Nix store.
  storeOptions = (cfg.settings.storeOptions or { })
    // lib.optionalAttrs (cfg.storeCredentialsFile != null) { credsFile = "${credentialsDir}/store.creds"; };
  agentSettings = cfg.settings // lib.optionalAttrs (storeOptions != { }) { inherit storeOptions; };
  configFile = pkgs.writeText "fleetplan-agent.json" (builtins.toJSON agentSettings);

  # As the Debian unit: node with the unit's V8 flag, running the agent's entry point.
  nodejs = cfg.package.nodejs or pkgs.nodejs_20;
  agentEntry = "${cfg.package}/lib/node_modules/fleetplan/agent/bin.mjs";

  # "127.0.0.1:9465", "[::]:9465", "0.0.0.0:9465" -> 9465
  metricsPort = lib.toInt (lib.last (lib.splitString ":" cfg.metricsListen));
  metricsHost = lib.concatStringsSep ":" (lib.init (lib.splitString ":" cfg.metricsListen));
  loopbackOnly = builtins.elem metricsHost [ "127.0.0.1" "localhost" "[::1]" ];

  # StateDirectory= only takes paths below /var/lib. Any other directory is
  # created by tmpfiles with the same 0700 mode.
  stateUnderVarLib = lib.hasPrefix "/var/lib/" cfg.stateDir;

  # Secret paths are passed as strings so that they are never copied into the
  # world-readable Nix store.
  isOutsideStore = p: lib.hasPrefix "/" p && !(lib.hasPrefix "${builtins.storeDir}/" p);
in
{
  options.services.fleetplan-agent = {
    enable = mkEnableOption "the fleetplan agent, which verifies and runs admin-signed provisioning plans as root";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      description = ''
        The fleetplan package (nix/package.nix; the flake's module defaults to the flake's
        package). The service runs its lib/node_modules/fleetplan/agent/bin.mjs with its
        passthru.nodejs.
      '';
    };

    hostname = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "web-01";
      description = ''
        Name this node answers to: the KV key it watches and the `target` that
        envelopes must carry (FLEETPLAN_HOSTNAME). If null, the agent uses the
        kernel hostname.
      '';
    };

    store = mkOption {
      type = types.str;
      example = "nats://nats.example.org:4222";
      description = "URL of the plan store (FLEETPLAN_STORE).";
    };

    nodeKeyFile = mkOption {
      type = types.str;
      default = "/etc/fleetplan/node.key";
      description = ''
        This node's X25519 private key, owned by root with mode 0600. It is
        handed to the agent as the systemd credential `node.key`. Give it as a
        string path outside the Nix store, never as a Nix path literal, which
        would copy the key into the world-readable store.
      '';
    };

    storeCredentialsFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/etc/fleetplan/store.creds";
      description = ''
        NATS credentials of this node (HOST.creds from `fleetplan store credentials`), owned by
        root with mode 0600. Handed to the agent as the systemd credential `store.creds`, and
        named in agent.json as storeOptions.credsFile. A string path outside the Nix store,
        never a Nix path literal. A Consul token goes in /etc/fleetplan/agent.env as
        CONSUL_HTTP_TOKEN=... instead.
      '';
    };

    trustFile = mkOption {
      type = types.str;
      default = "/etc/fleetplan/trust";
      description = ''
        Trust set: the admin public keys and the signature threshold. It is
        handed to the agent as the systemd credential `trust`. It holds public
        data, so a store path is fine.
      '';
    };

    stateDir = mkOption {
      type = types.str;
      default = "/var/lib/fleetplan";
      description = ''
        Agent state, including the SQLite ledger of accepted provisioning ids
        (FLEETPLAN_STATE_DIR). Created with mode 0700. Deleting it lets old
        envelopes be accepted again.
      '';
    };

    metricsListen = mkOption {
      type = types.str;
      default = "127.0.0.1:9465";
      example = "0.0.0.0:9465";
      description = "HOST:PORT for the Prometheus metrics endpoint (FLEETPLAN_METRICS_LISTEN).";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the metricsListen TCP port in the firewall, so Prometheus can scrape it.";
    };

    settings = mkOption {
      type = types.attrsOf types.anything;
      default = { };
      description = ''
        Agent configuration, written as JSON to ${configPath} (keys as the
        agent's config file documents them). The typed options above are
        passed as FLEETPLAN_* environment variables, which override this file.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = isOutsideStore cfg.nodeKeyFile;
        message = "services.fleetplan-agent.nodeKeyFile must be an absolute path outside ${builtins.storeDir} (got ${cfg.nodeKeyFile}).";
      }
      {
        assertion = cfg.storeCredentialsFile == null || isOutsideStore cfg.storeCredentialsFile;
        message = "services.fleetplan-agent.storeCredentialsFile must be an absolute path outside ${builtins.storeDir} (got ${toString cfg.storeCredentialsFile}).";
      }
      {
        assertion = builtins.match "[^ ]+:[0-9]+" cfg.metricsListen != null;
        message = "services.fleetplan-agent.metricsListen must be HOST:PORT (got ${cfg.metricsListen}).";
      }
      {
        assertion = lib.hasPrefix "/" cfg.stateDir;
        message = "services.fleetplan-agent.stateDir must be an absolute path (got ${cfg.stateDir}).";
      }
    ];

    warnings = lib.optional (cfg.openFirewall && loopbackOnly)
      "services.fleetplan-agent.openFirewall opens port ${toString metricsPort}, but metricsListen (${cfg.metricsListen}) is loopback only.";

    environment.etc."fleetplan/agent.json".source = configFile;

    networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall metricsPort;

    systemd.tmpfiles.rules = lib.optional (!stateUnderVarLib) "d ${cfg.stateDir} 0700 root root -";

    systemd.services.fleetplan-agent = {
      description = "fleetplan agent (signed provisioning plans)";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" "time-sync.target" ];
      unitConfig.StartLimitIntervalSec = 0;

      # nixos-rebuild switch restarts units whose definition changed. A plan
      # step that runs `nixos-rebuild switch` would then kill its own agent in
      # the middle of the run. The new agent takes over at the next restart or
      # reboot instead.
      restartIfChanged = false;

      # Steps run `bash -euo pipefail` and expect the system's tools (and
      # setuid wrappers such as sudo), not the minimal PATH of NixOS services.
      path = [ pkgs.bash "/run/wrappers" "/run/current-system/sw" ];

      environment = lib.filterAttrs (_: v: v != null) {
        FLEETPLAN_HOSTNAME = cfg.hostname;
        FLEETPLAN_STORE = cfg.store;
        FLEETPLAN_STATE_DIR = cfg.stateDir;
        FLEETPLAN_METRICS_LISTEN = cfg.metricsListen;
      };

      serviceConfig = {
        Type = "notify";
        NotifyAccess = "all";
        WatchdogSec = 30;
        Restart = "always";
        RestartSec = 5;

        ExecStart = "${nodejs}/bin/node --max-semi-space-size=1 --optimize-for-size ${agentEntry} run --config ${configPath}";
        EnvironmentFile = "-/etc/fleetplan/agent.env";

        LogsDirectory = "fleetplan";
        LogsDirectoryMode = "0700";
        ConfigurationDirectory = "fleetplan";
        ConfigurationDirectoryMode = "0755";

        LoadCredential = [
          "node.key:${cfg.nodeKeyFile}"
          "trust:${cfg.trustFile}"
        ] ++ lib.optional (cfg.storeCredentialsFile != null) "store.creds:${cfg.storeCredentialsFile}";

        KillMode = "mixed";
        TimeoutStopSec = 60;
        OOMPolicy = "continue";
        LimitCORE = 0;

        # No sandboxing (the plans provision the whole machine as root). See the
        # header of systemd/fleetplan-agent.service.
        NoNewPrivileges = false;
        UMask = "0022";
      } // lib.optionalAttrs stateUnderVarLib {
        StateDirectory = lib.removePrefix "/var/lib/" cfg.stateDir;
        StateDirectoryMode = "0700";
      };
    };
  };
}
