// `npm run bench:engine`: what users wait for, under the real Pulumi CLI and kubernetes provider
// (the engine tier's toolchain) against a real kube-apiserver whose nodes kwok simulates, on the
// existing-cluster mode, for labs of 3, 30 and 100 nodes (`machines` naming them, the delivery
// check and the dashboard on, as by default). Per size, from an empty stack: the wall time of the
// first `preview`, the first `up`, a no-op `preview` and a no-op `up`; the resources in the
// state; and rosfleet's own share — the CPU time of this process, which runs the program (index.ts
// and the Pulumi SDK; the CLI and providers are processes of their own), and how long the program
// took from its start to its last resource registration. Prints one table and the targets'
// ratios; exits non-zero when a target is missed. Not a test, not in CI (docs/development.md: Scale).
//
// Under kwok no container runs, so no check pod writes its report: a stand-in here writes, for
// each check pod as it lands on its node, the report check.sh would write there when every other
// node was heard (the same line, into the same ConfigMap), so that `up` passes as on a working lab.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import * as pulumi from "@pulumi/pulumi";
import { Stack } from "@pulumi/pulumi/automation";
import { parseAllDocuments } from "yaml";
import { CHECK_JOB, REPORTS_CONFIGMAP } from "../components/ros/check-spec";
import { REPORT_PREFIX } from "../components/ros/delivery";
import { ControlPlane, KubeApi, startControlPlane } from "../test/engine/controlplane";
import { automationStack, program, rosfleetConfig } from "../test/helpers/automation";

const BIN = process.env.ROSFLEET_TOOLCHAIN_BIN ?? "";
/** The lab sizes; `ROSFLEET_BENCH_SIZES=3,10` for a quick look. */
const SIZES = (process.env.ROSFLEET_BENCH_SIZES ?? "3,30,100").split(",").map(Number);
/** Pinned by digest: the image stage declares nothing (no build, no docker-build plugin). */
const IMAGE = `registry.invalid/rosfleet/ros_demo@sha256:${"b".repeat(64)}`;
const NAMESPACE = "rosfleet";
/** Targets of issue 20, as ratios measured in one run. */
const PREVIEW_100_VS_3 = 3;
const NOOP_UP_VS_PREVIEW = 1.5;

/** Node `i` of the lab: every third one an arm64 Pi, the rest amd64 VMs. */
const machineOf = (i: number) =>
  i % 3 === 2
    ? { name: `bench-${String(i).padStart(3, "0")}`, kind: "pi", arch: "arm64" }
    : { name: `bench-${String(i).padStart(3, "0")}`, kind: "vm", arch: "amd64" };

/** Monitors already timing registrations (one per operation, but never wrapped twice). */
const wrapped = new WeakSet<object>();

/** What the program did in one operation. */
interface ProgramStats {
  /** ms from the program's start to its last resource registration. */
  lastRegistration: number;
}

interface Pod {
  metadata: { uid: string; labels?: Record<string, string> };
  spec: { nodeName?: string; containers: { env?: { name: string; value?: string }[] }[] };
}

/** Writes each check pod's report, once it is on a node, as check.sh would on a lab where every
 * node hears all the others. */
class ReportStandIn {
  private readonly seen = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly api: KubeApi,
    private readonly nodes: readonly string[],
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), 100);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const pods = await this.api.get<{ items: Pod[] }>(
        `/api/v1/namespaces/${NAMESPACE}/pods?labelSelector=app.kubernetes.io/name%3D${CHECK_JOB}`,
      );
      // Every pod that landed since the last tick, in one patch.
      const data: Record<string, string> = {};
      const landed: string[] = [];
      for (const pod of pods?.items ?? []) {
        const node = pod.spec.nodeName;
        if (node === undefined || this.seen.has(pod.metadata.uid)) continue;
        const env = pod.spec.containers[0]?.env ?? [];
        const run = env.find((e) => e.name === "ROSFLEET_CHECK_RUN")?.value ?? "";
        const job = pod.metadata.labels?.["batch.kubernetes.io/controller-uid"] ?? "";
        const heard = this.nodes.length === 1 ? [node] : this.nodes.filter((n) => n !== node);
        data[node] =
          `${REPORT_PREFIX} listener=${node} heard=${heard.join(",")} run=${run} job=${job}`;
        landed.push(pod.metadata.uid);
      }
      if (landed.length === 0) return;
      const r = await this.api.request(
        "PATCH",
        `/api/v1/namespaces/${NAMESPACE}/configmaps/${REPORTS_CONFIGMAP}`,
        { data },
      );
      if (r.status === 200) for (const uid of landed) this.seen.add(uid);
    } catch {
      // The namespace may not exist yet: the next tick tries again.
    } finally {
      this.busy = false;
    }
  }
}

interface Row {
  nodes: number;
  resources: number;
  seconds: Record<Op, number>;
  cpu: Record<Op, number>;
  lastRegistration: Record<Op, number>;
}
type Op = "preview" | "up" | "noop preview" | "noop up";
const OPS: readonly Op[] = ["preview", "up", "noop preview", "noop up"];

