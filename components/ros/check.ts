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
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { DiscoveryMode } from "../config";
import { acceptedReports, checkRun, reportsOf, specHash } from "./delivery";
import { DeliveryLimits, deliveryTable, evaluateDelivery, measuredWith } from "./verdict";
import { appLabels } from "../k8s";
import type { ClusterAccess } from "../common/kubeconfig";
import { DynamicHost } from "../common/dynamic";
import { CheckGate, CheckWait } from "./check-wait";
import { RosContext, podNetworking, rosContainerOf, rosEnv } from "./render";
import {
  BEACON_JOB,
  CHECK_ACCOUNT,
  CHECK_DEADLINE_EXTRA_S,
  CHECK_JOB,
  CHECK_RULES,
  DeliveryOutput,
  JOB_ANNOTATIONS,
  JOB_UID_LABELS,
  PROBE_PY,
  REPORTS_CONFIGMAP,
  checkScript,
  probeEnv,
  probeJobSpec,
} from "./check-spec";

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
