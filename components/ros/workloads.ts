// Stage "ros": the namespace, the discovery infrastructure of the chosen mode, and the ROS 2
// workloads — created after the discovery Service, because Fast DDS resolves its name once.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LabSettings } from "../config";
import type { PullCredentials } from "../config/derived";
import type { ClusterAccess } from "../common/kubeconfig";
import { Lookup, MULTUS_CRD, crdLookup } from "../cluster/probe";
import { dockerConfigJson } from "../image/pull";
import { perNodeName } from "./delivery";
import { appLabels, deploymentArgs, podSecurityLabels, tolerateAll } from "../k8s";
import { MULTUS_CHART, macvlanConfig, multusValues } from "./multus";
import { PullProbe } from "./pull";
import { DynamicHost } from "../common/dynamic";
import {
  DISCOVERY_SERVERS,
  MULTUS_INTERFACE,
  MULTUS_NETWORK,
  DISCOVERY_PORT,
  NAMESPACE,
  ROS_ACCOUNT,
  RosContext,
  SCRATCH,
  podNetworking,
  podSecurityLevel,
  pythonJob,
  rosContainerOf,
  rosPodBase,
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

/** Exits 0 once the pod has its Multus interface; fails (and the Job retries in a new pod,
 * so a new network setup) while Multus has not configured the node yet. */
export const MULTUS_READY_SCRIPT = `if ip -o link show ${MULTUS_INTERFACE} >/dev/null 2>&1; then
  echo "$NODE_NAME: ${MULTUS_INTERFACE} attached, Multus is ready"
else
  echo "$NODE_NAME: no ${MULTUS_INTERFACE} yet: Multus has not configured this node" >&2
  exit 1
fi`;

/** The Job that waits for Multus's CRD, its ServiceAccount (and ClusterRole), and its bound. */
export const MULTUS_CRD_JOB = "multus-crd";
export const MULTUS_CRD_ACCOUNT = "rosfleet-multus-crd";
export const MULTUS_CRD_WAIT_SECONDS = 600;
/** All the CRD Job may do: read that one CRD. */
export const MULTUS_CRD_RULES = [
  {
    apiGroups: ["apiextensions.k8s.io"],
    resources: ["customresourcedefinitions"],
    resourceNames: [MULTUS_CRD],
    verbs: ["get"],
  },
];
/** Where to look when the CRD never comes (k3s's Helm controller names its Job after the chart). */
export const MULTUS_CRD_HINT = `k3s's Helm controller has not installed the Multus chart: see kubectl -n kube-system logs job/helm-install-multus (it pulls rancher/klipper-helm, the ${MULTUS_CHART.chart} chart ${MULTUS_CHART.version} from ${MULTUS_CHART.repo}, then the Multus and whereabouts images: multus mode needs the internet for them, or those images in the machines' registry)`;

/** The `kubernetes.io/dockerconfigjson` Secret it lists. */
export const PULL_SECRET = "rosfleet-registry";

/** Fails with the way to add Multus when the cluster lacks it; warns when it could not ask. */
export function requireMultus(found: Lookup, resource: pulumi.Resource): void {
  if ("error" in found) {
    pulumi.log.warn(`could not check that the cluster has Multus (${found.error})`, resource);
    return;
  }
  if (!found.found)
    throw new pulumi.ResourceError(
      `ros.discovery is multus, but the cluster has no Multus (no CustomResourceDefinition ${MULTUS_CRD}); pods would never get their second interface. Add it: on MicroK8s run microk8s enable multus; on a k3s that rosfleet installs, remove ros.multus.install false so rosfleet installs it.`,
      resource,
      true,
    );
}

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
    this.discovery =
      servers.length > 0
        ? servers.flatMap((s) => [s.deployment, s.service])
        : ros.discovery === "multus"
          ? this.multus(name, ns, ros.multus, args)
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

  /** A Job that succeeds once Multus's CRD is established (`multus-crd`), with the only RBAC it
   * needs: get that one CRD. */
  private crdWait(
    name: string,
    ns: pulumi.Output<string>,
    image: pulumi.Input<string>,
    chart: pulumi.Resource,
  ): k8s.batch.v1.Job {
    const labels = appLabels(MULTUS_CRD_JOB);
    const child = { parent: this };
    const account = new k8s.core.v1.ServiceAccount(
      `${name}-multus-crd-account`,
      // Its pod pulls the lab's image like every ROS pod: with the registry login, if any.
      {
        metadata: { name: MULTUS_CRD_ACCOUNT, namespace: ns, labels },
        imagePullSecrets: this.pullSecrets,
      },
      child,
    );
    const role = new k8s.rbac.v1.ClusterRole(
      `${name}-multus-crd-role`,
      { metadata: { name: MULTUS_CRD_ACCOUNT, labels }, rules: MULTUS_CRD_RULES },
      child,
    );
    const binding = new k8s.rbac.v1.ClusterRoleBinding(
      `${name}-multus-crd-binding`,
      {
        metadata: { name: MULTUS_CRD_ACCOUNT, labels },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          name: role.metadata.name,
        },
        subjects: [{ kind: "ServiceAccount", name: account.metadata.name, namespace: ns }],
      },
      child,
    );
    return new k8s.batch.v1.Job(
      `${name}-multus-crd`,
      {
        metadata: { name: MULTUS_CRD_JOB, namespace: ns, labels },
        spec: {
          backoffLimit: 0,
          activeDeadlineSeconds: MULTUS_CRD_WAIT_SECONDS + 120,
          template: {
            metadata: { labels },
            spec: {
              ...rosPodBase(),
              serviceAccountName: MULTUS_CRD_ACCOUNT,
              automountServiceAccountToken: true,
              restartPolicy: "Never",
              containers: [
                rosContainerOf(
                  MULTUS_CRD_JOB,
                  image,
                  [
                    "python3",
                    "-c",
                    pythonJob("crd_wait.py"),
                    MULTUS_CRD,
                    String(MULTUS_CRD_WAIT_SECONDS),
                    MULTUS_CRD_HINT,
                  ],
                  [],
                ),
              ],
            },
          },
        },
      },
      {
        parent: this,
        dependsOn: [chart, binding],
        customTimeouts: { create: "15m", update: "15m" },
      },
    );
  }

  /** Multus + whereabouts (unless already installed) and the macvlan attachment. */
  private multus(
    name: string,
    ns: pulumi.Output<string>,
    multus: LabSettings["ros"]["multus"],
    { k3sVersion, access, nodes, image }: RosWorkloadsArgs,
  ): pulumi.Resource[] {
    const range = multus.range;
    if (range === undefined) throw new Error("ros.multus.range is validated with the config");
    const install =
      multus.install && k3sVersion !== undefined
        ? [
            new k8s.apiextensions.CustomResource(
              `${name}-multus`,
              {
                apiVersion: "helm.cattle.io/v1",
                kind: "HelmChart",
                metadata: { name: "multus", namespace: "kube-system" },
                spec: {
                  ...MULTUS_CHART,
                  targetNamespace: "kube-system",
                  valuesContent: multusValues(k3sVersion),
                },
              },
              { parent: this },
            ),
          ]
        : [];
    // The chart's CRD comes when k3s's Helm controller has pulled klipper-helm and the chart:
    // a Job waits for it (bounded, naming where to look) before the attachment is created.
    const crd = install.map((chart) => this.crdWait(name, ns, image, chart));
    const config = macvlanConfig(multus.interface, range);
    const attachment = new k8s.apiextensions.CustomResource(
      `${name}-macvlan`,
      {
        apiVersion: "k8s.cni.cncf.io/v1",
        kind: "NetworkAttachmentDefinition",
        metadata: { name: MULTUS_NETWORK, namespace: ns },
        // On a cluster rosfleet did not install, Multus must be there before anything relies on
        // it: the attachment (and every workload after it) waits for the lookup, and fails with it.
        spec: {
          config:
            access === undefined
              ? config
              : pulumi.output(access).apply(async (a) => {
                  requireMultus(await crdLookup(a, MULTUS_CRD), this);
                  return config;
                }),
        },
      },
      { parent: this, dependsOn: [...install, ...crd] },
    );
    // A pod that starts before Multus has written its CNI config on its node comes up without
    // its second interface, and keeps it that way. One Job per node proves the attachment works
    // there before any workload starts.
    const ready = nodes.map(
      (node) =>
        new k8s.batch.v1.Job(
          `${name}-multus-ready-${node}`,
          {
            metadata: {
              name: perNodeName("multus-ready-", node),
              namespace: ns,
              labels: appLabels("multus-ready"),
            },
            spec: {
              backoffLimit: 6,
              activeDeadlineSeconds: 900,
              template: {
                metadata: {
                  labels: appLabels("multus-ready"),
                  annotations: podNetworking("multus").annotations,
                },
                spec: {
                  ...rosPodBase(),
                  restartPolicy: "Never",
                  nodeSelector: { "kubernetes.io/hostname": node },
                  tolerations: tolerateAll,
                  containers: [
                    rosContainerOf(
                      "multus-ready",
                      image,
                      ["bash", "-c", MULTUS_READY_SCRIPT],
                      [{ name: "NODE_NAME", value: node }],
                    ),
                  ],
                },
              },
            },
          },
          {
            parent: this,
            dependsOn: [attachment, this.account],
            customTimeouts: { create: "20m", update: "20m" },
          },
        ),
    );
    return [...install, attachment, ...ready];
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
