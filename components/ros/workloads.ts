// Stage "ros": the namespace, the discovery infrastructure of the chosen mode, and the ROS 2
// workloads — created after the discovery Service, because Fast DDS resolves its name once.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LabSettings } from "../config";
import type { PullCredentials } from "../config/derived";
import type { ClusterAccess } from "../common/kubeconfig";
import { dockerConfigJson } from "../image/pull";
import { appLabels, deploymentArgs, podSecurityLabels, tolerateAll } from "../k8s";
import { multusResources } from "./multus-stage";
import { PullProbe } from "./pull";
import { DynamicHost } from "../common/dynamic";
import {
  DISCOVERY_SERVERS,
  DISCOVERY_PORT,
  NAMESPACE,
  PROFILES_CONFIGMAP,
  ROS_ACCOUNT,
  RosContext,
  SCRATCH,
  podNetworking,
  podSecurityLevel,
  rosContainerOf,
  fastddsProfiles,
  rosPodBase,
  serverAddresses,
  usesProfiles,
  workloadPodSpec,
} from "./render";

export interface RosWorkloadsArgs {
  /** `ros.*` of the stack config. */
  readonly ros: LabSettings["ros"];
  /** The ros_demo reference (by digest) every ROS container runs. */
  readonly image: pulumi.Input<string>;
  /** `k3s.version`: where k3s keeps CNI plugins (for Multus); undefined on an existing cluster. */
  readonly k3sVersion: string | undefined;
  /** An existing cluster's API server and credentials: is Multus there? (undefined: k3s). */
  readonly access: pulumi.Input<ClusterAccess> | undefined;
  /** Registry login for the nodes (`registryUsername`/`registryPassword`), if any. */
  readonly pull?: PullCredentials;
  /** The schedulable nodes: with Multus, workloads wait until it is ready on each of them. */
  readonly nodes: readonly string[];
  /** The API server, for the pull probe (secret). */
  readonly apiAccess: pulumi.Input<ClusterAccess>;
}

/** The `kubernetes.io/dockerconfigjson` Secret it lists. */
export const PULL_SECRET = "rosfleet-registry";

/** The lab's ROS 2 workloads (`rosfleet:ros:Workloads`). */
export class RosWorkloads extends pulumi.ComponentResource {
  public readonly namespace: k8s.core.v1.Namespace;
  /** What the workloads wait for: the discovery server and its Service, when used. */
  public readonly discovery: readonly pulumi.Resource[];
  public readonly workloads: readonly (k8s.core.v1.Pod | k8s.apps.v1.Deployment)[];
  /** The context every ROS container is rendered in (image, domain, mode). */
  public readonly context: RosContext;
  /** The ServiceAccount ROS pods run as; they are declared after it. */
  public readonly account: k8s.core.v1.ServiceAccount;
  /** The registry login Secret, for other ServiceAccounts whose pods run the image. */
  public readonly pullSecrets: { name: pulumi.Output<string> }[];

  constructor(name: string, args: RosWorkloadsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rosfleet:ros:Workloads", name, {}, opts);
    const { ros } = args;
    this.namespace = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      {
        metadata: {
          name: NAMESPACE,
          labels: podSecurityLabels(podSecurityLevel(ros.discovery)),
        },
      },
      { parent: this },
    );
    const ns = this.namespace.metadata.name;
    const pullSecret = args.pull === undefined ? undefined : this.pullSecret(name, ns, args.pull);
    this.pullSecrets = pullSecret === undefined ? [] : [{ name: pullSecret.metadata.name }];
    this.account = new k8s.core.v1.ServiceAccount(
      `${name}-account`,
      {
        metadata: { name: ROS_ACCOUNT, namespace: ns, labels: appLabels(ROS_ACCOUNT) },
        automountServiceAccountToken: false,
        imagePullSecrets: this.pullSecrets,
      },
      { parent: this },
    );

    // Every node pulls the image before any ROS pod is declared: a pull that cannot work fails
    // `up` at once with the node's own error (pull.ts), not after a Deployment's 10 minutes.
    const pulled =
      args.nodes.length === 0
        ? []
        : [
            new PullProbe(
              `${name}-pull`,
              {
                access: args.apiAccess,
                namespace: ns,
                image: args.image,
                nodes: args.nodes,
                podSpec: {
                  ...rosPodBase(),
                  tolerations: tolerateAll,
                  containers: [rosContainerOf("pull", args.image, ["true"], [])],
                },
              },
              {
                parent: this,
                dependsOn: [this.account, ...(pullSecret === undefined ? [] : [pullSecret])],
                provider: new DynamicHost(`${name}-dynamic`, { parent: this }),
              },
            ),
          ];

