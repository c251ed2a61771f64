// Reading what the lab is since its last update (last-update.ts) from this stack's own state,
// through the engine's `readStackResourceOutputs` invoke: no resource, so no `read` step in
// preview or up (a StackReference to itself was one, on every run), and the state as saved
// step by step rather than the stack outputs, which a failed update leaves behind. When a
// server leaves, the cluster is asked whether the others are Ready (quorum.ts refuses otherwise).
import { CoreV1Api } from "@kubernetes/client-node";
import * as pulumi from "@pulumi/pulumi";
import { describeError, loadAccess } from "../common/kubeconfig";
import { notReady } from "../common/nodes";
import {
  NO_PREVIOUS_LAB,
  PreviousLab,
  StateResource,
  kubeconfigFromState,
  labFromState,
} from "./last-update";

const ASK_SECONDS = 15;

/** The stack's state: URN → type and outputs (secrets decrypted: never logged). */
async function readState(): Promise<Readonly<Record<string, StateResource>>> {
  const result = (await pulumi.runtime.invoke("pulumi:pulumi:readStackResourceOutputs", {
    stackName: pulumi.getStack(),
  })) as { outputs?: Record<string, StateResource> };
  return result.outputs ?? {};
}

/** Server name → why its Node is not Ready, for `servers`, as the cluster answers. */
export async function serversDown(
  kubeconfig: string,
  servers: readonly string[],
): Promise<Record<string, string>> {
  const api = loadAccess(
    { kubeconfig: { text: kubeconfig }, context: undefined },
    true,
  ).makeApiClient(CoreV1Api);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${ASK_SECONDS}s`)),
      ASK_SECONDS * 1000,
    );
  });
  try {
    const nodes = await Promise.race([api.listNode(), timeout]);
    const byName = new Map(nodes.items.map((n) => [n.metadata?.name ?? "", n]));
    return Object.fromEntries(
      servers.flatMap((s) => {
        const why = notReady(byName.get(s));
        return why === undefined ? [] : [[s, why]];
      }),
    );
  } finally {
    clearTimeout(timer);
  }
}

/**
 * This stack's lab since its last update. `leaving(lab)` says which of its servers this run's
 * config takes away: only then is the cluster asked for their health. A state or a cluster
 * that cannot be read is said in one warning, and the run goes on without what it would have
 * told (the removal step checks the servers again on the first server before it deletes
 * anything).
 */
export async function previousLab(
  leaving: (lab: PreviousLab) => readonly string[],
): Promise<PreviousLab> {
  let state: Readonly<Record<string, StateResource>>;
  try {
    state = await readState();
  } catch (err) {
    void pulumi.log.warn(
      `rosfleet could not read this stack's state (${describeError(err)}): how the lab's servers changed since the last update is not checked in this run`,
    );
    return NO_PREVIOUS_LAB;
  }
  const lab = labFromState(state);
  const gone = leaving(lab);
  const kubeconfig = kubeconfigFromState(state);
  if (gone.length === 0 || kubeconfig === undefined) return lab;
  const staying = lab.servers.filter((s) => !gone.includes(s));
  try {
    return { ...lab, down: await serversDown(kubeconfig, staying) };
  } catch (err) {
    void pulumi.log.warn(
      `rosfleet could not ask the cluster whether its other servers are Ready before ${gone.join(", ")} leave${gone.length === 1 ? "s" : ""} (${describeError(err)}): the removal checks it on the first server before it deletes anything`,
    );
    return lab;
  }
}
