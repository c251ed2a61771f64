// The pull probe: before any ROS pod is declared, one short pod per schedulable node pulls the
// ros_demo image there, with the lab's pull login. A node that cannot pull it (a wrong
// repository or digest, a refused login, a plain-HTTP registry without a k3s.registries mirror)
// reports ErrImagePull within seconds; the probe then fails `up` at once with the node's own
// error and the keys that fix it — the Deployments' await would only time out after 10 minutes.
// A slow first pull on a Pi is waited for (PULL_SECONDS). The image is then in each node's
// cache, so the workloads start from it. Nothing of the probe stays: its pods are deleted.
//
// A dynamic resource (components/common/dynamic.ts): it runs again only when the image or the
// nodes change.
import * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import { coreApi } from "../common/dynamic";
import type { ClusterAccess } from "../common/kubeconfig";
import { notReady } from "../common/nodes";
import { LOCAL_REPOSITORY } from "../common/image-reference";

/** How long a node may take to pull the image (a 1 GB image over a Pi's Wi-Fi). */
export const PULL_SECONDS = 900;

export interface PullProbeArgs {
  readonly access: pulumi.Input<ClusterAccess>;
  readonly namespace: pulumi.Input<string>;
  /** The ros_demo reference (by digest). */
  readonly image: pulumi.Input<string>;
  /** The nodes that must be able to pull it. */
  readonly nodes: readonly string[];
  /** The probe pod's spec without its node (image, account with the pull login, security). */
  readonly podSpec: pulumi.Input<k8s.types.input.core.v1.PodSpec>;
}

/** Waiting reasons that mean the image will not come (the kubelet retries, in vain). */
const PULL_FAILURES = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"];

/** What one probe pod's status says: pulled, failed (the kubelet's message), or not yet. */
export function pullState(
  pod: { status?: { containerStatuses?: { state?: Record<string, unknown> }[] } } | undefined,
): { pulled: true } | { failed: string } | undefined {
  const state = pod?.status?.containerStatuses?.[0]?.state;
  if (state === undefined) return undefined;
  if (state["running"] !== undefined || state["terminated"] !== undefined) return { pulled: true };
  const waiting = state["waiting"] as { reason?: string; message?: string } | undefined;
  if (waiting?.reason !== undefined && PULL_FAILURES.includes(waiting.reason))
    return { failed: `${waiting.reason}: ${waiting.message ?? "(no message)"}` };
  return undefined;
}

/** The one error for nodes that cannot pull: each node's own words, then what to fix. */
export function pullFailure(image: string, failures: Readonly<Record<string, string>>): string {
  const lines = Object.entries(failures).map(([node, why]) => `  - ${node}: ${why}`);
  // An imported image (no registry has it) that a node lacks was removed from k3s by hand, or
  // the node's k3s is not the one it was imported into.
  const fix = image.startsWith(`${LOCAL_REPOSITORY}@`)
    ? "The image was built on this machine and imported into its k3s, and that k3s no longer has it " +
      "(removed with k3s ctr, or k3s reinstalled by hand): run pulumi up --replace with the URN of the " +
      "ros-demo-import step (pulumi stack --show-urns) to import it again."
    : "Fix image.repository (a published image must exist for every arch of the lab), " +
      "registryUsername / registryPassword for a private registry, and for a registry without " +
      "TLS a k3s.registries mirror with an http:// endpoint (docs/reference.md: Registries the machines pull from).";
  return [`the nodes cannot pull the ros_demo image ${image}:`, ...lines, fix].join("\n");
}

/** The one error for nodes that are not there: nothing could run on them, so say it at once. */
export function notReadyFailure(why: Readonly<Record<string, string>>): string {
  return [
    "these machines' nodes cannot run pods now, so the ROS pods and the delivery check could not either:",
    ...Object.entries(why).map(([node, w]) => `  - ${node}: ${w}`),
    "Bring each back (on it: sudo journalctl -u k3s-agent, or -u k3s on a server), or set cordon: true on it " +
      "in machines (a cordoned machine is left out of the pull probe and the delivery check), or remove it.",
  ].join("\n");
}

