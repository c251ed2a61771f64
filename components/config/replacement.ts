// Changes that would replace the lab's cluster rather than change it: refused unless the stack
// says so (`allowClusterReplacement`). Judged against the last update (last-update.ts): whether
// rosfleet had installed k3s (its state holds the k3s cluster component) and its servers.
import type { PreviousLab } from "./last-update";
import type { Problem } from "./problem";
import { Dict, MachineView } from "./raw";

const allowed = (raw: Dict): boolean =>
  raw["allowClusterReplacement"] === true || raw["allowClusterReplacement"] === "true";

/** k3s installed by rosfleet → `cluster.kubeconfig`: every machine's k3s would be uninstalled. */
function toExistingCluster(raw: Dict, previous: PreviousLab): Problem[] {
  if (raw["cluster"] === undefined || !previous.installed || allowed(raw)) return [];
  const servers = previous.servers.length === 0 ? "" : ` (servers ${previous.servers.join(", ")})`;
  return [
    {
      path: "cluster.kubeconfig",
      message: `this stack installed k3s on its machines${servers}: with cluster.kubeconfig, pulumi up would uninstall k3s from every one of them, deleting /var/lib/rancher/k3s, even when this kubeconfig is that cluster's own. Remove cluster.kubeconfig to go on managing them, or set allowClusterReplacement: true to uninstall them and deploy onto the cluster it names`,
    },
  ];
}

/** The one server of a one-server lab changed: k3s on the new one is a new, empty cluster
 * (allowed, the provider's identity follows it: last-update.ts providerIdentity). */
function newOnlyServer(views: readonly MachineView[], raw: Dict, previous: PreviousLab): Problem[] {
  if (
    raw["cluster"] !== undefined ||
    !previous.installed ||
    previous.servers.length !== 1 ||
    allowed(raw)
  )
    return [];
  const [old] = previous.servers;
  const now = views.find((v) => v.role === "server")?.name;
  if (now === undefined || now === old) return [];
  return [
    {
      path: "machines",
      message: `${old} is the lab's only server and holds its cluster: making ${now} the server (or renaming it) builds a new, empty cluster there, and ${old}'s k3s — its cluster and everything in it — is uninstalled. Keep ${old} as the server, or set allowClusterReplacement: true to do it: every Kubernetes object of the lab is then created anew on the new cluster, and the agents join it`,
    },
  ];
}

/** The rules on replacing the cluster. */
export function replacementRules(
  views: readonly MachineView[],
  raw: Dict,
  previous: PreviousLab,
): Problem[] {
  return [...toExistingCluster(raw, previous), ...newOnlyServer(views, raw, previous)];
}
