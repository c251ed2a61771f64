// The delivery check's verdict: every ordered pair of checked nodes (a node with itself
// included: a talker pod and a listener pod on one machine), its figures from its listener's
// report, judged against the limits; the message `pulumi up` fails with, saying what usually
// causes each kind of failure; and the table a person reads in the `delivery` output. Pure.
import type { DiscoveryMode } from "../config";
import type { PairFigures, Report } from "./delivery";

/** Large messages each listener asks every talker for (probe.py LARGE_COUNT). */
export const LARGE_COUNT = 3;

/** `deliveryCheck`'s limits; 0 turns one off. */
export interface DeliveryLimits {
  /** Heartbeats lost on a pair, in percent. */
  readonly maxLossPercent: number;
  /** A pair's round-trip p99, in milliseconds. */
  readonly maxLatencyMs: number;
  /** The large message's size; 0: no large message is sent. */
  readonly largeMessageBytes: number;
}

export interface DeliveryPair {
  /** Node whose beacon talked (published, echoed). */
  readonly talker: string;
  /** Node whose check pod listened (and measured). */
  readonly listener: string;
}

/** One row of the `delivery` output: a pair, its figures, and what failed (nothing: passed). */
export interface DeliveryRow extends DeliveryPair {
  readonly received: boolean;
  readonly lossPercent?: number;
  readonly rttP50Ms?: number;
  readonly rttP99Ms?: number;
  readonly ratePerSecond?: number;
  /** `<arrived>/<asked>` large messages; absent when none are sent. */
  readonly largeMessages?: string;
  readonly largeMiBps?: number;
  readonly problems: string[];
}

export interface DeliveryVerdict {
  readonly rows: DeliveryRow[];
  readonly ok: boolean;
  readonly message: string;
}

/** Every ordered pair of nodes, a node with itself included. */
export function deliveryPairs(nodes: readonly string[]): DeliveryPair[] {
  return nodes.flatMap((listener) => nodes.map((talker) => ({ talker, listener })));
}

