// The delivery check: a beacon talker on every checked node publishes "rosfleet-beacon from
// <node>" on a topic of its own (BEACON_TOPIC: the demo listeners do not hear it); one Job, with
// one pod on each node, listens with the workloads' image, env and network mode, and each pod
// writes whom it heard to a ConfigMap (its ServiceAccount may patch exactly that one). Pulumi
// waits for the Job, reads the ConfigMap through the Kubernetes API, judges the reports with
// `evaluateDelivery`, and a failure fails `pulumi up` by name. No SSH: the same check runs on a
// k3s rosfleet installed and on a cluster it did not. Its pods tolerate no taint, as the ROS
// pods do not: a node tainted against them is left out of the check (config's schedulable).
//
// Retrying: a failed check leaves its reports behind. The next run reads them before declaring
// the Job; unless they are a pass of this very spec, the Job gets a new run key and so is
// replaced, i.e. runs again. A pass keeps its key: a passing lab's next `up` changes nothing.
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { DiscoveryMode } from "../config";
import { renderScript } from "../shell";
import {
  DeliveryResult,
  checkRun,
  evaluateDelivery,
  heardBy,
  reportsOf,
  specHash,
} from "./delivery";
import { appLabels } from "../k8s";
import {
  BEACON_TOPIC,
  RosContext,
  podNetworking,
  rosContainerOf,
  rosEnv,
  pythonJob,
  rosPodBase,
} from "./render";

/** The ConfigMap the check pods write their reports to (data: node name → report line). */
export const REPORTS_CONFIGMAP = "rosfleet-delivery";
/** Where a check pod learns its Job's uid: env name → pod label the Job controller sets. */
export const JOB_UID_LABELS = [
  ["ROSFLEET_JOB_UID", "batch.kubernetes.io/controller-uid"],
  ["ROSFLEET_JOB_UID_LEGACY", "controller-uid"],
] as const;

/** The check pods' ServiceAccount, Role and RoleBinding. */
export const CHECK_ACCOUNT = "rosfleet-delivery-check";

export interface DeliveryCheckArgs {
  /** Nodes to check: every machine that is not cordoned. */
  readonly nodes: readonly string[];
  readonly discovery: DiscoveryMode;
  /** Image, domain and mode, exactly as the workloads get them. */
  readonly context: RosContext;
  /** The registry login Secret the check's pods pull with, if any. */
  readonly pullSecrets: readonly { name: pulumi.Input<string> }[];
  readonly namespace: pulumi.Input<string>;
  /** `deliveryCheck.timeoutSeconds`: how long each Job listens. */
  readonly timeoutSeconds: number;
  /** Checked after these: the workloads and the discovery infrastructure. */
  readonly after: readonly pulumi.Resource[];
}

/** The script a check Job runs for `node`. */
export function checkScript(nodes: readonly string[], timeoutSeconds: number): string {
  return renderScript(path.join(__dirname, "check.sh"), {
    NODES: nodes.join(","),
    TIMEOUT_SECONDS: timeoutSeconds,
    TOPIC: BEACON_TOPIC,
    REPORTS: REPORTS_CONFIGMAP,
    PUBLISH_PY: pythonJob("publish.py"),
  });
}

/** The check Job's name (one Job for the whole lab). */
export const CHECK_JOB = "delivery-check";
/** The label that tells this run's check pods apart (their anti-affinity is among them). */
export const CHECK_RUN_LABEL = "rosfleet.dev/check-run";
/** A run key as a label value (at most 63 characters). */
export const runLabel = (run: string): string => run.slice(0, 63).replace(/[^A-Za-z0-9]+$/, "");

/** Required node affinity: only on these nodes (by `kubernetes.io/hostname`). */
export const onNodes = (nodes: readonly string[]) => ({
  requiredDuringSchedulingIgnoredDuringExecution: {
    nodeSelectorTerms: [
      { matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [...nodes] }] },
    ],
  },
});

/** The only thing the check pods may do in the cluster: write their reports. */
export const CHECK_RULES = [
  {
    apiGroups: [""],
    resources: ["configmaps"],
    resourceNames: [REPORTS_CONFIGMAP],
    verbs: ["patch"],
  },
];

/** The cross-node proof (`rosfleet:ros:DeliveryCheck`). */
export class DeliveryCheck extends pulumi.ComponentResource {
  /** The check Job: one pod per node. */
  public readonly job: k8s.batch.v1.Job;
  /** Every (talker node → listener node) pair and whether the beacon arrived; fails the update
   * when any did not. */
  public readonly results: pulumi.Output<DeliveryResult[]>;

