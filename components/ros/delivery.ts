// The delivery check's decision: which (talker node → listener node) pairs must hear each
// other, what the check pods reported, pass or fail, the message that says which pairs failed
// and why that may be, and when the check must run again. Pure, so it is tested on its own.
import { createHash } from "node:crypto";
import { DiscoveryMode } from "../config";

/** Each check Job prints one line starting with this, and writes it to the reports ConfigMap. */
export const REPORT_PREFIX = "ROSFLEET_DELIVERY";

/** One check Job's report: whom `listener` heard, in which run, from which Job. */
export interface Report {
  readonly listener: string;
  readonly heard: ReadonlySet<string>;
  /** The run key the Job ran with (`checkRun`). */
  readonly run: string;
  /** The uid of the Job that wrote it: reports of earlier Jobs are not this check's. */
  readonly job: string;
}

const REPORT_LINE = new RegExp(
  `^${REPORT_PREFIX} listener=(\\S+) heard=(\\S*) run=(\\S*) job=(\\S*)$`,
);

/** A report line as check.sh writes it; undefined for anything else. */
export function parseReport(line: string): Report | undefined {
  const m = REPORT_LINE.exec(line.trim());
  if (m === null) return undefined;
  return { listener: m[1], heard: new Set(m[2].split(",").filter(Boolean)), run: m[3], job: m[4] };
}

/** The reports ConfigMap's data (node name → report line) as reports by listener. */
export function reportsOf(data: Readonly<Record<string, string>> | undefined): Map<string, Report> {
  const reports = new Map<string, Report>();
  for (const line of Object.values(data ?? {})) {
    const report = parseReport(line);
    if (report !== undefined) reports.set(report.listener, report);
  }
  return reports;
}

/** Listener → talkers heard, from the reports `accept` keeps. */
export function heardBy(
  reports: ReadonlyMap<string, Report>,
  accept: (r: Report) => boolean = () => true,
): Map<string, ReadonlySet<string>> {
  return new Map([...reports.values()].filter(accept).map((r) => [r.listener, r.heard]));
}

/** Kubernetes object names that become label values (a Job's name does) end at 63 characters. */
export const MAX_NAME = 63;

/** `<prefix><node>`, or, where that is too long, the node name cut short and a stable hash of
 * it, so that every node keeps its own object across runs. */
export function perNodeName(prefix: string, node: string): string {
  const name = `${prefix}${node}`;
  if (name.length <= MAX_NAME) return name;
  const hash = createHash("sha256").update(node).digest("hex").slice(0, 8);
  const room = MAX_NAME - prefix.length - hash.length - 1;
  return `${prefix}${node.slice(0, room).replace(/[-.]+$/, "")}-${hash}`;
}

/** A short stable hash of what the check Job runs (image, nodes, mode, ...). */
export function specHash(spec: unknown): string {
  return createHash("sha256").update(JSON.stringify(spec)).digest("hex").slice(0, 10);
}

/**
 * The run key the check Job gets (a change replaces it, so the check runs again). The last
 * run is kept when its reports, all of this spec, passed: a passing lab's next `up` changes
 * nothing. Anything else — a failed pair, a node that reported nothing, reports of another
 * spec or run — gives a new key: the next `up` after a failure checks again.
 */
export function checkRun(
  spec: string,
  previous: ReadonlyMap<string, Report>,
  nodes: readonly string[],
  mode: DiscoveryMode,
  now: number,
): string {
  const runs = new Set(nodes.map((n) => previous.get(n)?.run));
  const [last] = runs;
  const passed =
    runs.size === 1 &&
    last !== undefined &&
    last.startsWith(`${spec}-`) &&
    evaluateDelivery(nodes, heardBy(previous), mode).ok;
  return passed ? last : `${spec}-${now.toString(36)}`;
}

export interface DeliveryPair {
  /** Node whose beacon talker published. */
  readonly talker: string;
  /** Node whose check pod listened. */
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
 * Every ordered pair of different nodes: a pass then means ROS 2 messages crossed nodes. A one-node
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

const HINTS: Record<DiscoveryMode, string> = {
  "discovery-server":
    "check the discovery servers (kubectl -n rosfleet logs deploy/ros-discovery, deploy/ros-discovery-1) and that flannel's 8472/udp is open between the nodes",
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
        ? `one-node lab: ROS 2 messages checked within ${nodes[0]} only (no other node to cross to), ros.discovery = ${mode}`
        : `ROS 2 messages crossed nodes in all ${results.length} directions with ros.discovery = ${mode}`,
    };
  const silent = [...new Set(failed.map((f) => f.listener))].filter((l) => !reports.has(l));
  const lines = failed.map((f) => `no ROS 2 message from ${f.talker} reached ${f.listener}`);
  return {
    results,
    ok,
    message: [
      `ROS 2 delivery check failed with ros.discovery = ${mode}: ${failed.length} of ${results.length} node pairs did not hear each other:`,
      ...lines.map((l) => `  - ${l}`),
      ...silent.map(
        (l) =>
          `  (the check on ${l} reported nothing: kubectl -n rosfleet logs $(kubectl -n rosfleet get pods -l app.kubernetes.io/name=delivery-check --field-selector spec.nodeName=${l} -o name))`,
      ),
      `Hint: ${HINTS[mode]}.`,
      "The next pulumi up runs the check again (a new check Job); nothing else needs to change.",
    ].join("\n"),
  };
}