/** 1048576 → "1 MiB", 65536 → "64 KiB", 1000 → "1000 B". */
export function sizeText(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes / (1 << 10)} KiB`;
  return `${bytes} B`;
}

const round1 = (v: number) => Math.round(v * 10) / 10;

/** Percent of the talker's heartbeats, over the numbers the window spans, that did not arrive. */
export const lossPercent = (f: PairFigures): number | undefined =>
  f.span > 0 ? round1(100 * (1 - f.got / f.span)) : undefined;

type Kind = "silent" | "loss" | "latency" | "large";

const MODE_HINTS: Record<DiscoveryMode, string> = {
  "discovery-server":
    "check the discovery servers (kubectl -n rosfleet logs deploy/ros-discovery, deploy/ros-discovery-1) and that flannel's 8472/udp is open between the nodes",
  "host-network":
    "host-network relies on LAN multicast: the machines must share a subnet, and firewalls must pass UDP 7400-7700",
  multus:
    "macvlan needs a wired parent NIC of the same name on every machine, and multicast on that LAN",
  multicast:
    "multicast is the negative control: flannel does not carry multicast between nodes; use discovery-server",
};

const KIND_HINTS: Record<Exclude<Kind, "silent">, string> = {
  loss: "messages lost on a pair almost always mean a machine on Wi-Fi (or a bad cable, a congested switch) between them: put it on a cable, or raise deliveryCheck.maxLossPercent if the application tolerates that loss",
  latency:
    "long round trips come from Wi-Fi (power saving: `iw dev wlan0 set power_save off`), a saturated link, or an overloaded machine; raise deliveryCheck.maxLatencyMs if the application tolerates them",
  large:
    "a large message travels as ~64 KB UDP datagrams, each split into IP fragments, and one lost fragment loses its datagram until a resend gets through: a lossy link (Wi-Fi), a smaller MTU on the path (a VPN or tunnel: compare `ip link` on both machines) or a slow link keep it from arriving; put the machine on a cable, or set deliveryCheck.largeMessageBytes to the largest message the lab sends (0 skips the probe)",
};

interface Problem {
  readonly kind: Kind;
  readonly text: string;
}

/** What fails a pair, against the limits. */
export function pairProblems(
  pair: DeliveryPair,
  f: PairFigures | undefined,
  limits: DeliveryLimits,
): Problem[] {
  const name = `${pair.talker} -> ${pair.listener}`;
  if (f === undefined || !f.heard)
    return [
      { kind: "silent", text: `no ROS 2 message from ${pair.talker} reached ${pair.listener}` },
    ];
  const problems: Problem[] = [];
  const loss = lossPercent(f);
  if (limits.maxLossPercent > 0 && (loss ?? 100) > limits.maxLossPercent)
    problems.push({
      kind: "loss",
      text:
        loss === undefined
          ? `${name}: no heartbeat counted, so no loss figure (limit ${limits.maxLossPercent} %)`
          : `${name}: ${loss} % of messages lost (limit ${limits.maxLossPercent} %)`,
    });
  if (limits.maxLatencyMs > 0 && (f.rttP99Ms ?? Infinity) > limits.maxLatencyMs)
    problems.push({
      kind: "latency",
      text:
        f.rttP99Ms === undefined
          ? `${name}: no round trip came back (limit ${limits.maxLatencyMs} ms)`
          : `${name}: round trip p99 ${f.rttP99Ms} ms (limit ${limits.maxLatencyMs} ms)`,
    });
  if (limits.largeMessageBytes > 0 && f.largeGot < LARGE_COUNT)
    problems.push({
      kind: "large",
      text: `${name}: ${f.largeGot} of ${LARGE_COUNT} messages of ${sizeText(limits.largeMessageBytes)} arrived within the check`,
    });
  return problems;
}

function rowOf(
  pair: DeliveryPair,
  f: PairFigures | undefined,
  limits: DeliveryLimits,
  problems: readonly Problem[],
): DeliveryRow {
  const heard = f?.heard ?? false;
  const loss = f === undefined ? undefined : lossPercent(f);
  return {
    ...pair,
    received: heard,
    ...(heard && loss !== undefined ? { lossPercent: loss } : {}),
    ...(heard && f?.rttP50Ms !== undefined ? { rttP50Ms: f.rttP50Ms } : {}),
    ...(heard && f?.rttP99Ms !== undefined ? { rttP99Ms: f.rttP99Ms } : {}),
    ...(heard ? { ratePerSecond: f?.ratePerSecond ?? 0 } : {}),
    ...(limits.largeMessageBytes > 0
      ? { largeMessages: `${f?.largeGot ?? 0}/${LARGE_COUNT}` }
      : {}),
    ...(f?.largeMiBps !== undefined && limits.largeMessageBytes > 0
      ? { largeMiBps: f.largeMiBps }
      : {}),
    problems: problems.map((p) => p.text),
  };
}

const cell = (v: number | undefined, unit: string) => (v === undefined ? "-" : `${v}${unit}`);

/** The rows as aligned text lines, a header first: what a person reads. */
export function deliveryTable(rows: readonly DeliveryRow[], limits: DeliveryLimits): string[] {
  const large =
    limits.largeMessageBytes > 0 ? [`${sizeText(limits.largeMessageBytes)} x${LARGE_COUNT}`] : [];
  const header = [
    "talker -> listener",
    "received",
    "loss",
    "rtt p50",
    "rtt p99",
    "rate",
    ...large,
    "verdict",
  ];
  const lines = rows.map((r) => [
    `${r.talker} -> ${r.listener}`,
    r.received ? "yes" : "no",
    cell(r.lossPercent, " %"),
    cell(r.rttP50Ms, " ms"),
    cell(r.rttP99Ms, " ms"),
    cell(r.ratePerSecond, "/s"),
    ...(large.length === 0
      ? []
      : [`${r.largeMessages ?? "-"}${r.largeMiBps === undefined ? "" : ` ${r.largeMiBps} MiB/s`}`]),
    r.problems.length === 0 ? "ok" : "FAILED",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  return [header, ...lines].map((l) =>
    l
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd(),
  );
}

/** What became of the check's listeners (check-wait.ts), for a failure's message. */
export interface CheckEnd {
  /** Node → why its listener did not finish. */
  readonly notes: ReadonlyMap<string, string>;
  /** "complete", "failed (…)", "stalled", … */
  readonly outcome: string;
}

const logCommand = (node: string) =>
  `kubectl -n rosfleet logs $(kubectl -n rosfleet get pods -l app.kubernetes.io/name=delivery-check --field-selector spec.nodeName=${node} -o name)`;

/** Pass or fail, per pair and as a whole, with the message `pulumi up` shows. */
export function evaluateDelivery(
  nodes: readonly string[],
  reports: ReadonlyMap<string, Report>,
  mode: DiscoveryMode,
  limits: DeliveryLimits,
  end: CheckEnd = { notes: new Map(), outcome: "complete" },
): DeliveryVerdict {
  const judged = deliveryPairs(nodes).map((pair) => {
    const f = reports.get(pair.listener)?.pairs.get(pair.talker);
    const problems = pairProblems(pair, f, limits);
    return { problems, row: rowOf(pair, f, limits, problems) };
  });
  const rows = judged.map((j) => j.row);
  const failed = judged.filter((j) => j.problems.length > 0);
  const ok = failed.length === 0;
  const table = deliveryTable(rows, limits).map((l) => `  ${l}`);
  if (ok) {
    const summary =
      nodes.length === 1
        ? `one-node lab: ROS 2 messages checked within ${nodes[0]} only (no other node to cross to), ros.discovery = ${mode}`
        : `ROS 2 messages delivered in all ${rows.length} pairs (${rows.length - nodes.length} across nodes, ${nodes.length} within one) with ros.discovery = ${mode}`;
    return { rows, ok, message: [summary, ...table].join("\n") };
  }
  const kinds = new Set(failed.flatMap((j) => j.problems.map((p) => p.kind)));
  const silent = [...new Set(failed.map((j) => j.row.listener))].filter((l) => !reports.has(l));
  return {
    rows,
    ok,
    message: [
      `ROS 2 delivery check failed with ros.discovery = ${mode}: ${failed.length} of ${rows.length} node pairs failed:`,
      ...failed.flatMap((j) => j.problems.map((p) => `  - ${p.text}`)),
      ...silent.map((l) => {
        const note = end.notes.get(l);
        return note?.startsWith("no check pod") === true
          ? `  (the check on ${l} reported nothing: ${note})`
          : `  (the check on ${l} reported nothing${note === undefined ? "" : `: ${note}`}; its log: ${logCommand(l)})`;
      }),
      ...(end.outcome === "complete" ? [] : [`The check's Job ${end.outcome}.`]),
      ...(kinds.has("silent") ? [`Hint: ${MODE_HINTS[mode]}.`] : []),
      ...(["loss", "latency", "large"] as const)
        .filter((k) => kinds.has(k))
        .map((k) => `Hint (${k === "large" ? "large message" : k}): ${KIND_HINTS[k]}.`),
      "The next pulumi up runs the check again (a new check Job); nothing else needs to change.",
      ...table,
    ].join("\n"),
  };
}

/** What the figures were measured with: each value the reports name (a mixed lab lists all). */
export function measuredWith(reports: ReadonlyMap<string, Report>): {
  readonly distro: string;
  readonly rmw: string;
} {
  const all = (get: (r: Report) => string) =>
    [...new Set([...reports.values()].map(get).filter(Boolean))].sort().join(", ") || "unknown";
  return { distro: all((r) => r.distro), rmw: all((r) => r.rmw) };
}
