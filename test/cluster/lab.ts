// The cluster tier's lab, shared by its test and its bench: the toolchain's control plane on
// the hub address, three real nodes, the ROS 2 test image in each node's containerd, and
// rosfleet's program on the real Pulumi engine in existing-cluster mode.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigMap } from "@pulumi/pulumi/automation";
import { ControlPlane, startControlPlane } from "../engine/controlplane";
import { AutomationStack, automationStack, rosfleetConfig } from "../helpers/automation";
import { HOST_IP, Nodes, missingPrerequisite } from "./nodes";

export const NODES = ["cluster-laptop", "cluster-robot", "cluster-vm"] as const;
export const MACHINES = NODES.map((name) => ({
  name,
  arch: "amd64",
  kind: name === "cluster-laptop" ? "laptop" : "vm",
}));
/** A talker on the robot, listeners on the other two: every message a listener logs crossed
 * nodes. */
export const WORKLOADS = [
  { name: "ros-talker", kind: "deployment", node: "cluster-robot", containers: ["talker"] },
  {
    name: "ros-listener",
    kind: "deployment",
    node: "cluster-vm",
    lang: "py",
    containers: ["listener"],
  },
  {
    name: "demo-listener",
    kind: "pod",
    node: "cluster-laptop",
    containers: ["listener", "toolbox"],
  },
];
export type Mode = "discovery-server" | "multicast" | "host-network";

interface Image {
  readonly archive: string;
  readonly name: string;
  readonly digest: string;
}

/** The test images (test/cluster/images.sh builds them once, then reuses them). */
export function testImages(): { ros: Image; pause: Image } {
  const out = execFileSync("bash", [path.join(__dirname, "images.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [ros, pause] = out
    .trim()
    .split("\n")
    .map((line) => {
      const [archive, name, digest] = line.split(" ");
      return { archive, name, digest };
    });
  return { ros, pause };
}

export class ClusterLab {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-cluster-"));
  cp: ControlPlane | undefined;
  nodes: Nodes | undefined;
  pulumi: AutomationStack | undefined;
  /** `<repository>@sha256:<digest>` of the ROS 2 test image: what the lab deploys. */
  image = "";

  constructor(private readonly bin: string) {}

  async start(): Promise<void> {
    const missing = missingPrerequisite(this.bin);
    if (missing !== undefined) throw new Error(`the cluster tier cannot run here: ${missing}`);
    const { ros, pause } = testImages();
    this.image = `${ros.name.replace(/:[^:/]+$/, "")}@${ros.digest}`;
    this.nodes = new Nodes(NODES, this.bin, this.dir);
    // The control plane listens on the hub network the nodes reach.
    this.nodes.network();
    this.cp = await startControlPlane(this.bin, { address: HOST_IP });
    await this.nodes.start(this.cp, [pause.archive, ros.archive]);
    this.pulumi = await automationStack(this.bin, "cluster", [this.bin]);
  }

  /** The stack's config for `mode`: the three nodes, the test image, no dashboard (Headlamp's
   * image cannot be had here). */
  config(mode: Mode, timeoutSeconds = 60): ConfigMap {
    return rosfleetConfig({
      cluster: { kubeconfig: this.cp?.kubeconfig },
      machines: MACHINES,
      image: { build: false, repository: this.image },
      ros: { distro: "jazzy", discovery: mode, workloads: WORKLOADS },
      dashboard: { enabled: false },
      deliveryCheck: { enabled: true, timeoutSeconds },
    });
  }

  /** `kubectl ARGS` as the cluster's admin; `timeoutMs` ends it. */
  kubectl(args: readonly string[], timeoutMs = 60_000) {
    return spawnSync(
      path.join(this.bin, "kubectl"),
      ["--kubeconfig", this.cp?.kubeconfig ?? "", ...args],
      {
        encoding: "utf8",
        timeout: timeoutMs,
      },
    );
  }

  logs(): string {
    return [this.cp?.logs() ?? "", this.nodes?.logs() ?? ""].join("\n");
  }

  async stop(): Promise<void> {
    await this.nodes?.stop();
    await this.cp?.stop();
    this.pulumi?.cleanup();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
