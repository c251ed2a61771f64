// Pure renderers for the ROS 2 stage: the environment each discovery mode needs, and the pod
// specs of the workloads, the discovery server and the delivery check. Specs are plain objects
// whose inputs are the image and (discovery-server mode) the server's Service address, known
// once the Service exists: a rebuild (or an image unknown at preview) leaves every other field
// known, so `pulumi preview --diff` shows exactly what changes.
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { ContainerRole, DemoLang, DiscoveryMode, Workload } from "../config";
import { PodSecurityLevel, containerSecurity, podSecurity } from "../k8s";
import { readScript } from "../shell";

type EnvVar = k8s.types.input.core.v1.EnvVar;
type Container = k8s.types.input.core.v1.Container;
type PodSpec = k8s.types.input.core.v1.PodSpec;

/** Every ROS resource lives here. */
export const NAMESPACE = "rosfleet";
export const DISCOVERY_NAME = "ros-discovery";
/** The discovery servers' names (Deployment, Service, app label), by server id. */
export const DISCOVERY_SERVERS = [DISCOVERY_NAME, `${DISCOVERY_NAME}-1`];
export const DISCOVERY_PORT = 11811;
/** The Multus NetworkAttachmentDefinition pods are attached to in `multus` mode. */
export const MULTUS_NETWORK = "ros-macvlan";
/** The name Multus gives a pod's first extra interface. */
export const MULTUS_INTERFACE = "net1";

/** Where a ROS container stands: everything its pod spec depends on. */
export interface RosContext {
  /** The ros_demo reference; known only after the build on a first `up`. */
  readonly image: pulumi.Input<string>;
  readonly domainId: number;
  readonly discovery: DiscoveryMode;
  /**
   * `discovery-server` mode: the servers' Services as `<cluster IP>:<port>;…`, by server id.
   * Addresses, not DNS names: Fast DDS resolves `ROS_DISCOVERY_SERVER` once, when a participant
   * starts, and a pod that starts while cluster DNS does not answer would hear nobody for ever.
   */
  readonly discoveryServer?: pulumi.Input<string>;
}

/** The ConfigMap of the Fast DDS XML profiles, and where ROS containers mount it. */
export const PROFILES_CONFIGMAP = "rosfleet-fastdds";
export const PROFILES_DIR = "/etc/rosfleet/fastdds";
/** The profile a plain participant and a command-line tool (a super client) load. */
export const CLIENT_PROFILE = "client.xml";
export const SUPER_CLIENT_PROFILE = "super-client.xml";

/**
 * Whether a mode's ROS containers load a profile: discovery-server and host-network pods must
 * talk UDP only — pods of one node do not share /dev/shm, and host-network pods of one machine
 * share its host id, so Fast DDS would pick shared memory between them and lose it.
 */
export const usesProfiles = (mode: DiscoveryMode): boolean =>
  mode === "discovery-server" || mode === "host-network";

/** The discovery servers' `<ip>:<port>` addresses of `ROS_DISCOVERY_SERVER` ("a;b"), by id. */
export const serverAddresses = (discoveryServer: string): { ip: string; port: string }[] =>
  discoveryServer
    .split(";")
    .filter(Boolean)
    .map((a) => {
      const [ip, port] = a.split(":");
      return { ip, port: port ?? String(DISCOVERY_PORT) };
    });

/** A discovery server's GUID prefix, as `fast-discovery-server -i <id>` and
 * `ROS_DISCOVERY_SERVER` give it: 44.53.<id>.5f.45.50.52.4f.53.49.4d.41. */
export const serverPrefix = (id: number): string =>
  `44.53.${id.toString(16).padStart(2, "0")}.5f.45.50.52.4f.53.49.4d.41`;

/**
 * The Fast DDS XML profiles of a mode (file name → XML), read through
 * FASTRTPS_DEFAULT_PROFILES_FILE by every Fast DDS a distro ships: Humble's 2.6 ignores
 * FASTDDS_BUILTIN_TRANSPORTS and ROS_SUPER_CLIENT (they came with 2.13), but not a profile.
 * Both profiles: UDPv4 the only transport. The super client's also makes it a SUPER_CLIENT of
 * every discovery server (the CLI must see the whole graph, which a plain client does not).
 */
