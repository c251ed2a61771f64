// The delivery check's two waits, dynamic resources (common/dynamic.ts) that ask the Kubernetes
// API, each made anew for every run of the check (its run key is an input):
//
// - CheckGate, before the check's Jobs: every checked node can take a pod now (Ready, and not
//   cordoned by hand). One that cannot fails `up` at once, naming it. It is not left out with a
//   warning: a check that passed without the robot would tell the lab it works while the robot
//   is gone; `cordon: true` on the machine leaves it out on purpose.
// - CheckWait, after the Jobs: waits for the listeners' Job to end — complete, failed, or
//   stalled (check-progress.ts: every pod that could run finished, the rest cannot run) — then
//   gives the beacons a moment to end too, and returns the reports ConfigMap's data and why each
//   node that did not finish did not. The provider's own Job await is off for both Jobs
//   (`pulumi.com/waitFor` their uid, so their delete is still awaited): it fails `up` on a
//   failed Job without the reports that did arrive, and waits out the deadline for a pod that
//   can never run.
import * as pulumi from "@pulumi/pulumi";
import { batchApi, coreApi } from "../common/dynamic";
import type { ClusterAccess } from "../common/kubeconfig";
import { cannotSchedule, notReady } from "../common/nodes";
import { JobView, PodView, Progress, listenersProgress } from "./check-progress";
import { notReadyFailure } from "./pull";

/** How long the beacons may take to end after the listeners did (they end on the listeners'
 * `done`, said for 2 s): longer, and they end on their own deadline, unwatched. */
export const BEACON_END_SECONDS = 10;
const POLL_MS = 2000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Pods of a Job, by its uid: the label since Kubernetes 1.27, else the older one. */
async function jobPods(
  api: ReturnType<typeof coreApi>,
  namespace: string,
  uid: string,
): Promise<PodView[]> {
  for (const label of ["batch.kubernetes.io/controller-uid", "controller-uid"]) {
    const list = await api.listNamespacedPod({ namespace, labelSelector: `${label}=${uid}` });
    if (list.items.length > 0) return list.items as PodView[];
  }
  return [];
}

/** CheckGate's provider (exported for its tests). */
export const gateProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
    const api = coreApi(inputs["access"] as ClusterAccess);
    const nodes = inputs["nodes"] as string[];
    const down: Record<string, string> = {};
    for (const node of nodes) {
      const found = await api.readNode({ name: node }).catch(() => undefined);
      const why = cannotSchedule(node, found as never);
      if (why !== undefined) down[node] = why;
    }
    if (Object.keys(down).length > 0) throw new Error(notReadyFailure(down));
    return { id: String(inputs["run"]), outs: { nodes, run: inputs["run"] } };
  },
  async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const replaces = olds["run"] === news["run"] ? [] : ["run"];
    if (JSON.stringify(olds["nodes"]) !== JSON.stringify(news["nodes"])) replaces.push("nodes");
    return { changes: replaces.length > 0, replaces };
  },
  async delete(): Promise<void> {},
};

export interface CheckGateArgs {
  readonly access: pulumi.Input<ClusterAccess>;
  readonly nodes: readonly string[];
  readonly run: pulumi.Input<string>;
}

/** Every checked node can take the check's pods (`pulumi-nodejs:dynamic/ros:CheckGate`). */
export class CheckGate extends pulumi.dynamic.Resource {
  constructor(name: string, args: CheckGateArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      gateProvider,
      name,
      { ...args, access: pulumi.secret(args.access) },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["access"] }),
      "ros",
      "CheckGate",
    );
  }
}

/** What CheckWait leaves in the state. */
export interface CheckWaitOuts {
  /** Compared by diff with the next inputs, as run and jobUid are. */
  readonly namespace: string;
  readonly run: string;
  readonly jobUid: string;
  /** The reports ConfigMap's data once the listeners ended (node → report line). */
  readonly reports: Record<string, string>;
  readonly outcome: string;
  readonly notes: Record<string, string>;
}