  constructor(name: string, args: DeliveryCheckArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rosfleet:ros:DeliveryCheck", name, {}, opts);
    const networking = podNetworking(args.discovery);
    const labels = appLabels("rosfleet-beacon");
    const checkLabels = appLabels("delivery-check");

    const reports = new k8s.core.v1.ConfigMap(
      `${name}-reports`,
      // No data: the check pods own their keys; Pulumi never overwrites a report.
      { metadata: { name: REPORTS_CONFIGMAP, namespace: args.namespace, labels: checkLabels } },
      { parent: this },
    );
    const account = new k8s.core.v1.ServiceAccount(
      `${name}-account`,
      {
        metadata: { name: CHECK_ACCOUNT, namespace: args.namespace, labels: checkLabels },
        automountServiceAccountToken: false,
        imagePullSecrets: [...args.pullSecrets],
      },
      { parent: this },
    );
    const role = new k8s.rbac.v1.Role(
      `${name}-role`,
      {
        metadata: { name: CHECK_ACCOUNT, namespace: args.namespace, labels: checkLabels },
        rules: CHECK_RULES,
      },
      { parent: this },
    );
    const binding = new k8s.rbac.v1.RoleBinding(
      `${name}-binding`,
      {
        metadata: { name: CHECK_ACCOUNT, namespace: args.namespace, labels: checkLabels },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
        subjects: [
          { kind: "ServiceAccount", name: account.metadata.name, namespace: args.namespace },
        ],
      },
      { parent: this },
    );

    // The last run's reports, read before the Job is declared (unknown on the first preview,
    // when the ConfigMap does not exist yet).
    const last = k8s.core.v1.ConfigMap.get(`${name}-last`, reports.id, { parent: this });
    const ctx = pulumi.all([args.context.image, args.context.discoveryServer]);
    const run = pulumi.all([last.data, ctx]).apply(([data, [image, discoveryServer]]) =>
      checkRun(
        specHash({
          ctx: { ...args.context, image, discoveryServer },
          nodes: args.nodes,
          timeoutSeconds: args.timeoutSeconds,
        }),
        reportsOf(data),
        args.nodes,
        args.discovery,
        Date.now(),
      ),
    );
    const beacons = new k8s.apps.v1.DaemonSet(
      `${name}-beacons`,
      {
        metadata: { name: "rosfleet-beacon", namespace: args.namespace, labels },
        spec: {
          selector: { matchLabels: labels },
          template: {
            metadata: { labels, annotations: networking.annotations },
            spec: {
              ...networking.spec,
              ...rosPodBase(),
              affinity: { nodeAffinity: onNodes(args.nodes) },
              containers: [
                rosContainerOf(
                  "beacon",
                  args.context.image,
                  // Kubernetes expands $(NODE_NAME) from the env below.
                  [
                    ...["ros2", "topic", "pub", "-r", "2", BEACON_TOPIC, "std_msgs/msg/String"],
                    "{data: 'rosfleet-beacon from $(NODE_NAME)'}",
                  ],
                  [
                    { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
                    ...rosEnv(args.context, true),
                  ],
                ),
              ],
            },
          },
        },
      },
      { parent: this, dependsOn: [...args.after] },
    );

    // One Job for the whole lab, one pod on each node: the nodes the beacons run on, never two
    // on one (anti-affinity within this run's pods). One object however many nodes — not one
    // per node that each names every other node — so the state, and every preview, grows
    // linearly with the lab.
    const thisRun = run.apply((r) => ({ [CHECK_RUN_LABEL]: runLabel(r) }));
    const podLabels = thisRun.apply((l) => ({ ...checkLabels, ...l }));
    this.job = new k8s.batch.v1.Job(
      `${name}-job`,
      {
        metadata: { name: CHECK_JOB, namespace: args.namespace, labels: checkLabels },
        spec: {
          completions: args.nodes.length,
          parallelism: args.nodes.length,
          backoffLimit: 0,
          activeDeadlineSeconds: args.timeoutSeconds + 300,
          template: {
            metadata: { labels: podLabels, annotations: networking.annotations },
            spec: {
              ...networking.spec,
              ...rosPodBase(),
              restartPolicy: "Never",
              // The one pod that talks to the API: to write its report.
              serviceAccountName: CHECK_ACCOUNT,
              automountServiceAccountToken: true,
              affinity: {
                nodeAffinity: onNodes(args.nodes),
                podAntiAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: [
                    {
                      labelSelector: { matchLabels: thisRun },
                      topologyKey: "kubernetes.io/hostname",
                    },
                  ],
                },
              },
              containers: [
                rosContainerOf(
                  "check",
                  args.context.image,
                  ["bash", "-c", checkScript(args.nodes, args.timeoutSeconds)],
                  [
                    { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
                    ...rosEnv(args.context, true),
                    { name: "ROSFLEET_CHECK_RUN", value: run },
                    // The Job controller's label since Kubernetes 1.27, and the older one:
                    // a label a pod lacks reads as empty, and check.sh takes either.
                    ...JOB_UID_LABELS.map(([envName, label]) => ({
                      name: envName,
                      valueFrom: { fieldRef: { fieldPath: `metadata.labels['${label}']` } },
                    })),
                  ],
                ),
              ],
            },
          },
        },
      },
      {
        parent: this,
        dependsOn: [beacons, reports, binding],
        customTimeouts: {
          create: `${args.timeoutSeconds + 600}s`,
          update: `${args.timeoutSeconds + 600}s`,
        },
      },
    );

    // This run's reports: read once the Job has completed (at preview only when it is not being
    // replaced; otherwise unknown, so a preview never judges stale reports).
    const read = k8s.core.v1.ConfigMap.get(`${name}-read`, reports.id, {
      parent: this,
      dependsOn: [this.job],
    });
    this.results = pulumi.all([read.data, this.job.metadata.uid, run]).apply(([data, uid, key]) => {
      const heard = heardBy(reportsOf(data), (r) => r.run === key && r.job === uid);
      const verdict = evaluateDelivery(args.nodes, heard, args.discovery);
      // Fails the update, attributed to this component, without a stack trace.
      if (!verdict.ok) throw new pulumi.ResourceError(verdict.message, this, true);
      return verdict.results;
    });
    // The results reach the stack's `delivery` output; registering them here too would report
    // a failure twice.
    this.registerOutputs({});
  }
}
