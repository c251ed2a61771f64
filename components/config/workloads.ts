// The ROS 2 workloads of a lab: the ones `ros.workloads` lists, or by default the lab notes'
// three pods plus the Canonical guide's talker and listener Deployments.
import type { Arch, ContainerRole, DemoLang, WorkloadKind } from "./schema";

/** One ROS 2 workload, defaults applied. */
export interface Workload {
  readonly name: string;
  readonly kind: WorkloadKind;
  /** Deployments: how many pods; pods: 1. */
  readonly replicas: number;
  readonly arch: Arch | undefined;
  readonly node: string | undefined;
  readonly lang: DemoLang;
  /** One container per entry, each running one ROS node (or the network toolbox). */
  readonly containers: readonly ContainerRole[];
}

const workload = (w: Partial<Workload> & Pick<Workload, "name" | "containers">): Workload => ({
  kind: "deployment",
  replicas: 1,
  arch: undefined,
  node: undefined,
  lang: "cpp",
  ...w,
});

/**
 * The lab notes' pods — `demo-listener` (listener + toolbox, any node), `demo-talkerlistener`
 * (listener + talker + toolbox, on arm64 when the lab has an arm64 machine), `demo-talker`
 * (any node) — and the Canonical guide's `ros-talker` / `ros-listener` Deployments.
 */
export function defaultWorkloads(arches: readonly Arch[]): Workload[] {
  return [
    workload({ name: "demo-listener", kind: "deployment", containers: ["listener", "toolbox"] }),
    workload({
      name: "demo-talkerlistener",
      kind: "deployment",
      containers: ["listener", "talker", "toolbox"],
      arch: arches.includes("arm64") ? "arm64" : undefined,
    }),
    workload({ name: "demo-talker", kind: "deployment", containers: ["talker"] }),
    workload({ name: "ros-talker", kind: "deployment", containers: ["talker"] }),
    workload({ name: "ros-listener", kind: "deployment", containers: ["listener"] }),
  ];
}

/** Defaults for one `ros.workloads` entry. */
export function workloadWithDefaults(w: {
  name: string;
  kind: WorkloadKind;
  replicas?: number;
  arch?: Arch;
  node?: string;
  lang: DemoLang;
  containers: ContainerRole[];
}): Workload {
  return workload({ ...w, replicas: w.replicas ?? 1 });
}
