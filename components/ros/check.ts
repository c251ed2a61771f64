// The delivery check: two Jobs with one pod on every checked node each, in the workloads'
// image, env and network mode — beacons (talkers) and listeners — run probe.py. Each listener
// measures every beacon, its own node's included (two pods of one machine: where shared memory
// and host-network ports bite), and writes its figures to a ConfigMap (its ServiceAccount may
// read and patch exactly that one). A gate first fails `up` at once on a node that cannot take a pod;
// after the Jobs, a wait (check-wait.ts) reads the ConfigMap through the Kubernetes API once the
// listeners ended — also when their Job failed or a pod could never run, naming why — and the
// reports are judged against the limits (verdict.ts): a failure fails `pulumi up` naming the
// pair, the figure and the limit. No SSH: the same check runs on a k3s
// rosfleet installed and on a cluster it did not. Its pods tolerate no taint, as the ROS pods do
// not: a node tainted against them is left out of the check (config's schedulable). Both Jobs
// end by themselves when the measuring does (a beacon no later than the timeout + 30 s):
// nothing of the check stays on the nodes.
//
// Retrying: a failed check leaves its reports behind. The next run reads them before declaring
// the Jobs; unless they are a pass of this very spec, the Jobs get a new run key and so are
// replaced, i.e. run again. A pass keeps its key: a passing lab's next `up` changes nothing.
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { DiscoveryMode } from "../config";
import { readScript, renderScript } from "../shell";
import { acceptedReports, checkRun, reportsOf, specHash } from "./delivery";
import {
  DeliveryLimits,
  DeliveryRow,
  LARGE_COUNT,
  deliveryTable,
  evaluateDelivery,
  measuredWith,
} from "./verdict";
import { appLabels } from "../k8s";
import type { ClusterAccess } from "../common/kubeconfig";
import { DynamicHost } from "../common/dynamic";
import { CheckGate, CheckWait } from "./check-wait";
import { RosContext, podNetworking, rosContainerOf, rosEnv, pythonJob, rosPodBase } from "./render";

type EnvVar = k8s.types.input.core.v1.EnvVar;

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
  /** `deliveryCheck.timeoutSeconds`: how long a listener measures at most. */
  readonly timeoutSeconds: number;
  /** `deliveryCheck`'s limits and the large message's size. */
  readonly limits: DeliveryLimits;
  /** Checked after these: the workloads and the discovery infrastructure. */
  readonly after: readonly pulumi.Resource[];
  /** How rosfleet's own requests reach the API (the gate, the wait). */
  readonly access: pulumi.Input<ClusterAccess>;
}

/** The probe both Jobs run (components/ros/probe.py), as one `python3 -c` program. */
export const PROBE_PY = (): string => readScript(path.join(__dirname, "probe.py"));

/** The script a check pod runs: the probe as listener, then its report written. */
export function checkScript(probe: string = PROBE_PY()): string {
  return renderScript(path.join(__dirname, "check.sh"), {
    REPORTS: REPORTS_CONFIGMAP,
    PROBE_PY: probe,
    PUBLISH_PY: pythonJob("publish.py"),
    CLAIMED_PY: pythonJob("claimed.py"),
  });
}

