// Where the lab's Kubernetes stages deploy: a k3s cluster rosfleet installs on the machines over
// SSH (stages 2 and 3), or an existing cluster reached with the lab's kubeconfig.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ClusterSettings, K3sSettings, LabConfig } from "../config";
import { providerIdentity } from "../config/last-update";
import { K3sCluster, NodeInfo } from "../k3s/cluster";
import { LabMachine } from "../machine/machine";
import { ExistingCluster } from "./existing";
import { CopyMatch, ProviderCopiesSweeper } from "./tempfiles";
import { DynamicHost } from "../common/dynamic";
import { serverUrl as k3sServerUrl, apiHost } from "../k3s/render";
import type { ClusterAccess } from "../common/kubeconfig";
import type { ImageHost } from "../image/imported";

/** What the later stages and the outputs need of the cluster, whichever way it came. */
export interface LabCluster {
  readonly provider: k8s.Provider;
  readonly nodes: pulumi.Output<NodeInfo[]>;
  readonly serverUrl: pulumi.Output<string>;
  /** The admin kubeconfig rosfleet made (secret); undefined on an existing cluster. */
  readonly kubeconfig: pulumi.Output<string> | undefined;
  /**
   * Address and credentials of an existing cluster's API server (secret), for what the provider
   * cannot ask (is Multus there?); undefined for the k3s rosfleet installs, whose add-ons it knows.
   */
  readonly access: pulumi.Output<ClusterAccess> | undefined;
  /** What the kubernetes provider's temp copies of this cluster's kubeconfig look like. */
  readonly copies: CopyMatch;
  /** Where an image can be imported without a registry: the k3s of a lab whose one machine is
   * the one running pulumi; undefined otherwise. */
  readonly imageHost: ImageHost | undefined;
}

/** Stage 2 — machine (reach and preflight each machine), stage 3 — k3s. */
function installK3s(lab: LabConfig, k3s: K3sSettings, clusterName: string): LabCluster {
  const preflight = {
    multusInterface: lab.ros.discovery === "multus" ? lab.ros.multus.interface : undefined,
    airgapped: k3s.airgap !== undefined,
  };
  const machines = lab.machines.map(
    (machine) =>
      new LabMachine(machine.name, { machine, sshPrivateKey: lab.sshPrivateKey, ...preflight }),
  );
  const firstServer = lab.machines.find((m) => m.role === "server");
  const copies: CopyMatch = {
    servers: firstServer === undefined ? [] : [k3sServerUrl(apiHost(k3s, firstServer))],
    // The kubeconfig rosfleet makes names its context after the cluster (k3s/render.ts).
    context: clusterName,
  };
  const k3sCluster = new K3sCluster("k3s", {
    lab: { machines: lab.machines, k3s, registries: lab.k3sRegistries },
    machines,
    clusterName,
    identity: providerIdentity(lab.continuity, clusterName),
    providerAfter: [copiesSweeper(copies)],
  });
  const [only, ...others] = k3sCluster.servers;
  return {
    provider: k3sCluster.provider,
    nodes: k3sCluster.nodes,
    serverUrl: k3sCluster.serverUrl,
    kubeconfig: k3sCluster.kubeconfig,
    access: undefined,
    copies,
    imageHost:
      lab.machines.length === 1 && others.length === 0 && k3sCluster.primary.machine.local
        ? { target: k3sCluster.primary, install: only.install }
        : undefined,
  };
}

/** An existing cluster: its nodes checked against `machines`, nothing installed. */
function useExisting(lab: LabConfig, cluster: ClusterSettings, clusterName: string): LabCluster {
  const kubeconfig = cluster.kubeconfigPath ?? lab.clusterKubeconfig;
  if (kubeconfig === undefined) throw new Error("cluster.kubeconfig is validated with the config");
  // A file is read where it is, so that paths in it resolve against its folder as kubectl's do.
  const access = pulumi.secret(
    cluster.kubeconfigPath === undefined
      ? pulumi
          .output(kubeconfig)
          .apply((text): ClusterAccess => ({ kubeconfig: { text }, context: cluster.context }))
      : pulumi.output<ClusterAccess>({
          kubeconfig: { file: cluster.kubeconfigPath },
          context: cluster.context,
        }),
  );
  const copies: CopyMatch = { servers: [cluster.server] };
  const existing = new ExistingCluster("cluster", {
    kubeconfig,
    context: cluster.context,
    nodes: lab.nodes,
    identity: providerIdentity(lab.continuity, clusterName),
    serverUrl: cluster.server,
    access,
    providerAfter: [copiesSweeper(copies)],
  });
  return {
    provider: existing.provider,
    nodes: existing.nodes,
    serverUrl: existing.serverUrl,
    kubeconfig: undefined,
    access,
    copies,
    imageHost: undefined,
  };
}

/** The resource that removes, in `refresh` and `destroy`, the kubeconfig copies that command's
 * kubernetes providers leave in $TMPDIR (tempfiles.ts); the provider depends on it. */
function copiesSweeper(copies: CopyMatch): ProviderCopiesSweeper {
  return new ProviderCopiesSweeper("provider-copies", copies, {
    provider: new DynamicHost("provider-copies-dynamic"),
  });
}

/** The lab's cluster: `cluster.kubeconfig` when set, else k3s on `machines`. */
export function labCluster(lab: LabConfig, clusterName: string): LabCluster {
  if (lab.cluster !== undefined) return useExisting(lab, lab.cluster, clusterName);
  if (lab.k3s === undefined) throw new Error("k3s.version is validated with the config");
  return installK3s(lab, lab.k3s, clusterName);
}

/** How rosfleet's own requests reach the lab's API server (secret): the existing cluster's
 * access, or the admin kubeconfig of the k3s it installed. */
export function apiAccess(cluster: LabCluster): pulumi.Output<ClusterAccess> {
  if (cluster.access !== undefined) return cluster.access;
  if (cluster.kubeconfig === undefined) throw new Error("a cluster has an access or a kubeconfig");
  return pulumi.secret(
    cluster.kubeconfig.apply((text): ClusterAccess => ({
      kubeconfig: { text },
      context: undefined,
    })),
  );
}
