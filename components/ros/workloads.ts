// Stage "ros": the namespace, the discovery infrastructure of the chosen mode, and the ROS 2
// workloads — created after the discovery Service, because Fast DDS resolves its name once.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LabSettings } from "../config";
import { appLabels, deploymentArgs } from "../k8s";
import { MULTUS_CHART, macvlanConfig, multusValues } from "./multus";
import {
  DISCOVERY_NAME,
  MULTUS_NETWORK,
  DISCOVERY_PORT,
  NAMESPACE,
  ROS_RESOURCES,
  RosContext,
  podNetworking,
  workloadPodSpec,
} from "./render";

export interface RosWorkloadsArgs {
  /** `ros.*` of the stack config. */
  readonly ros: LabSettings["ros"];
  /** The ros_demo reference (by digest) every ROS container runs. */
  readonly image: pulumi.Input<string>;
  /** `k3s.version`: where k3s keeps CNI plugins (for Multus). */
  readonly k3sVersion: string;
}

/** The lab's ROS 2 workloads (`rosfleet:ros:Workloads`). */
export class RosWorkloads extends pulumi.ComponentResource {
  public readonly namespace: k8s.core.v1.Namespace;
  /** What the workloads wait for: the discovery server and its Service, when used. */
  public readonly discovery: readonly pulumi.Resource[];
  public readonly workloads: readonly (k8s.core.v1.Pod | k8s.apps.v1.Deployment)[];
  /** The context every ROS container is rendered in (image, domain, mode). */
  public readonly context: pulumi.Output<RosContext>;

  constructor(name: string, args: RosWorkloadsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rosfleet:ros:Workloads", name, {}, opts);
    const { ros } = args;
    this.namespace = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      { metadata: { name: NAMESPACE } },
      { parent: this },
    );
    const ns = this.namespace.metadata.name;
    this.context = pulumi
      .output(args.image)
      .apply((image) => ({ image, domainId: ros.domainId, discovery: ros.discovery }));

    this.discovery =
      ros.discovery === "discovery-server"
        ? this.discoveryServer(name, ns, args.image)
        : ros.discovery === "multus"
          ? this.multus(name, ns, ros.multus, args.k3sVersion)
          : [];
    const after = [...this.discovery];

    const { annotations } = podNetworking(ros.discovery);
    this.workloads = ros.workloads.map((w) => {
      const spec = this.context.apply((ctx) => workloadPodSpec(w, ctx));
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

  /** Multus + whereabouts (unless already installed) and the macvlan attachment. */
  private multus(
    name: string,
    ns: pulumi.Output<string>,
    multus: LabSettings["ros"]["multus"],
    k3sVersion: string,
  ): pulumi.Resource[] {
    if (multus.range === undefined)
      throw new Error("ros.multus.range is validated with the config");
    const install = multus.install
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
    const attachment = new k8s.apiextensions.CustomResource(
      `${name}-macvlan`,
      {
        apiVersion: "k8s.cni.cncf.io/v1",
        kind: "NetworkAttachmentDefinition",
        metadata: { name: MULTUS_NETWORK, namespace: ns },
        spec: { config: macvlanConfig(multus.interface, multus.range) },
      },
      // The CRD comes with the chart: the provider retries until it is there.
      { parent: this, dependsOn: install },
    );
    return [...install, attachment];
  }

  /** The Fast DDS discovery server: a Deployment and its ClusterIP Service (UDP 11811). */
  private discoveryServer(
    name: string,
    ns: pulumi.Output<string>,
    image: pulumi.Input<string>,
  ): pulumi.Resource[] {
    const server = new k8s.apps.v1.Deployment(
      `${name}-discovery-server`,
      deploymentArgs(DISCOVERY_NAME, ns, {
        containers: [
          {
            name: "discovery-server",
            image,
            args: [
              "fastdds",
              "discovery",
              "-i",
              "0",
              "-l",
              "0.0.0.0",
              "-p",
              String(DISCOVERY_PORT),
            ],
            ports: [{ name: "discovery", containerPort: DISCOVERY_PORT, protocol: "UDP" }],
            resources: ROS_RESOURCES,
          },
        ],
      }),
      { parent: this },
    );
    const service = new k8s.core.v1.Service(
      `${name}-discovery`,
      {
        metadata: { name: DISCOVERY_NAME, namespace: ns, labels: appLabels(DISCOVERY_NAME) },
        spec: {
          type: "ClusterIP",
          selector: appLabels(DISCOVERY_NAME),
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
    return [server, service];
  }
}