/** What both Jobs' probes are told: the nodes, the bound, the large message, the run. */
export function probeEnv(
  nodes: readonly string[],
  timeoutSeconds: number,
  limits: DeliveryLimits,
  run: pulumi.Input<string>,
): EnvVar[] {
  return [
    // Kubernetes' downward API: the node this pod runs on.
    { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
    { name: "ROSFLEET_NODES", value: nodes.join(",") },
    { name: "ROSFLEET_TIMEOUT", value: String(timeoutSeconds) },
    { name: "ROSFLEET_LARGE_BYTES", value: String(limits.largeMessageBytes) },
    { name: "ROSFLEET_LARGE_COUNT", value: String(LARGE_COUNT) },
    { name: "ROSFLEET_CHECK_RUN", value: run },
  ];
}

/** A check Job's pods have this long beyond the timeout (a slow start on a Pi), then the Job
 * ends them. */
export const CHECK_DEADLINE_EXTRA_S = 300;

/** The beacons' Job name, and their pods' app label. */
export const BEACON_JOB = "rosfleet-beacon";
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

/** The Jobs' annotations: the provider's await ends once the Job exists (CheckWait does the
 * waiting, and reads the reports also of a Job that failed); their delete is still awaited, so
 * a replaced Job is gone before its successor of the same name is created. */
export const JOB_ANNOTATIONS = { "pulumi.com/waitFor": "jsonpath={.metadata.uid}" };

/** The only thing the check pods may do in the cluster: read and write their reports. */
export const CHECK_RULES = [
  {
    apiGroups: [""],
    resources: ["configmaps"],
    resourceNames: [REPORTS_CONFIGMAP],
    verbs: ["get", "patch"],
  },
];

/** What the `delivery` output holds: how it was measured, the limits, every pair. */
export interface DeliveryOutput {
  readonly measuredWith: {
    readonly mode: DiscoveryMode;
    readonly distro: string;
    readonly rmw: string;
    readonly domainId: number;
  };
  readonly limits: DeliveryLimits;
  /** One aligned line per pair, a header first: what a person reads. */
  readonly table: string[];
  readonly pairs: DeliveryRow[];
}

interface ProbeJobArgs {
  readonly app: string;
  readonly mode: DiscoveryMode;
  readonly nodes: readonly string[];
  readonly run: pulumi.Output<string>;
  readonly timeoutSeconds: number;
  readonly pod: Partial<k8s.types.input.core.v1.PodSpec>;
  readonly container: k8s.types.input.core.v1.Container;
  readonly annotations: Record<string, string>;
}

/** One pod of `app` on each of the nodes, never two on one (anti-affinity among this run's pods
 * of that app), each ending when its probe does. One Job however many nodes — not one per node
 * that each names every other node — so the state, and every preview, grows linearly. */
function probeJobSpec(a: ProbeJobArgs): k8s.types.input.batch.v1.JobSpec {
  const thisRun = a.run.apply((r) => ({
    ...appLabels(a.app),
    [CHECK_RUN_LABEL]: runLabel(r),
  }));
  return {
    completions: a.nodes.length,
    parallelism: a.nodes.length,
    backoffLimit: 0,
    activeDeadlineSeconds: a.timeoutSeconds + CHECK_DEADLINE_EXTRA_S,
    template: {
      metadata: { labels: thisRun, annotations: a.annotations },
      spec: {
        ...rosPodBase(a.mode),
        ...a.pod,
        restartPolicy: "Never",
        affinity: {
          nodeAffinity: onNodes(a.nodes),
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [
              { labelSelector: { matchLabels: thisRun }, topologyKey: "kubernetes.io/hostname" },
            ],
          },
        },
        containers: [a.container],
      },
    },
  };
}

/** The delivery proof (`rosfleet:ros:DeliveryCheck`). */
export class DeliveryCheck extends pulumi.ComponentResource {
  /** The listeners' Job: one pod per node. */
  public readonly job: k8s.batch.v1.Job;
  /** The beacons' Job: one pod per node. */
  public readonly beacons: k8s.batch.v1.Job;
  /** Every (talker node → listener node) pair, a node with itself included, with its figures;
   * fails the update when any pair failed. */
  public readonly results: pulumi.Output<DeliveryOutput>;

