// What a Node's status says about it, for every stage that asks the API: the pull probe and the
// delivery check's gate (a node that cannot run pods fails at once), the config stage (a server
// that is down).

export interface NodeView {
  spec?: { unschedulable?: boolean };
  status?: {
    conditions?: { type?: string; status?: string; reason?: string; message?: string }[];
  };
}

/** Why `node` cannot run a pod now, or undefined when it is Ready. */
export function notReady(node: NodeView | undefined): string | undefined {
  if (node === undefined) return "not in the cluster";
  const ready = node.status?.conditions?.find((c) => c.type === "Ready");
  if (ready?.status === "True") return undefined;
  const said = [ready?.reason, ready?.message].filter((x) => x !== undefined && x !== "");
  return `not Ready (${said.length === 0 ? "no Ready condition yet" : said.join(": ")})`;
}

/** Why `node` takes no new pod now: not Ready, or cordoned outside the stack (a machine with
 * `cordon: true` is not asked about: it is left out). Undefined: it can. */
export function cannotSchedule(name: string, node: NodeView | undefined): string | undefined {
  return (
    notReady(node) ??
    (node?.spec?.unschedulable === true
      ? `cordoned, though not cordon: true in the stack (kubectl uncordon ${name}, or set cordon: true on it)`
      : undefined)
  );
}
