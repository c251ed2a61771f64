// Pure renderers for the ROS 2 stage: the environment each discovery mode needs, and the pod
// specs of the workloads, the discovery server and the delivery check.
import * as k8s from "@pulumi/kubernetes";
import { ContainerRole, DemoLang, DiscoveryMode, Workload } from "../config";

type EnvVar = k8s.types.input.core.v1.EnvVar;
type Container = k8s.types.input.core.v1.Container;
type PodSpec = k8s.types.input.core.v1.PodSpec;

/** Every ROS resource lives here. */
export const NAMESPACE = "rosfleet";
export const DISCOVERY_NAME = "ros-discovery";
export const DISCOVERY_PORT = 11811;
/** Fast DDS discovery server address, as a name resolved once when a participant starts. */
export const DISCOVERY_ADDRESS = `${DISCOVERY_NAME}.${NAMESPACE}.svc.cluster.local:${DISCOVERY_PORT}`;
/** The Multus NetworkAttachmentDefinition pods are attached to in `multus` mode. */
export const MULTUS_NETWORK = "ros-macvlan";

/** Where a ROS container stands: everything its pod spec depends on. */
export interface RosContext {
  readonly image: string;
  readonly domainId: number;
  readonly discovery: DiscoveryMode;
}

/**
 * The environment of one ROS container. `superClient`: command-line tools (`ros2 topic ...`)
 * must see the whole graph, which a plain discovery-server client does not.
 */
export function rosEnv(ctx: RosContext, superClient: boolean): EnvVar[] {
  const env: EnvVar[] = [{ name: "ROS_DOMAIN_ID", value: String(ctx.domainId) }];
  switch (ctx.discovery) {
    case "discovery-server":
      env.push(
        { name: "ROS_DISCOVERY_SERVER", value: DISCOVERY_ADDRESS },
        // Pods on one node share no /dev/shm: shared-memory transport would lose data.
        { name: "FASTDDS_BUILTIN_TRANSPORTS", value: "UDPv4" },
      );
      if (superClient) env.push({ name: "ROS_SUPER_CLIENT", value: "TRUE" });
      break;
    case "host-network":
      // Host-network pods on one machine share the host id but not /dev/shm.
      env.push({ name: "FASTDDS_BUILTIN_TRANSPORTS", value: "UDPv4" });
      break;
    case "multus":
    case "multicast":
      break;
  }
  return env;
}

/** Pod-level settings of a discovery mode: host networking, or the Multus attachment. */
export function podNetworking(mode: DiscoveryMode): {
  spec: Pick<PodSpec, "hostNetwork" | "dnsPolicy">;
  annotations: Record<string, string>;
} {
  if (mode === "host-network")
    return { spec: { hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" }, annotations: {} };
  if (mode === "multus")
    return { spec: {}, annotations: { "k8s.v1.cni.cncf.io/networks": MULTUS_NETWORK } };
  return { spec: {}, annotations: {} };
}

/** Requests and limits a Raspberry Pi 4 can give several of. */
export const ROS_RESOURCES = {
  requests: { cpu: "50m", memory: "64Mi" },
  limits: { cpu: "500m", memory: "256Mi" },
};

/** One container running one ROS node (`args`, so the image's ros_entrypoint.sh stays). */
export function rosContainer(role: ContainerRole, lang: DemoLang, ctx: RosContext): Container {
  const args =
    role === "toolbox" ? ["sleep", "infinity"] : ["ros2", "run", `demo_nodes_${lang}`, role];
  return {
    name: role,
    image: ctx.image,
    args,
    env: rosEnv(ctx, role === "toolbox"),
    resources: ROS_RESOURCES,
  };
}

/** Node selector of a workload's placement. */
export function nodeSelector(w: Pick<Workload, "arch" | "node">): Record<string, string> {
  return {
    ...(w.arch === undefined ? {} : { "kubernetes.io/arch": w.arch }),
    ...(w.node === undefined ? {} : { "kubernetes.io/hostname": w.node }),
  };
}

/** The pod spec of a workload. */
export function workloadPodSpec(w: Workload, ctx: RosContext): PodSpec {
  const selector = nodeSelector(w);
  return {
    ...podNetworking(ctx.discovery).spec,
    ...(Object.keys(selector).length === 0 ? {} : { nodeSelector: selector }),
    containers: w.containers.map((role) => rosContainer(role, w.lang, ctx)),
  };
}