  constructor(name: string, args: DeliveryCheckArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rosfleet:ros:DeliveryCheck", name, {}, opts);
    const networking = podNetworking(args.discovery);
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

    // The last run's reports, read before the Jobs are declared (unknown on the first preview,
    // when the ConfigMap does not exist yet).
    const last = k8s.core.v1.ConfigMap.get(`${name}-last`, reports.id, { parent: this });
    const ctx = pulumi.all([args.context.image, args.context.discoveryServer]);
    const run = pulumi.all([last.data, ctx]).apply(([data, [image, discoveryServer]]) =>
      checkRun(
        specHash({
          ctx: { ...args.context, image, discoveryServer },
          nodes: args.nodes,
          timeoutSeconds: args.timeoutSeconds,
          limits: args.limits,
        }),
        reportsOf(data),
        args.nodes,
        args.discovery,
        args.limits,
        Date.now(),
      ),
    );
    const env = [
      ...probeEnv(args.nodes, args.timeoutSeconds, args.limits, run),
      ...rosEnv(args.context, true),
    ];
    const common = {
      mode: args.discovery,
      nodes: args.nodes,
      run,
      timeoutSeconds: args.timeoutSeconds,
      annotations: networking.annotations,
    };
    const dynamic = {
      parent: this,
      provider: new DynamicHost(`${name}-dynamic`, { parent: this }),
    };
    // Every node can take a pod now, or `up` fails here, naming it (check-wait.ts says why).
    const gate = new CheckGate(
      `${name}-gate`,
      { access: args.access, nodes: args.nodes, run },
      { ...dynamic, dependsOn: [...args.after] },
    );
    // The talkers: no API token at all.
    this.beacons = new k8s.batch.v1.Job(
      `${name}-beacons`,
      {
        metadata: {
          name: BEACON_JOB,
          namespace: args.namespace,
          labels: appLabels(BEACON_JOB),
          annotations: JOB_ANNOTATIONS,
        },
        spec: probeJobSpec({
          ...common,
          app: BEACON_JOB,
          pod: { ...networking.spec },
          container: rosContainerOf(
            "beacon",
            args.context.image,
            ["python3", "-c", PROBE_PY(), "beacon"],
            env,
          ),
        }),
      },
      { parent: this, dependsOn: [gate] },
    );
    // The listeners, at the same time (a listener waits for the beacons, and they for it).
    this.job = new k8s.batch.v1.Job(
      `${name}-job`,
      {
        metadata: {
          name: CHECK_JOB,
          namespace: args.namespace,
          labels: checkLabels,
          annotations: JOB_ANNOTATIONS,
        },
        spec: probeJobSpec({
          ...common,
          app: "delivery-check",
          pod: {
            ...networking.spec,
            // The one pod that talks to the API: to write its report.
            serviceAccountName: CHECK_ACCOUNT,
            automountServiceAccountToken: true,
          },
          container: rosContainerOf(
            "check",
            args.context.image,
            ["bash", "-c", checkScript()],
            [
              ...env,
              // The Job controller's label since Kubernetes 1.27, and the older one:
              // a label a pod lacks reads as empty, and the probe takes either.
              ...JOB_UID_LABELS.map(([envName, label]) => ({
                name: envName,
                valueFrom: { fieldRef: { fieldPath: `metadata.labels['${label}']` } },
              })),
            ],
          ),
        }),
      },
      { parent: this, dependsOn: [gate, reports, binding] },
    );

    // This run's reports, once its listeners ended (at preview only when the Jobs are not being
    // replaced; otherwise unknown, so a preview never judges stale reports).
    const waited = new CheckWait(
      `${name}-wait`,
      {
        access: args.access,
        namespace: args.namespace,
        job: CHECK_JOB,
        beacons: BEACON_JOB,
        reportsConfigMap: REPORTS_CONFIGMAP,
        jobUid: this.job.metadata.uid,
        run,
        nodes: args.nodes,
        waitSeconds: args.timeoutSeconds + CHECK_DEADLINE_EXTRA_S,
      },
      { ...dynamic, dependsOn: [this.job, this.beacons] },
    );
    this.results = pulumi
      .all([waited.reports, waited.notes, waited.outcome, this.job.metadata.uid, run])
      .apply(([data, notes, outcome, uid, key]) => {
        const mine = acceptedReports(reportsOf(data), (r) => r.run === key && r.job === uid);
        const verdict = evaluateDelivery(args.nodes, mine, args.discovery, args.limits, {
          notes: new Map(Object.entries(notes)),
          outcome,
        });
        // Fails the update, attributed to this component, without a stack trace.
        if (!verdict.ok) throw new pulumi.ResourceError(verdict.message, this, true);
        pulumi.log.info(verdict.message, this);
        return {
          measuredWith: {
            mode: args.discovery,
            ...measuredWith(mine),
            domainId: args.context.domainId,
          },
          limits: args.limits,
          table: deliveryTable(verdict.rows, args.limits),
          pairs: verdict.rows,
        };
      });
    // The results reach the stack's `delivery` output; registering them here too would report
    // a failure twice.
    this.registerOutputs({});
  }
}
