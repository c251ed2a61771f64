// The cluster tier's lab, shared by its test and its bench: the toolchain's control plane on
// the hub address, three real nodes, and rosfleet's program on the real Pulumi engine in
// existing-cluster mode — its image stage building images/ros_demo/Dockerfile with BuildKit
// (the image tier's world), pushing it behind a login to a registry on the hub address, from
// which the nodes' containerd pulls it by digest with the pods' pull Secret.
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigMap } from "@pulumi/pulumi/automation";
import { ControlPlane, startControlPlane } from "../engine/controlplane";
import { AutomationStack, automationStack, rosfleetConfig } from "../helpers/automation";
import { ensureEmulation } from "../helpers/emulation";
import { BUILDER, ImageWorld, Login, materials, missingImagePrerequisite } from "../image/world";
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
    // As rosfleet's default demo-listener: a one-replica Deployment.
    name: "demo-listener",
    kind: "deployment",
    node: "cluster-laptop",
    containers: ["listener", "toolbox"],
  },
];
export type Mode = "discovery-server" | "multicast" | "host-network";

const LOGIN: Login = { username: "lab", password: "cluster-tier-registry-password-52d0" };

export class ClusterLab {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-cluster-"));
  cp: ControlPlane | undefined;
  nodes: Nodes | undefined;
  pulumi: AutomationStack | undefined;
  world: ImageWorld | undefined;
  private restoreEnv = () => {};

  constructor(private readonly bin: string) {}

  async start(): Promise<void> {
    const missing = missingPrerequisite(this.bin) ?? missingImagePrerequisite(this.bin);
    if (missing !== undefined) throw new Error(`the cluster tier cannot run here: ${missing}`);
    // images.sh makes the arm64 base root too (under emulation), once.
    ensureEmulation();
    const m = materials();
    this.nodes = new Nodes(NODES, this.bin, this.dir);
    // The control plane and the lab's registry listen on the hub network the nodes reach.
    this.nodes.network();
    this.world = new ImageWorld(this.bin, { host: HOST_IP, login: LOGIN });
    await this.world.start(m);
    this.cp = await startControlPlane(this.bin, { address: HOST_IP });
    await this.nodes.start(this.cp, [m.pause.archive], this.world.lab?.address ?? "");
    // The provider and the inline program (this process) find the builder in this environment.
    this.restoreEnv = this.world.exportEnv();
    this.pulumi = await automationStack(this.bin, "cluster", [this.bin], this.world.env());
  }

  /** The stack's config for `mode`: the three nodes, ros_demo built for their one platform and
   * pushed with the login, no dashboard (Headlamp's image cannot be had here); the delivery
   * check's timeout and limits as given. */
  config(
    mode: Mode,
    timeoutSeconds = 60,
    limits: { maxLossPercent?: number; maxLatencyMs?: number; largeMessageBytes?: number } = {},
  ): ConfigMap {
    return rosfleetConfig(
      {
        cluster: { kubeconfig: this.cp?.kubeconfig },
        machines: MACHINES,
        image: {
          build: true,
          repository: this.world?.repository,
          platforms: ["linux/amd64"],
          builder: BUILDER,
        },
        ros: { distro: "jazzy", discovery: mode, workloads: WORKLOADS },
        dashboard: { enabled: false },
        deliveryCheck: { enabled: true, timeoutSeconds, ...limits },
        registryUsername: LOGIN.username,
      },
      { registryPassword: LOGIN.password },
    );
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

  /** `kubectl ARGS` started in the background (a session the test cuts off itself). */
  kubectlStarted(args: readonly string[]): ChildProcess {
    return spawn(
      path.join(this.bin, "kubectl"),
      ["--kubeconfig", this.cp?.kubeconfig ?? "", ...args],
      { stdio: "ignore" },
    );
  }

  logs(): string {
    return [this.cp?.logs() ?? "", this.nodes?.logs() ?? "", this.world?.logs() ?? ""].join("\n");
  }

  async stop(): Promise<void> {
    await this.nodes?.stop();
    await this.cp?.stop();
    await this.world?.stop();
    this.restoreEnv();
    this.pulumi?.cleanup();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
