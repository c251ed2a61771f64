// The cluster stage of a lab that brings its own cluster (`cluster.kubeconfig`, e.g. MicroK8s or
// a k3s installed by hand): nothing is installed, no machine is reached over SSH. The nodes that
// `machines` describes are read through the Kubernetes API and checked (they exist, their arch,
// their labels, with one list call) before the provider the later stages deploy with can be used.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LabNode } from "../config";
import type { NodeInfo } from "../k3s/cluster";
import type { ClusterAccess } from "../common/kubeconfig";
import { listNodes } from "./probe";

const ARCH_LABEL = "kubernetes.io/arch";
// k3s and kubeadm mark servers with node-role labels; MicroK8s with its own.
const SERVER_LABELS = [
  "node-role.kubernetes.io/control-plane",
  "node-role.kubernetes.io/master",
  "node.kubernetes.io/microk8s-controlplane",
];

/** `server` when the node's labels mark it as the control plane, else `agent`. */
export function roleOf(labels: Readonly<Record<string, string>>): string {
  return SERVER_LABELS.some((l) => l in labels) ? "server" : "agent";
}

/** What differs between `machines[index]` and the cluster's node of that name (undefined: the
 * cluster has none of that name). */
export function nodeProblems(
  node: LabNode,
  index: number,
  labels: Readonly<Record<string, string>> | undefined,
): string[] {
  const where = `machines[${index}] (${node.name})`;
  if (labels === undefined)
    return [
      `${where}: the cluster has no node of that name (kubectl get nodes lists the names; machines[].name must be one)`,
    ];
  const problems: string[] = [];
  const arch = labels[ARCH_LABEL];
  if (arch !== node.arch)
    problems.push(
      `${where}.arch: the cluster's node is ${arch === undefined ? "of unknown arch" : arch}, not ${node.arch}`,
    );
  for (const [key, value] of Object.entries(node.labels))
    if (labels[key] !== value)
      problems.push(
        `${where}.labels.${key}: the node has ${labels[key] === undefined ? "no such label" : `${key}=${labels[key]}`}; rosfleet does not label a cluster it did not install: kubectl label node ${node.name} --overwrite ${key}=${value}`,
      );
  return problems;
}

export interface ExistingClusterArgs {
  /** The kubeconfig's absolute path, or the kubeconfig itself (secret). */
  readonly kubeconfig: pulumi.Input<string>;
  /** Undefined: the kubeconfig's current-context. */
  readonly context: string | undefined;
  /** `machines`: nodes the cluster must have, as described. */
  readonly nodes: readonly LabNode[];
  /** The provider's `clusterIdentifier` (config/last-update.ts: a new cluster, a new one). */
  readonly identity: string;
  /** The API server of the context (for the `serverUrl` output). */
  readonly serverUrl: string;
  /** Address and credentials of the API server (secret): the nodes are listed with them. */
  readonly access: pulumi.Input<ClusterAccess>;
  /** What the kubernetes provider is created after and deleted before (its copies' sweeper). */
  readonly providerAfter?: readonly pulumi.Resource[];
}

/** A cluster rosfleet did not install (`rosfleet:cluster:Existing`). */
export class ExistingCluster extends pulumi.ComponentResource {
  public readonly serverUrl: pulumi.Output<string>;
  public readonly nodes: pulumi.Output<NodeInfo[]>;
  /** For the stages that declare Kubernetes resources in this cluster. */
  public readonly provider: k8s.Provider;

  constructor(name: string, args: ExistingClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rosfleet:cluster:Existing", name, {}, opts);
    const identity = { context: args.context, clusterIdentifier: args.identity };
    // One list of the cluster's nodes, however many the lab has (not a read per node). Not a
    // secret, though asked with the credentials.
    const listed = pulumi.unsecret(
      pulumi
        .output(args.access)
        .apply(async (access) => (args.nodes.length === 0 ? new Map() : listNodes(access))),
    );
    this.nodes = listed.apply((found) => {
      if (!(found instanceof Map))
        throw new pulumi.ResourceError(
          `cannot list the cluster's nodes to check them against machines: ${(found as { error: string }).error}`,
          this,
          true,
        );
      const labels = args.nodes.map((n) => found.get(n.name));
      const problems = args.nodes.flatMap((n, i) => nodeProblems(n, i, labels[i]));
      if (problems.length > 0)
        throw new pulumi.ResourceError(
          [
            `the cluster's nodes differ from machines (${problems.length}):`,
            ...problems.map((p) => `  ${p}`),
          ].join("\n"),
          this,
          true,
        );
      return args.nodes.map((n, i) => ({
        name: n.name,
        role: roleOf(labels[i] ?? {}),
        arch: n.arch,
      }));
    });
    this.serverUrl = pulumi.output(args.serverUrl);
    this.provider = new k8s.Provider(
      `${name}-provider`,
      {
        // Usable only once the nodes match: a mismatch stops every stage before it changes anything.
        kubeconfig: pulumi.all([this.nodes, args.kubeconfig]).apply(([, kubeconfig]) => kubeconfig),
        ...identity,
      },
      { parent: this, dependsOn: [...(args.providerAfter ?? [])] },
    );
    this.registerOutputs({ serverUrl: this.serverUrl, nodes: this.nodes });
  }
}
