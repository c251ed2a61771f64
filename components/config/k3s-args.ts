// `k3s.serverArgs` / `k3s.agentArgs`: extra k3s flags, written into config.yaml. A flag that
// rosfleet sets itself would silently replace its own setting there (a `--node-name` makes the
// node step wait for a node that never registers; a `--server` or `--token-file` breaks joins),
// and a token flag would put a secret in plaintext in the stack file, the state and config.yaml:
// both are refused, naming what to use instead. List flags rosfleet also sets are merged:
// `--tls-san` (render.ts), `--node-label` and `--node-taint` (here: they join the machine's
// labels and taints, applied and reconciled through the API like machines[].labels).
import type { Problem } from "./problem";
import { Dict, dict } from "./raw";
import { LABEL_KEY, LABEL_VALUE, TAINT } from "./schema";

export type ArgsKey = "serverArgs" | "agentArgs";

/** Flags rosfleet sets, and what sets each instead. */
const OWNED: Readonly<Record<string, string>> = {
  "node-name": "each node is named by machines[].name",
  server: "a joining machine joins the first server's host, or k3s.apiEndpoint",
  "token-file": "rosfleet hands the cluster token to each joining machine itself (a 0600 file)",
  "agent-token-file": "rosfleet hands the cluster token to each joining machine itself",
  "cluster-init": "rosfleet sets it on the first server of a lab with 3 or more servers",
  docker: "set docker: true on each machine that runs k3s with Docker (preflight then checks it)",
  "write-kubeconfig": "rosfleet reads the kubeconfig back from /etc/rancher/k3s/k3s.yaml",
  "write-kubeconfig-mode": "rosfleet writes the kubeconfig 0600 and reads it back as a secret",
  "data-dir":
    "rosfleet reads the cluster token from, and its uninstall removes, k3s's default /var/lib/rancher/k3s",
};

/** Flags whose value is a secret. */
const SECRET = new Set(["token", "agent-token"]);

/** The flag's name: `--node-label=a=b` → `node-label`. */
const flagName = (flag: string): string => flag.replace(/^--/, "").split("=")[0];
/** The flag's value, or undefined for a bare `--flag`. */
const flagValue = (flag: string): string | undefined => {
  const at = flag.indexOf("=");
  return at < 0 ? undefined : flag.slice(at + 1);
};

/** `key=value` of a `--node-label` → [key, value]; value undefined without an `=`. */
const labelOf = (value: string): [string, string | undefined] => {
  const [k, v] = value.split(/=(.*)/s);
  return [k, v];
};

function problemOf(flag: string, key: ArgsKey): string | undefined {
  const name = flagName(flag);
  const owned = OWNED[name];
  if (owned !== undefined)
    return `--${name} is rosfleet's own setting: ${owned}; remove it from k3s.${key}`;
  if (SECRET.has(name))
    return `--${name} would put a secret in plaintext in the stack file, the state and config.yaml: rosfleet reads the cluster's own token on the first server and hands it to each joining machine as a secret; remove it from k3s.${key} (and change that token if it was a real one)`;
  const value = flagValue(flag);
  if (name === "node-label") {
    const [k, v] = labelOf(value ?? "");
    if (value === undefined || v === undefined || !LABEL_KEY.test(k) || !LABEL_VALUE.test(v))
      return `--node-label takes key=value (a label key such as robot or example.com/robot, a value of at most 63 letters, digits, '-', '_' or '.'), got ${JSON.stringify(value ?? "")}`;
  }
  if (name === "node-taint" && (value === undefined || !TAINT.test(value)))
    return `--node-taint takes key=value:Effect or key:Effect (NoSchedule, PreferNoSchedule, NoExecute), got ${JSON.stringify(value ?? "")}`;
  return undefined;
}

/** Owned and secret flags refused, label and taint flags checked, each at its index. */
export function k3sArgsRules(raw: Dict): Problem[] {
  const problems: Problem[] = [];
  for (const key of ["serverArgs", "agentArgs"] as const) {
    const list = dict(raw, "k3s")?.[key];
    if (!Array.isArray(list)) continue;
    list.forEach((flag, i) => {
      if (typeof flag !== "string") return;
      const message = problemOf(flag, key);
      if (message !== undefined) problems.push({ path: `k3s.${key}[${i}]`, message });
    });
  }
  return problems;
}

/** What a role's `--node-label`s and `--node-taint`s add to each of its machines. */
export interface ArgsNodeSettings {
  readonly labels: Readonly<Record<string, string>>;
  readonly taints: readonly string[];
}

/** The labels and taints of validated flags (k3sArgsRules passed). */
export function nodeSettingsOf(flags: readonly string[]): ArgsNodeSettings {
  const labels: Record<string, string> = {};
  const taints: string[] = [];
  for (const flag of flags) {
    const value = flagValue(flag) ?? "";
    if (flagName(flag) === "node-label") {
      const [k, v] = labelOf(value);
      labels[k] = v ?? "";
    } else if (flagName(flag) === "node-taint") taints.push(value);
  }
  return { labels, taints };
}

/** The flags that stay in config.yaml: all but the labels and taints applied through the API. */
export const configFlags = (flags: readonly string[]): string[] =>
  flags.filter((f) => !["node-label", "node-taint"].includes(flagName(f)));
