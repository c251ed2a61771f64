// The delivery check: a beacon talker on every checked node publishes "rosfleet-beacon from
// <node>" on /chatter; one Job per node, pinned there, listens with the workloads' image, env and
// network mode, and reports whom it heard. Pulumi waits for the Jobs; the reports are read on
// the first server, judged by `evaluateDelivery`, and a failure fails `pulumi up` by name.
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { DiscoveryMode } from "../config";
import { Step, Target, step } from "../machine/step";
import { renderScript } from "../shell";
import {
  DeliveryResult,
  deliveryPairs,
  evaluateDelivery,
  expectedTalkers,
  parseReports,
} from "./delivery";
import { appLabels } from "../k8s";
import { K3S_LIB } from "../k3s/scripts";
import { RosContext, podNetworking, rosEnv, ROS_RESOURCES } from "./render";

export interface DeliveryCheckArgs {
  /** Nodes to check: every machine that is not cordoned. */
  readonly nodes: readonly string[];
  readonly discovery: DiscoveryMode;
  /** Image, domain and mode, exactly as the workloads get them. */
  readonly context: pulumi.Output<RosContext>;
  readonly namespace: pulumi.Input<string>;
  /** `deliveryCheck.timeoutSeconds`: how long each Job listens. */
  readonly timeoutSeconds: number;
  /** Where the reports are read (`k3s kubectl logs`). */
  readonly primary: Target;
  /** Checked after these: the workloads and the discovery infrastructure. */
  readonly after: readonly pulumi.Resource[];
}

const jobName = (node: string) => `delivery-check-${node}`;
const tolerateAll = [{ operator: "Exists" }];

/** The script a check Job runs for `node`. */
export function checkScript(
  node: string,
  expected: readonly string[],
  timeoutSeconds: number,
): string {
  return renderScript(path.join(__dirname, "check.sh"), {
    NODE_NAME: node,
    EXPECTED: expected.join(","),
    TIMEOUT_SECONDS: timeoutSeconds,
  });
}

/** The script that prints every Job's report line, on the first server. */
export function reportScript(namespace: string, nodes: readonly string[]): string {
  return renderScript(
    path.join(__dirname, "report.sh"),
    { NAMESPACE: namespace, NODES: nodes.join(","), ROOT: "" },
    K3S_LIB,
  );
}

/** The cross-node proof (`rosfleet:ros:DeliveryCheck`). */
export class DeliveryCheck extends pulumi.ComponentResource {
  public readonly jobs: readonly k8s.batch.v1.Job[];
  public readonly report: Step;
  /** Every (talker node → listener node) pair and whether /chatter arrived; fails the update when any did not. */
  public readonly results: pulumi.Output<DeliveryResult[]>;

  constructor(name: string, args: DeliveryCheckArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rosfleet:ros:DeliveryCheck", name, {}, opts);
    const pairs = deliveryPairs(args.nodes);
    const networking = podNetworking(args.discovery);
    const labels = appLabels("rosfleet-beacon");

    const beacons = new k8s.apps.v1.DaemonSet(
      `${name}-beacons`,
      {
        metadata: { name: "rosfleet-beacon", namespace: args.namespace, labels },
        spec: {
          selector: { matchLabels: labels },
          template: {
            metadata: { labels, annotations: networking.annotations },
            spec: args.context.apply((ctx) => ({
              ...networking.spec,
              tolerations: tolerateAll,
              affinity: {
                nodeAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: {
                    nodeSelectorTerms: [
                      {
                        matchExpressions: [
                          {
                            key: "kubernetes.io/hostname",
                            operator: "In",
                            values: [...args.nodes],
                          },
                        ],
                      },
                    ],
                  },
                },
              },
              containers: [
                {
                  name: "beacon",
                  image: ctx.image,
                  // Kubernetes expands $(NODE_NAME) from the env below.
                  args: [
                    "ros2",
                    "topic",
                    "pub",
                    "-r",
                    "2",
                    "/chatter",
                    "std_msgs/msg/String",
                    "{data: 'rosfleet-beacon from $(NODE_NAME)'}",
                  ],
                  env: [
                    { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
                    ...rosEnv(ctx, true),
                  ],
                  resources: ROS_RESOURCES,
                },
              ],
            })),
          },
        },
      },
      { parent: this, dependsOn: [...args.after] },
    );

    this.jobs = args.nodes.map(
      (node) =>
        new k8s.batch.v1.Job(
          `${name}-${node}`,
          {
            metadata: {
              name: jobName(node),
              namespace: args.namespace,
              labels: appLabels("delivery-check"),
            },
            spec: {
              backoffLimit: 0,
              activeDeadlineSeconds: args.timeoutSeconds + 300,
              template: {
                metadata: {
                  labels: appLabels("delivery-check"),
                  annotations: networking.annotations,
                },
                spec: args.context.apply((ctx) => ({
                  ...networking.spec,
                  restartPolicy: "Never",
                  nodeSelector: { "kubernetes.io/hostname": node },
                  tolerations: tolerateAll,
                  containers: [
                    {
                      name: "check",
                      image: ctx.image,
                      args: [
                        "bash",
                        "-c",
                        checkScript(node, expectedTalkers(pairs, node), args.timeoutSeconds),
                      ],
                      env: rosEnv(ctx, true),
                      resources: ROS_RESOURCES,
                    },
                  ],
                })),
              },
            },
          },
          {
            parent: this,
            dependsOn: [beacons],
            customTimeouts: {
              create: `${args.timeoutSeconds + 600}s`,
              update: `${args.timeoutSeconds + 600}s`,
            },
          },
        ),
    );

    this.report = step(
      `${name}-report`,
      args.primary,
      {
        script: pulumi.output(args.namespace).apply((ns) => reportScript(ns, args.nodes)),
        asRoot: true,
        // A new Job (new uid) is a new check: read its report again.
        triggers: this.jobs.map((j) => j.metadata.uid),
      },
      { parent: this, dependsOn: [...this.jobs] },
    );

    this.results = this.report.stdout.apply((text) => {
      const verdict = evaluateDelivery(args.nodes, parseReports(text), args.discovery);
      // Fails the update, attributed to this component, without a stack trace.
      if (!verdict.ok) throw new pulumi.ResourceError(verdict.message, this, true);
      return verdict.results;
    });
    // The results reach the stack's `delivery` output; registering them here too would report
    // a failure twice.
    this.registerOutputs({});
  }
}
