// The monitoring files and the PromQL in them, shared by the promtool checks (rules.test.ts)
// and the evaluation against a real Prometheus (prometheus.test.ts).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const monitoring = fileURLToPath(new URL("../../monitoring/", import.meta.url));
export const alertsPath = join(monitoring, "alerts.yml");
export const alertsTestPath = join(monitoring, "alerts.test.yml");
export const prometheusPath = join(monitoring, "prometheus.example.yml");
export const alertmanagerPath = join(monitoring, "alertmanager.example.yml");
export const dashboardPath = join(monitoring, "dashboard.json");

/** Skip reason for tests that need a Debian package's binary, or false when it is installed. */
export const needs = (bin: string, pkg: string): false | string =>
  spawnSync(bin, ["--version"]).error === undefined ? false : `${bin} is not installed (Debian package ${pkg})`;

// Values of `expr:` keys in a YAML file, inline or as block scalars.
export const yamlExprs = (text: string): string[] => {
  const lines = text.split("\n");
  const exprs: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)expr:\s*(.*)$/.exec(lines[i]!);
    if (!m) continue;
    const indent = m[1]!.length;
    const inline = m[2]!.trim();
    if (!/^[|>][-+]?$/.test(inline)) {
      exprs.push(inline);
      continue;
    }
    const body: string[] = [];
    while (i + 1 < lines.length && (lines[i + 1]!.trim() === "" || lines[i + 1]!.search(/\S/) > indent)) {
      body.push(lines[++i]!);
    }
    exprs.push(body.join("\n").trim());
  }
  return exprs;
};

/** Each alert's name and expression, in file order. */
export const alertExprs = (text: string): Map<string, string[]> => {
  const names = [...text.matchAll(/^\s*- alert: (\w+)\s*$/gm)].map((m) => m[1]!);
  const exprs = yamlExprs(text);
  const byName = new Map<string, string[]>();
  for (const [i, name] of names.entries()) byName.set(name, [...(byName.get(name) ?? []), exprs[i]!]);
  return byName;
};

export type Target = { expr?: string; refId?: string; datasource?: { uid?: string } };
export type Panel = {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { uid?: string };
  targets?: Target[];
};
export type Dashboard = {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; definition?: string }> };
};

export const readDashboard = (): Dashboard => JSON.parse(readFileSync(dashboardPath, "utf8")) as Dashboard;

// Every PromQL expression in the dashboard (panel queries and variable queries).
export const dashboardExprs = (d: Dashboard): string[] => [
  ...d.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? "")),
  ...d.templating.list.flatMap((v) => {
    const inner = /^label_values\((.*),\s*\w+\)$/.exec(v.definition ?? "");
    return inner ? [inner[1]!] : [];
  }),
];

// Dashboard expressions with Grafana's variables replaced, as plain PromQL ("All" is `.*`).
export const asPromql = (expr: string): string => expr.replace(/\$__rate_interval|\$__interval|\$__range/g, "5m").replace(/\$(\w+)/g, ".*");