/** The probe pod's name on `node` (a node name is a DNS label; the prefix keeps it short). */
export const probeName = (node: string): string => `rosfleet-pull-${node}`.slice(0, 63);

const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
    const api = coreApi(inputs["access"] as ClusterAccess);
    const namespace = String(inputs["namespace"]);
    const image = String(inputs["image"]);
    const nodes = inputs["nodes"] as string[];
    const spec = inputs["podSpec"] as Record<string, unknown>;
    // A node that is not Ready would leave its probe pod Pending for the whole wait.
    const down: Record<string, string> = {};
    for (const node of nodes) {
      const found = await api.readNode({ name: node }).catch(() => undefined);
      const why = notReady(found as never);
      if (why !== undefined) down[node] = why;
    }
    if (Object.keys(down).length > 0) throw new Error(notReadyFailure(down));
    const names = nodes.map((node) => probeName(node));
    const remove = () =>
      Promise.all(
        names.map((name) =>
          api
            .deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 })
            .catch(() => undefined),
        ),
      );
    await remove();
    const gone = async (name: string) => {
      for (let i = 0; i < 60; i++) {
        try {
          await api.readNamespacedPod({ name, namespace });
        } catch {
          return;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    await Promise.all(names.map(gone));
    try {
      await Promise.all(
        nodes.map((node, i) =>
          api.createNamespacedPod({
            namespace,
            body: {
              metadata: {
                name: names[i],
                labels: {
                  "app.kubernetes.io/name": "rosfleet-pull",
                  "app.kubernetes.io/part-of": "rosfleet",
                },
              },
              // On that node, whatever the scheduler would say: the pull is what is asked.
              spec: { ...spec, nodeName: node, restartPolicy: "Never" } as never,
            },
          }),
        ),
      );
      const deadline = Date.now() + Number(inputs["pullSeconds"]) * 1000;
      const pending = new Set(nodes);
      const failures: Record<string, string> = {};
      while (pending.size > 0 && Date.now() < deadline) {
        for (const node of [...pending]) {
          const pod = await api
            .readNamespacedPod({ name: probeName(node), namespace })
            .catch(() => undefined);
          const state = pullState(pod as never);
          if (state === undefined) continue;
          pending.delete(node);
          if ("failed" in state) failures[node] = state.failed;
        }
        if (Object.keys(failures).length > 0) break;
        if (pending.size > 0) await new Promise((r) => setTimeout(r, 2000));
      }
      if (Object.keys(failures).length > 0) throw new Error(pullFailure(image, failures));
      if (pending.size > 0)
        throw new Error(
          `the ros_demo image ${image} was not pulled within ${String(inputs["pullSeconds"])}s on ${[...pending].join(", ")}: see kubectl -n ${namespace} describe pod ${probeName([...pending][0])}`,
        );
    } finally {
      await remove();
    }
    return { id: `${namespace}/${image}`, outs: { namespace, image, nodes } };
  },

  async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const replaces = ["image", "namespace"].filter((k) => olds[k] !== news[k]);
    if (JSON.stringify(olds["nodes"]) !== JSON.stringify(news["nodes"])) replaces.push("nodes");
    return { changes: replaces.length > 0, replaces };
  },

  // Its pods are gone once it is created.
  async delete(): Promise<void> {},
};

/** Every node pulled the image (`pulumi-nodejs:dynamic/ros:PullProbe`; give it a DynamicHost). */
export class PullProbe extends pulumi.dynamic.Resource {
  constructor(name: string, args: PullProbeArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      { ...args, access: pulumi.secret(args.access), pullSeconds: PULL_SECONDS },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["access"] }),
      "ros",
      "PullProbe",
    );
  }
}