async function measure(cp: ControlPlane, size: number, warmUp = false): Promise<Row> {
  const machines = Array.from({ length: size }, (_, i) => machineOf(i));
  const stats: ProgramStats = { lastRegistration: 0 };
  // The program, instrumented: when it starts and when it last registers a resource.
  let started = 0;
  const instrumented = async () => {
    started = performance.now();
    const monitor = pulumi.runtime.getMonitor() as unknown as {
      registerResource: (req: unknown, cb: unknown) => unknown;
    };
    if (wrapped.has(monitor)) return program();
    wrapped.add(monitor);
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, cb) => {
      stats.lastRegistration = performance.now() - started;
      return register(req, cb);
    };
    return program();
  };
  const { stack, cleanup } = await automationStack(
    BIN,
    `bench-${size}${warmUp ? "-warm-up" : ""}`,
    [BIN],
    {},
    instrumented,
  );
  const reports = new ReportStandIn(
    cp.api,
    machines.map((m) => m.name),
  );
  reports.start();
  const seconds = {} as Record<Op, number>;
  const cpu = {} as Record<Op, number>;
  const lastRegistration = {} as Record<Op, number>;
  try {
    await stack.setAllConfig(
      rosfleetConfig({
        cluster: { kubeconfig: cp.kubeconfig },
        machines,
        image: { build: false, repository: IMAGE },
      }),
    );
    const timed = async (op: Op, run: (s: Stack) => Promise<unknown>) => {
      stats.lastRegistration = 0;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await run(stack);
      seconds[op] = (performance.now() - t0) / 1000;
      const used = process.cpuUsage(cpu0);
      cpu[op] = (used.user + used.system) / 1e6;
      lastRegistration[op] = stats.lastRegistration / 1000;
    };
    await timed("preview", (s) => s.preview());
    if (warmUp) return { nodes: size, resources: 0, seconds, cpu, lastRegistration };
    await timed("up", (s) => s.up());
    await timed("noop preview", async (s) => {
      const r = await s.preview();
      const changed = Object.entries(r.changeSummary).filter(
        ([op, n]) => op !== "same" && op !== "read" && n > 0,
      );
      if (changed.length > 0) throw new Error(`no-op preview changes: ${JSON.stringify(changed)}`);
    });
    await timed("noop up", async (s) => {
      const r = await s.up();
      const changed = Object.entries(r.summary.resourceChanges ?? {}).filter(
        ([op, n]) => op !== "same" && op !== "read" && (n ?? 0) > 0,
      );
      if (changed.length > 0) throw new Error(`no-op up changes: ${JSON.stringify(changed)}`);
    });
    const state = await stack.exportStack();
    const resources = (state.deployment as { resources?: unknown[] }).resources?.length ?? 0;
    await stack.destroy();
    return { nodes: size, resources, seconds, cpu, lastRegistration };
  } finally {
    reports.stop();
    cleanup();
  }
}

/**
 * The toolchain's kwok stages, with a Job's pod completing 5 s after it runs rather than at once:
 * the time a real check pod listens, in which the stand-in writes its report.
 */
function stagesWithListeningPods(): string {
  const docs = parseAllDocuments(fs.readFileSync(path.join(BIN, "kwok-stages.yaml"), "utf8"));
  for (const doc of docs)
    if (doc.getIn(["metadata", "name"]) === "pod-complete")
      doc.setIn(["spec", "delay"], { durationMilliseconds: 5000 });
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-bench-")), "stages.yaml");
  fs.writeFileSync(file, docs.map((d) => d.toString()).join("---\n"));
  return file;
}

async function main(): Promise<void> {
  if (BIN === "") throw new Error("run it as npm run bench:engine (it builds the toolchain)");
  const cp = await startControlPlane(BIN, { kwokStages: stagesWithListeningPods() });
  const rows: Row[] = [];
  try {
    for (let i = 0; i < Math.max(...SIZES); i++) {
      const m = machineOf(i);
      await cp.addNode(m.name, { "kubernetes.io/arch": m.arch });
    }
    // Loads the SDK, the providers' SDKs and rosfleet's modules once, as every later run finds
    // them: each size then measures the same thing (a CLI run pays its program start on top:
    // npm run bench:start).
    await measure(cp, Math.min(...SIZES), true);
    for (const size of SIZES) {
      rows.push(await measure(cp, size));
      console.error(`measured ${size} nodes`);
    }
  } catch (err) {
    console.error(cp.logs());
    throw err;
  } finally {
    await cp.stop();
  }
  const cpus = os.cpus();
  console.log(
    `engine bench, ${new Date().toISOString().slice(0, 10)}, ${cpus.length} × ${cpus[0]?.model.trim() ?? "?"}, node ${process.version}; seconds (rosfleet process CPU s / program start to last registration s)`,
  );
  console.log(
    "| nodes | resources | first preview | first up | no-op preview | no-op up |\n| ----: | --------: | ------------: | -------: | ------------: | -------: |",
  );
  const cell = (r: Row, op: Op) =>
    `${r.seconds[op].toFixed(1)} (${r.cpu[op].toFixed(1)} / ${r.lastRegistration[op].toFixed(1)})`;
  for (const r of rows)
    console.log(`| ${r.nodes} | ${r.resources} | ${OPS.map((op) => cell(r, op)).join(" | ")} |`);
  const small = rows[0];
  const large = rows[rows.length - 1];
  const previewRatio = large.seconds.preview / small.seconds.preview;
  console.log(
    `\n${large.nodes}-node first preview / ${small.nodes}-node: ${previewRatio.toFixed(2)} (target ≤ ${PREVIEW_100_VS_3})`,
  );
  let missed = previewRatio > PREVIEW_100_VS_3;
  for (const r of rows) {
    const ratio = r.seconds["noop up"] / r.seconds["noop preview"];
    console.log(
      `${r.nodes} nodes: no-op up / no-op preview: ${ratio.toFixed(2)} (target ≤ ${NOOP_UP_VS_PREVIEW})`,
    );
    if (ratio > NOOP_UP_VS_PREVIEW) missed = true;
  }
  if (missed) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