/** CheckWait's provider (exported for its tests). */
export const waitProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
    const access = inputs["access"] as ClusterAccess;
    const api = coreApi(access);
    const batch = batchApi(access);
    const namespace = String(inputs["namespace"]);
    const uid = String(inputs["jobUid"]);
    const nodes = inputs["nodes"] as string[];
    const deadline = Date.now() + Number(inputs["waitSeconds"]) * 1000;
    let progress: Progress;
    // What the pods said on the way: a node's reason stays though its pod moves on.
    let said: Record<string, string> = {};
    for (;;) {
      const job = await batch
        .readNamespacedJob({ name: String(inputs["job"]), namespace })
        .catch(() => undefined);
      if (job?.metadata?.uid !== uid) {
        progress = { done: true, outcome: "was deleted before it ended", notes: {} };
        break;
      }
      const pods = await jobPods(api, namespace, uid);
      // A pod's node gone NotReady: that pod will not finish (cordoning leaves running pods be).
      const down = new Set<string>();
      for (const node of new Set(pods.map((p) => p.spec?.nodeName ?? ""))) {
        if (node === "") continue;
        const found = await api.readNode({ name: node }).catch(() => undefined);
        if (notReady(found as never) !== undefined) down.add(node);
      }
      progress = listenersProgress(job as JobView, pods, nodes, down, Date.now());
      said = { ...said, ...progress.notes };
      if (progress.done) break;
      if (Date.now() > deadline) {
        progress = {
          ...progress,
          outcome: `was still running after ${String(inputs["waitSeconds"])}s`,
        };
        break;
      }
      await sleep(POLL_MS);
    }
    if (progress.outcome === "complete") {
      const until = Date.now() + BEACON_END_SECONDS * 1000;
      while (Date.now() < until) {
        const beacons = await batch
          .readNamespacedJob({ name: String(inputs["beacons"]), namespace })
          .catch(() => undefined);
        const over = (beacons?.status?.conditions ?? []).some(
          (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
        );
        if (beacons === undefined || over) break;
        await sleep(1000);
      }
    }
    const reports = await api
      .readNamespacedConfigMap({ name: String(inputs["reportsConfigMap"]), namespace })
      .then((cm) => cm.data ?? {})
      .catch(() => ({}));
    const outs: CheckWaitOuts = {
      namespace,
      run: String(inputs["run"]),
      jobUid: uid,
      reports,
      outcome: progress.outcome,
      notes: { ...said, ...progress.notes },
    };
    return { id: `${namespace}/${uid}`, outs: { ...outs } };
  },
  async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const replaces = ["run", "jobUid", "namespace"].filter((k) => olds[k] !== news[k]);
    return { changes: replaces.length > 0, replaces };
  },
  async delete(): Promise<void> {},
};

export interface CheckWaitArgs {
  readonly access: pulumi.Input<ClusterAccess>;
  readonly namespace: pulumi.Input<string>;
  /** The listeners' and the beacons' Jobs, and the reports ConfigMap, by name. */
  readonly job: string;
  readonly beacons: string;
  readonly reportsConfigMap: string;
  /** The listeners' Job's uid: its pods, and the reports it wrote. */
  readonly jobUid: pulumi.Input<string>;
  readonly run: pulumi.Input<string>;
  readonly nodes: readonly string[];
  /** At most this long (the Job's own deadline). */
  readonly waitSeconds: number;
}

/** The listeners ended; their reports (`pulumi-nodejs:dynamic/ros:CheckWait`). */
export class CheckWait extends pulumi.dynamic.Resource {
  declare public readonly reports: pulumi.Output<Record<string, string>>;
  declare public readonly outcome: pulumi.Output<string>;
  declare public readonly notes: pulumi.Output<Record<string, string>>;
  declare public readonly jobUid: pulumi.Output<string>;
  declare public readonly run: pulumi.Output<string>;

  constructor(name: string, args: CheckWaitArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      waitProvider,
      name,
      {
        ...args,
        access: pulumi.secret(args.access),
        reports: undefined,
        outcome: undefined,
        notes: undefined,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["access"] }),
      "ros",
      "CheckWait",
    );
  }
}
