// What the stack looked like at its last update, for the rules on how a lab may change in one
// `pulumi up` (quorum.ts): read back from the stack's own `nodes` output with a StackReference
// to itself (a read: `preview` lists it), which needs no state of rosfleet's own.
import * as pulumi from "@pulumi/pulumi";

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

/** The servers of this stack's last update, in `machines` order; [] on its first. */
export async function previousServers(): Promise<string[]> {
  const self = new pulumi.StackReference(
    `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
  );
  const nodes = await self.getOutputDetails("nodes");
  return serversOf(nodes.value ?? nodes.secretValue);
}
