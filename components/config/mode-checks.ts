// The two ways a lab gets its cluster, and the keys each needs or rejects: rosfleet installs k3s
// over SSH (`machines` with host and role, `k3s.version`), or it deploys onto an existing cluster
// (`cluster.kubeconfig`), where machines only describe nodes that already exist.
import { kubeconfigContexts } from "../common/kubeconfig";
import type { Problem } from "./problem";
import { Dict, MachineView, dict, isDict, resolveUserPath, str } from "./raw";

/** Keys that only mean something when rosfleet installs k3s over SSH. */
const SSH_ONLY_KEYS = ["ssh", "sshPrivateKey", "k3s"] as const;
const SSH_ONLY_MACHINE_KEYS = [
  "host",
  "role",
  "user",
  "port",
  "hostKey",
  "nodeIp",
  "flannelIface",
  "taints",
  "docker",
  "skipUninstall",
  "adopt",
] as const;

/** Text that is a kubeconfig itself rather than the path of one. */
export const isKubeconfigText = (value: string): boolean =>
  value.includes("\n") || /^\s*(apiVersion|\{)/.test(value);

/** What the mode rules may look at besides the configuration. */
export interface ModeEnv {
  readonly isSecret: (key: string) => boolean;
  /** The file's text, or undefined when there is no readable file. */
  readonly readFile: (file: string) => string | undefined;
}

function kubeconfigRules(cluster: Dict, env: ModeEnv): Problem[] {
  const value = str(cluster, "kubeconfig");
  if (value === undefined) return [];
  let text: string | undefined;
  if (isKubeconfigText(value)) {
    // Never quote the value: it holds the cluster's credentials.
    if (!env.isSecret("cluster"))
      return [
        {
          path: "cluster.kubeconfig",
          message:
            "holds a kubeconfig in plaintext in the stack file: give its path instead, or run pulumi config rm cluster, then pulumi config set --path --secret cluster.kubeconfig < kubeconfig.yaml",
        },
      ];
    text = value;
  } else {
    text = env.readFile(resolveUserPath(value));
    if (text === undefined)
      return [
        {
          path: "cluster.kubeconfig",
          message: `no file at ${JSON.stringify(value)} (a path relative to the project directory or ~/…, or the kubeconfig itself as a secret)`,
        },
      ];
  }
  const contexts = kubeconfigContexts(text);
  if ("invalid" in contexts)
    return [
      {
        path: "cluster.kubeconfig",
        message: `is not a kubeconfig: ${contexts.invalid} (expected YAML with clusters and contexts, as kubectl config view --raw, microk8s config or /etc/rancher/k3s/k3s.yaml print)`,
      },
    ];
  const context = str(cluster, "context");
  if (context !== undefined && !contexts.names.includes(context))
    return [
      {
        path: "cluster.context",
        message: `the kubeconfig has no context ${JSON.stringify(context)} (it has ${contexts.names.map((n) => JSON.stringify(n)).join(", ") || "none"})`,
      },
    ];
  if (context === undefined && contexts.current === undefined)
    return [
      {
        path: "cluster.context",
        message: "required: the kubeconfig has no current-context; name one of its contexts",
      },
    ];
  return [];
}

/** On an existing cluster: every key that would install something over SSH is a mistake. */
function existingClusterRules(raw: Dict, env: ModeEnv): Problem[] {
  const why = "rosfleet installs nothing over SSH on an existing cluster (cluster.kubeconfig)";
  const problems: Problem[] = SSH_ONLY_KEYS.filter((key) => raw[key] !== undefined).map((key) => ({
    path: key,
    message: `not used: ${why}; remove it`,
  }));
  const list = raw["machines"];
  (Array.isArray(list) ? list : []).forEach((machine: unknown, i) => {
    if (!isDict(machine)) return;
    for (const key of SSH_ONLY_MACHINE_KEYS)
      if (machine[key] !== undefined)
        problems.push({
          path: `machines[${i}].${key}`,
          message: `not used: ${why}; machines describe its nodes (name, arch and labels are checked against them)`,
        });
  });
  const install = dict(dict(raw, "ros"), "multus")?.["install"];
  if (install === true || install === "true")
    problems.push({
      path: "ros.multus.install",
      message:
        "rosfleet installs Multus only on a k3s it installed: add Multus to the cluster (MicroK8s: microk8s enable multus) and remove this key",
    });
  const cluster = dict(raw, "cluster");
  return cluster === undefined ? problems : [...problems, ...kubeconfigRules(cluster, env)];
}

/** When rosfleet installs k3s: the keys it needs to reach and install every machine. */
function k3sRules(raw: Dict, views: readonly MachineView[]): Problem[] {
  const problems: Problem[] = [];
  if (raw["machines"] === undefined)
    problems.push({
      path: "machines",
      message:
        "required: list every machine of the lab (README: Describing a lab), or set cluster.kubeconfig to use an existing cluster",
    });
  for (const v of views) {
    if (v.host === undefined)
      problems.push({ path: `${v.path}.host`, message: "required: the machine's SSH address" });
    if (v.role === undefined)
      problems.push({ path: `${v.path}.role`, message: "required: server or agent" });
  }
  if (raw["k3s"] === undefined)
    problems.push({
      path: "k3s.version",
      message: "required: a pinned k3s release tag such as v1.33.5+k3s1",
    });
  return problems;
}

/** The rules of the mode the configuration chooses (`cluster` set or not). */
export function modeRules(raw: Dict, views: readonly MachineView[], env: ModeEnv): Problem[] {
  return raw["cluster"] === undefined ? k3sRules(raw, views) : existingClusterRules(raw, env);
}
