// What a Node's status says about it, for every stage that asks the API: the pull probe (a
// node that cannot run pods fails at once) and the config stage (a server that is down).

/** Why `node` cannot run a pod now, or undefined when it is Ready. */
export function notReady(
  node:
    | {
        status?: {
          conditions?: { type?: string; status?: string; reason?: string; message?: string }[];
        };
      }
    | undefined,
): string | undefined {
  if (node === undefined) return "not in the cluster";
  const ready = node.status?.conditions?.find((c) => c.type === "Ready");
  if (ready?.status === "True") return undefined;
  const said = [ready?.reason, ready?.message].filter((x) => x !== undefined && x !== "");
  return `not Ready (${said.length === 0 ? "no Ready condition yet" : said.join(": ")})`;
}