    // Two discovery servers, each known by its Service's address. A server that restarts
    // comes back at a new pod address; clients that knew the old one keep talking to that, so
    // the new one never hears of them, and pods that start later would not find them through
    // it. The other server still knows everyone: every client uses both.
    const servers =
      ros.discovery === "discovery-server"
        ? DISCOVERY_SERVERS.map((_, id) => this.discoveryServer(name, ns, args.image, id, pulled))
        : [];
    const discovery =
      servers.length > 0
        ? servers.flatMap((s) => [s.deployment, s.service])
        : ros.discovery === "multus"
          ? multusResources(
              { parent: this, account: this.account, pullSecrets: this.pullSecrets },
              name,
              ns,
              ros.multus,
              args,
            )
          : [];
    this.context = {
      image: args.image,
      domainId: ros.domainId,
      discovery: ros.discovery,
      ...(servers.length === 0
        ? {}
        : {
            // `ROS_DISCOVERY_SERVER` lists the servers by id: the first is server 0.
            discoveryServer: pulumi
              .all(servers.map((s) => s.service.spec.clusterIP))
              .apply((ips) => ips.map((ip) => `${ip}:${DISCOVERY_PORT}`).join(";")),
          }),
    };
    // The Fast DDS profiles the mode's ROS containers load (render.ts fastddsProfiles).
    const profiles = usesProfiles(ros.discovery)
      ? [
          new k8s.core.v1.ConfigMap(
            `${name}-fastdds`,
            {
              metadata: {
                name: PROFILES_CONFIGMAP,
                namespace: ns,
                labels: appLabels(PROFILES_CONFIGMAP),
              },
              data: pulumi
                .output(this.context.discoveryServer ?? "")
                .apply((servers) => fastddsProfiles(ros.discovery, serverAddresses(servers))),
            },
            { parent: this },
          ),
        ]
      : [];
    this.discovery = [...discovery, ...profiles];
    const after = [this.account, ...pulled, ...this.discovery];

    const { annotations } = podNetworking(ros.discovery);
    this.workloads = ros.workloads.map((w) => {
      const spec = workloadPodSpec(w, this.context);
      const resourceOpts = { parent: this, dependsOn: after };
      const metadata = { name: w.name, namespace: ns, labels: appLabels(w.name), annotations };
      return w.kind === "pod"
        ? new k8s.core.v1.Pod(`${name}-${w.name}`, { metadata, spec }, resourceOpts)
        : new k8s.apps.v1.Deployment(
            `${name}-${w.name}`,
            deploymentArgs(w.name, ns, spec, { replicas: w.replicas, annotations }),
            resourceOpts,
          );
    });
    this.registerOutputs({});
  }

  /** The registry login as a `kubernetes.io/dockerconfigjson` Secret (secret in state). */
  private pullSecret(
    name: string,
    ns: pulumi.Output<string>,
    pull: PullCredentials,
  ): k8s.core.v1.Secret {
    return new k8s.core.v1.Secret(
      `${name}-registry`,
      {
        metadata: { name: PULL_SECRET, namespace: ns, labels: appLabels(PULL_SECRET) },
        type: "kubernetes.io/dockerconfigjson",
        stringData: {
          ".dockerconfigjson": pulumi
            .secret(pull.password)
            .apply((p) => dockerConfigJson(pull.registry, pull.username, p)),
        },
      },
      { parent: this, additionalSecretOutputs: ["data", "stringData"] },
    );
  }

  /** Fast DDS discovery server `id`: a Deployment and its ClusterIP Service (UDP 11811). The
   * server's own context needs no discovery address: it is the server. */
  private discoveryServer(
    name: string,
    ns: pulumi.Output<string>,
    image: pulumi.Input<string>,
    id: number,
    pulled: readonly pulumi.Resource[],
  ): { deployment: k8s.apps.v1.Deployment; service: k8s.core.v1.Service } {
    const app = DISCOVERY_SERVERS[id];
    // Server 0 keeps the names of the days of one server: an upgrade replaces nothing of it.
    const suffix = id === 0 ? "" : `-${id}`;
    const others = DISCOVERY_SERVERS.filter((a) => a !== app);
    const server = new k8s.apps.v1.Deployment(
      `${name}-discovery-server${suffix}`,
      deploymentArgs(app, ns, {
        ...rosPodBase(),
        // On different nodes where the lab has them: one node's loss takes one server.
        affinity: {
          podAntiAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [
              {
                weight: 100,
                podAffinityTerm: {
                  topologyKey: "kubernetes.io/hostname",
                  labelSelector: {
                    matchExpressions: [
                      { key: "app.kubernetes.io/name", operator: "In", values: others },
                    ],
                  },
                },
              },
            ],
          },
        },
        containers: [
          {
            ...rosContainerOf(
              "discovery-server",
              image,
              // The server itself, not the `fastdds discovery` wrapper (which runs it): the
              // wrapper dies of SIGTERM and leaves the server to be killed, so the clients never
              // hear its goodbye (DATA[Up]); the server leaves in order on SIGTERM.
              [
                ...["fast-discovery-server", "-i", String(id)],
                ...["-l", "0.0.0.0", "-p", String(DISCOVERY_PORT)],
              ],
              [{ name: "HOME", value: SCRATCH }],
            ),
            ports: [{ name: "discovery", containerPort: DISCOVERY_PORT, protocol: "UDP" }],
          },
        ],
      }),
      { parent: this, dependsOn: [this.account, ...pulled] },
    );
    const service = new k8s.core.v1.Service(
      `${name}-discovery${suffix}`,
      {
        metadata: { name: app, namespace: ns, labels: appLabels(app) },
        spec: {
          type: "ClusterIP",
          selector: appLabels(app),
          ports: [
            {
              name: "discovery",
              port: DISCOVERY_PORT,
              targetPort: DISCOVERY_PORT,
              protocol: "UDP",
            },
          ],
        },
      },
      { parent: this },
    );
    return { deployment: server, service };
  }
}