export function fastddsProfiles(
  mode: DiscoveryMode,
  servers: readonly { ip: string; port: string }[],
): Record<string, string> {
  if (!usesProfiles(mode)) return {};
  const transports = [
    "    <transport_descriptors>",
    "      <transport_descriptor>",
    "        <transport_id>rosfleet_udpv4</transport_id>",
    "        <type>UDPv4</type>",
    "      </transport_descriptor>",
    "    </transport_descriptors>",
  ];
  const participant = (discovery: string[]) => [
    '    <participant profile_name="rosfleet" is_default_profile="true">',
    "      <rtps>",
    "        <userTransports>",
    "          <transport_id>rosfleet_udpv4</transport_id>",
    "        </userTransports>",
    "        <useBuiltinTransports>false</useBuiltinTransports>",
    ...discovery,
    "      </rtps>",
    "    </participant>",
  ];
  const doc = (discovery: string[]) =>
    [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<dds xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">',
      "  <profiles>",
      ...transports,
      ...participant(discovery),
      "  </profiles>",
      "</dds>",
      "",
    ].join("\n");
  const superClient = [
    "        <builtin>",
    "          <discovery_config>",
    "            <discoveryProtocol>SUPER_CLIENT</discoveryProtocol>",
    "            <discoveryServersList>",
    ...servers.flatMap((s, id) => [
      `              <RemoteServer prefix="${serverPrefix(id)}">`,
      "                <metatrafficUnicastLocatorList>",
      `                  <locator><udpv4><address>${s.ip}</address><port>${s.port}</port></udpv4></locator>`,
      "                </metatrafficUnicastLocatorList>",
      "              </RemoteServer>",
    ]),
    "            </discoveryServersList>",
    "          </discovery_config>",
    "        </builtin>",
  ];
  return {
    [CLIENT_PROFILE]: doc([]),
    ...(mode === "discovery-server" ? { [SUPER_CLIENT_PROFILE]: doc(superClient) } : {}),
  };
}

/** The variables that name a profile: Fast DDS 2 reads the first, 3 the second. */
const PROFILE_VARS = ["FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"];

/**
 * The environment of one ROS container. `superClient`: command-line tools (`ros2 topic ...`)
 * must see the whole graph, which a plain discovery-server client does not.
 */
