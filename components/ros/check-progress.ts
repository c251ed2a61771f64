// How far the delivery check's listeners got, from what the Kubernetes API says of their Job and
// its pods: ended (complete, failed) or as good as ended (every pod that could run has finished,
// the rest cannot run: never scheduled, or on a node that stopped being Ready), and, for each
// node whose listener did not finish, why. Pure, so it is tested on its own; check-wait.ts asks
// the API and calls it.

/** A pod left unscheduled this long is taken as one that will not run (the scheduler's retries
 * of a pod that fits somewhere place it within seconds). */
export const UNSCHEDULABLE_SECONDS = 20;

interface Condition {
  readonly type?: string;
  readonly status?: string;
  readonly reason?: string;
  readonly message?: string;
}

/** The fields of a Job this reads. */
export interface JobView {
  readonly status?: { readonly conditions?: readonly Condition[] };
}

/** The fields of a pod this reads. */
export interface PodView {
  readonly metadata?: { readonly creationTimestamp?: string | Date };
  readonly spec?: { readonly nodeName?: string };
  readonly status?: {
    readonly phase?: string;
    readonly conditions?: readonly Condition[];
    readonly containerStatuses?: readonly {
      readonly state?: {
        readonly terminated?: { readonly reason?: string; readonly exitCode?: number };
      };
    }[];
  };
}

export const STALLED =
  "stalled: every pod of it that could run had ended, the others could not run";

export interface Progress {
  /** Nothing more will come: read the reports now. */
  readonly done: boolean;
  /** "complete", or what follows "The check's Job " in a failure: "failed (<reason>: <message>)",
   * "stalled: …", "running". */
  readonly outcome: string;
  /** Node → why its listener did not finish (only nodes that have a reason). */
  readonly notes: Readonly<Record<string, string>>;
}

const conditionOf = (job: JobView | undefined, type: string) =>
  job?.status?.conditions?.find((c) => c.type === type && c.status === "True");

const ended = (pod: PodView) => pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";

function unscheduled(pod: PodView): Condition | undefined {
  if (pod.spec?.nodeName !== undefined && pod.spec.nodeName !== "") return undefined;
  return pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
}

function failedText(pod: PodView): string {
  const t = pod.status?.containerStatuses?.[0]?.state?.terminated;
  const how = [t?.reason, t?.exitCode === undefined ? undefined : `exit ${t.exitCode}`].filter(
    (x) => x !== undefined && x !== "",
  );
  return `its check pod failed${how.length === 0 ? "" : ` (${how.join(", ")})`}`;
}

/**
 * Where the listeners are. `nodes`: the checked nodes; `notReady`: those whose Node is not Ready
 * now; `now` in ms. A pod that was never scheduled is named under each node that has no pod
 * that ran (the scheduler does not say which node it was meant for: any of them).
 */
export function listenersProgress(
  job: JobView | undefined,
  pods: readonly PodView[],
  nodes: readonly string[],
  notReady: ReadonlySet<string>,
  now: number,
): Progress {
  const notes: Record<string, string> = {};
  const placed = new Set<string>();
  const reasons: string[] = [];
  let active = 0;
  for (const pod of pods) {
    const node = pod.spec?.nodeName;
    const waiting = unscheduled(pod);
    if (waiting !== undefined) {
      reasons.push(waiting.message ?? waiting.reason ?? "unschedulable");
      const created = pod.metadata?.creationTimestamp;
      const since = created instanceof Date ? created.getTime() : Date.parse(created ?? "");
      if (!(Number.isFinite(since) && now - since >= UNSCHEDULABLE_SECONDS * 1000)) active++;
      continue;
    }
    if (node === undefined || node === "") {
      active++;
      continue;
    }
    placed.add(node);
    if (pod.status?.phase === "Failed") notes[node] = failedText(pod);
    else if (!ended(pod)) {
      if (notReady.has(node))
        notes[node] = "its node stopped being Ready while the check ran there";
      else active++;
    }
  }
  // Said as soon as the scheduler says it (the caller keeps it: once the pods that ran have
  // ended, the scheduler may place the waiting one on a node that reported, and stop saying).
  for (const node of nodes)
    if (!placed.has(node) && reasons.length > 0)
      notes[node] = `no check pod could be scheduled there: ${[...new Set(reasons)].join("; ")}`;
  const failed = conditionOf(job, "Failed");
  // Every node's pod succeeded: complete, also before the Job controller says so.
  const succeeded = pods.filter((p) => p.status?.phase === "Succeeded").length;
  if (conditionOf(job, "Complete") !== undefined || succeeded >= nodes.length)
    return { done: true, outcome: "complete", notes };
  if (failed !== undefined)
    return {
      done: true,
      outcome: `failed (${[failed.reason, failed.message].filter(Boolean).join(": ")})`,
      notes,
    };
  // Every pod the Job wants exists, and none of them will do more.
  const stalled = pods.length >= nodes.length && active === 0;
  return { done: stalled, outcome: stalled ? STALLED : "running", notes };
}
