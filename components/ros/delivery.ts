// The delivery check's reports and run keys: what each listener pod of the check wrote (its
// figures for every talker node), which reports belong to this run, and when the check must run
// again. The judging of the figures is verdict.ts. Pure, so both are tested on their own.
import { createHash } from "node:crypto";
import { z } from "zod";
import { DiscoveryMode } from "../config";
import { DeliveryLimits, evaluateDelivery } from "./verdict";

/** Each check pod prints one line starting with this, and writes it to the reports ConfigMap. */
export const REPORT_PREFIX = "ROSFLEET_DELIVERY";

/** What one listener measured of one talker (components/ros/probe.py `figures`). */
export interface PairFigures {
  /** Any message of the talker arrived. */
  readonly heard: boolean;
  /** Heartbeats heard in the window, and how many the talker sent over the same numbers. */
  readonly got: number;
  readonly span: number;
  /** Heartbeats per second heard. */
  readonly ratePerSecond: number;
  /** Round trips (the listener's ping, the talker's echo), in ms; undefined: none came back. */
  readonly rttP50Ms?: number;
  readonly rttP99Ms?: number;
  /** Large messages that arrived (of LARGE_COUNT asked for), and at what rate. */
  readonly largeGot: number;
  readonly largeMiBps?: number;
}

/** One check pod's report: its figures for every talker, in which run, from which Job. */
export interface Report {
  readonly listener: string;
  /** The run key the Job ran with (`checkRun`). */
  readonly run: string;
  /** The uid of the Job that wrote it: reports of earlier Jobs are not this check's. */
  readonly job: string;
  /** The RMW and distro the pod really ran (rclpy's identifier, ROS_DISTRO). */
  readonly rmw: string;
  readonly distro: string;
  /** The large message's size (0: none sent). */
  readonly largeBytes: number;
  readonly pairs: ReadonlyMap<string, PairFigures>;
}

const num = z.number().finite().nonnegative();
const figuresSchema = z.tuple([
  z.union([z.literal(0), z.literal(1)]),
  num,
  num,
  num,
  num.nullable(),
  num.nullable(),
  num,
  num.nullable(),
]);
const reportSchema = z.object({
  listener: z.string().min(1),
  run: z.string(),
  job: z.string(),
  rmw: z.string(),
  distro: z.string(),
  large: num,
  pairs: z.record(z.string(), figuresSchema),
});

const figuresOf = ([heard, got, span, rate, p50, p99, largeGot, largeRate]: z.output<
  typeof figuresSchema
>): PairFigures => ({
  heard: heard === 1,
  got,
  span,
  ratePerSecond: rate,
  ...(p50 === null ? {} : { rttP50Ms: p50 }),
  ...(p99 === null ? {} : { rttP99Ms: p99 }),
  largeGot,
  ...(largeRate === null ? {} : { largeMiBps: largeRate }),
});

/** A report line as probe.py prints it; undefined for anything else (also an older format). */
export function parseReport(line: string): Report | undefined {
  const text = line.trim();
  if (!text.startsWith(`${REPORT_PREFIX} {`)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text.slice(REPORT_PREFIX.length + 1));
  } catch {
    return undefined;
  }
  const parsed = reportSchema.safeParse(json);
  if (!parsed.success) return undefined;
  const r = parsed.data;
  return {
    listener: r.listener,
    run: r.run,
    job: r.job,
    rmw: r.rmw,
    distro: r.distro,
    largeBytes: r.large,
    pairs: new Map(Object.entries(r.pairs).map(([talker, f]) => [talker, figuresOf(f)])),
  };
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

/** The reports `accept` keeps, by listener. */
export function acceptedReports(
  reports: ReadonlyMap<string, Report>,
  accept: (r: Report) => boolean = () => true,
): Map<string, Report> {
  return new Map([...reports].filter(([, r]) => accept(r)));
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
  limits: DeliveryLimits,
  now: number,
): string {
  const runs = new Set(nodes.map((n) => previous.get(n)?.run));
  const [last] = runs;
  const passed =
    runs.size === 1 &&
    last !== undefined &&
    last.startsWith(`${spec}-`) &&
    evaluateDelivery(nodes, previous, mode, limits).ok;
  return passed ? last : `${spec}-${now.toString(36)}`;
}
