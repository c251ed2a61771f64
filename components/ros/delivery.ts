// The delivery check's decision: which (talker node → listener node) pairs must hear each
// other, what the check Jobs reported, pass or fail, and the message that says which pairs
// failed and why that may be. Pure, so it is tested on its own.
import { DiscoveryMode } from "../config";

/** Each check Job prints one line starting with this. */
export const REPORT_PREFIX = "ROSFLEET_DELIVERY";

export interface DeliveryPair {
  /** Node whose beacon talker published on /chatter. */
  readonly talker: string;
  /** Node whose check Job listened. */
  readonly listener: string;
}

export interface DeliveryResult extends DeliveryPair {
  readonly received: boolean;
}

export interface DeliveryVerdict {
  readonly results: DeliveryResult[];
  readonly ok: boolean;
  readonly message: string;
}

/**
 * Every ordered pair of different nodes: a pass then means /chatter crossed nodes. A one-node
 * lab has nothing to cross to, so its node is checked against itself.
 */
export function deliveryPairs(nodes: readonly string[]): DeliveryPair[] {
  if (nodes.length === 1) return [{ talker: nodes[0], listener: nodes[0] }];
  return nodes.flatMap((listener) =>
    nodes.filter((talker) => talker !== listener).map((talker) => ({ talker, listener })),
  );
}

/** Which talkers each listener expects: its pairs' talkers. */
export function expectedTalkers(pairs: readonly DeliveryPair[], listener: string): string[] {
  return pairs.filter((p) => p.listener === listener).map((p) => p.talker);
}

/** Listener → talkers heard, from the Jobs' report lines (`… listener=<n> heard=<a,b>`). */
export function parseReports(text: string): Map<string, Set<string>> {
  const heard = new Map<string, Set<string>>();
  for (const line of text.split("\n")) {
    const m = new RegExp(`^${REPORT_PREFIX} listener=(\\S+) heard=(\\S*)$`).exec(line.trim());
    if (m !== null) heard.set(m[1], new Set(m[2].split(",").filter(Boolean)));
  }
  return heard;
}

const HINTS: Record<DiscoveryMode, string> = {
  "discovery-server":
    "check the discovery server (kubectl -n rosfleet logs deploy/ros-discovery) and that flannel's 8472/udp is open between the nodes",
  "host-network":
    "host-network relies on LAN multicast: the machines must share a subnet, and firewalls must pass UDP 7400-7700",
  multus:
    "macvlan needs a wired parent NIC of the same name on every machine, and multicast on that LAN",
  multicast:
    "multicast is the negative control: flannel does not carry multicast between nodes; use discovery-server",
};

/** Pass or fail, per pair and as a whole, with the message `pulumi up` shows. */
export function evaluateDelivery(
  nodes: readonly string[],
  reports: ReadonlyMap<string, ReadonlySet<string>>,
  mode: DiscoveryMode,
): DeliveryVerdict {
  const pairs = deliveryPairs(nodes);
  const results = pairs.map((p) => ({
    ...p,
    received: reports.get(p.listener)?.has(p.talker) ?? false,
  }));
  const failed = results.filter((r) => !r.received);
  const ok = failed.length === 0;
  const within = nodes.length === 1;
  if (ok)
    return {
      results,
      ok,
      message: within
        ? `one-node lab: /chatter checked within ${nodes[0]} only (no other node to cross to), ros.discovery = ${mode}`
        : `/chatter crossed nodes in all ${results.length} directions with ros.discovery = ${mode}`,
    };
  const silent = [...new Set(failed.map((f) => f.listener))].filter((l) => !reports.has(l));
  const lines = failed.map((f) => `no /chatter from ${f.talker} reached ${f.listener}`);
  return {
    results,
    ok,
    message: [
      `ROS 2 delivery check failed with ros.discovery = ${mode}: ${failed.length} of ${results.length} node pairs did not hear each other:`,
      ...lines.map((l) => `  - ${l}`),
      ...silent.map(
        (l) =>
          `  (the check on ${l} reported nothing: kubectl -n rosfleet logs job/delivery-check-${l})`,
      ),
      `Hint: ${HINTS[mode]}.`,
    ].join("\n"),
  };
}
