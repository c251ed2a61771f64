// The delivery check's pieces that are data, not resources: the Jobs' spec, the probe's env
// and script, the names and RBAC rule the check's pods and rosfleet's own reads share, and the
// shape of the `delivery` output. Pure, so tests and benches read them without declaring the
// check (check.ts).
import * as path from "node:path";
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import type { DiscoveryMode } from "../config";
import { readScript, renderScript } from "../shell";
import { DeliveryLimits, DeliveryRow, LARGE_COUNT } from "./verdict";
import { appLabels } from "../k8s";
import { pythonJob, rosPodBase } from "./render";

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

export interface ProbeJobArgs {
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
export function probeJobSpec(a: ProbeJobArgs): k8s.types.input.batch.v1.JobSpec {
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