export function rosEnv(
  ctx: Pick<RosContext, "domainId" | "discovery" | "discoveryServer">,
  superClient: boolean,
): EnvVar[] {
  const env: EnvVar[] = [
    { name: "ROS_DOMAIN_ID", value: String(ctx.domainId) },
    // The root filesystem is read-only and the user has no home: logs and caches go to /tmp.
    { name: "HOME", value: SCRATCH },
    { name: "ROS_LOG_DIR", value: `${SCRATCH}/ros-log` },
  ];
  const profile = (file: string) =>
    PROFILE_VARS.map((name) => ({ name, value: `${PROFILES_DIR}/${file}` }));
  switch (ctx.discovery) {
    case "discovery-server":
      if (ctx.discoveryServer === undefined)
        throw new Error("discovery-server mode: the ROS context has no discovery server address");
      // A super client's servers are in its profile; a plain client's here (every Fast DDS
      // reads this one).
      if (superClient) env.push(...profile(SUPER_CLIENT_PROFILE));
      else
        env.push(
          { name: "ROS_DISCOVERY_SERVER", value: ctx.discoveryServer },
          ...profile(CLIENT_PROFILE),
        );
      break;
    case "host-network":
      env.push(...profile(CLIENT_PROFILE));
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

/**
 * The strictest Pod Security level the ROS pods of a mode pass: host networking is beyond
 * `baseline`, so host-network needs `privileged` (and then the dashboard's `admin`, which may
 * create pods there, is refused by the config stage); every other mode passes `restricted`.
 */
export const podSecurityLevel = (mode: DiscoveryMode): PodSecurityLevel =>
  mode === "host-network" ? "privileged" : "restricted";

/** Requests and limits a Raspberry Pi 4 can give several of. */
export const ROS_RESOURCES = {
  requests: { cpu: "50m", memory: "64Mi" },
  limits: { cpu: "500m", memory: "256Mi" },
};

/** The one writable directory of a ROS container (an emptyDir). */
export const SCRATCH = "/tmp";
/** The user every ROS container runs as: not root, whatever the image's USER says. */
export const ROS_USER = 1000;

const scratchVolume = { name: "scratch", emptyDir: { sizeLimit: "64Mi" } };
const scratchMount = { name: "scratch", mountPath: SCRATCH };
const profilesVolume = { name: "fastdds", configMap: { name: PROFILES_CONFIGMAP } };
const profilesMount = { name: "fastdds", mountPath: PROFILES_DIR, readOnly: true };

/** A ROS container: the image's entrypoint kept (`args`, never `command`), locked down. */
export function rosContainerOf(
  name: string,
  image: pulumi.Input<string>,
  args: string[],
  env: EnvVar[],
): Container {
  return {
    name,
    image,
    args,
    env,
    resources: ROS_RESOURCES,
    securityContext: containerSecurity,
    // A container told to load a profile has it mounted (its pod has the volume: rosPodBase).
    volumeMounts: env.some((e) => typeof e.name === "string" && PROFILE_VARS.includes(e.name))
      ? [scratchMount, profilesMount]
      : [scratchMount],
  };
}

/** A Job script in Python (components/ros/*.py), after the API helpers it uses (kube_api.py), as
 * the one program `python3 -c` runs. */
export const pythonJob = (file: string): string =>
  [readScript(path.join(__dirname, "kube_api.py")), readScript(path.join(__dirname, file))].join(
    "\n",
  );

/** The ServiceAccount of ROS pods (components/ros/workloads.ts declares it). */
export const ROS_ACCOUNT = "rosfleet-ros";

/** What every ROS pod spec has besides its containers: its account without an API token,
 * security, the scratch volume, and a shared process namespace — so the pod's PID 1 is the
 * sandbox, not `ros2` or `sleep`, which as PID 1 ignore SIGTERM (no handler: the kernel drops
 * it) and make every rollout and `destroy` wait out the grace period, pod by pod. */
export const rosPodBase = (
  mode?: DiscoveryMode,
): Pick<
  PodSpec,
  | "serviceAccountName"
  | "automountServiceAccountToken"
  | "securityContext"
  | "volumes"
  | "shareProcessNamespace"
> => ({
  serviceAccountName: ROS_ACCOUNT,
  automountServiceAccountToken: false,
  shareProcessNamespace: true,
  securityContext: podSecurity(ROS_USER),
  // `mode`: the pod's ROS containers are of that mode and load its profiles.
  volumes:
    mode !== undefined && usesProfiles(mode) ? [scratchVolume, profilesVolume] : [scratchVolume],
});

/**
 * rcl's file logger off: every node otherwise writes each line it logs (a listener: every
 * message it hears) to a file under ROS_LOG_DIR, the 64 Mi scratch volume, until the pod is
 * evicted. Its console output stays (the container log, which the kubelet rotates).
 */
export const NO_LOG_FILE = ["--ros-args", "--disable-external-lib-logs"];

/** One container running one ROS node. */
export function rosContainer(role: ContainerRole, lang: DemoLang, ctx: RosContext): Container {
  const args =
    role === "toolbox"
      ? ["sleep", "infinity"]
      : ["ros2", "run", `demo_nodes_${lang}`, role, ...NO_LOG_FILE];
  return rosContainerOf(role, ctx.image, args, rosEnv(ctx, role === "toolbox"));
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
    ...rosPodBase(ctx.discovery),
    ...(Object.keys(selector).length === 0 ? {} : { nodeSelector: selector }),
    containers: w.containers.map((role) => rosContainer(role, w.lang, ctx)),
  };
}
