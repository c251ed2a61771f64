// What the stack looked like at its last update, for the rules on how a lab may change in one
// `pulumi up` (quorum.ts): read back from the stack's own `nodes` output with a StackReference
// to itself (a read: `preview` lists it), which needs no state of rosfleet's own.
import * as pulumi from "@pulumi/pulumi";
import type { PreviousLab } from "./replacement";

/** One entry of the `nodes` output as far as these rules need it. */
interface NodeEntry {
  readonly name: string;
  readonly role: string;
}

const isNodeEntry = (v: unknown): v is NodeEntry =>
  typeof v === "object" &&
  v !== null &&
  typeof (v as NodeEntry).name === "string" &&
  typeof (v as NodeEntry).role === "string";

/** The server names of a `nodes` output value, in order; [] for anything else. */
export function serversOf(nodes: unknown): string[] {
  if (!Array.isArray(nodes)) return [];
  return nodes.filter(isNodeEntry).flatMap((n) => (n.role === "server" ? [n.name] : []));
}

/** This stack's last update: its servers in `machines` order ([] on its first), and whether
 * rosfleet installed k3s then (only then is there a `kubeconfig` output). */
export async function previousLab(): Promise<PreviousLab> {
  const self = new pulumi.StackReference(
    `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
  );
  const [nodes, kubeconfig] = await Promise.all([
    self.getOutputDetails("nodes"),
    self.getOutputDetails("kubeconfig"),
  ]);
  return {
    servers: serversOf(nodes.value ?? nodes.secretValue),
    installed: (kubeconfig.value ?? kubeconfig.secretValue) !== undefined,
  };
}
