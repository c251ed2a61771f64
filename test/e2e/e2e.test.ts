// The e2e tier: the whole lab through Pulumi — rosfleet's program under the real CLI (the
// toolchain's), the command provider over SSH to container machines (lab.ts: one amd64 laptop
// as the k3s server, an arm64 and an amd64 agent), k3s from air-gap files (the stand-ins, with
// a real API server behind them), the ROS stage onto that API (kwok runs no container, so the
// delivery check is off: the engine tier shows it failing). Needs the command provider plugin,
// which the Go module proxy does not serve: run it with `npm run test:e2e` (scripts/e2e.sh
// finds the plugin, or says in one line that it cannot run, and builds the toolchain).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigMap } from "@pulumi/pulumi/automation";
import {
  AutomationStack,
  automationStack,
  changeList,
  rosfleetConfig,
  stateText,
  withChanges,
} from "../helpers/automation";
import {
  LAB_K3S_VERSION as VERSION,
  LAB_MACHINES as MACHINES,
  LAB_USER,
  Lab,
  LabHost,
  missingPrerequisite,
} from "./lab";

const BIN = process.env.ROSFLEET_TOOLCHAIN_BIN ?? "";
/** The folder of the command provider plugin (`pulumi-resource-command`), from scripts/e2e.sh. */
const COMMAND_PLUGIN = process.env.ROSFLEET_COMMAND_PLUGIN_DIR ?? "";
/** Pinned by digest so the image stage declares nothing (kwok pulls no image). */
const IMAGE = `registry.invalid/rosfleet/ros_demo@sha256:${"e".repeat(64)}`;
const WORKLOADS = [
  { name: "ros-talker", kind: "deployment", containers: ["talker"] },
  { name: "ros-listener", kind: "deployment", arch: "arm64", containers: ["listener"] },
];

describe("e2e: the whole lab through Pulumi, over SSH, on container machines", function () {
  this.timeout(20 * 60_000);
  const lab = new Lab(MACHINES, BIN);
  const [laptop, arm, vm] = lab.hosts as [LabHost, LabHost, LabHost];
  let pulumi: AutomationStack | undefined;

  const config = (
    machines: readonly (typeof MACHINES)[number][],
    labels: Readonly<Record<string, Record<string, string>>> = {},
  ): ConfigMap =>
    rosfleetConfig(
      {
        machines: machines.map((m) => ({
          ...m,
          host: lab.host(m.name).ip,
          user: LAB_USER,
          labels: labels[m.name] ?? {},
        })),
        k3s: { version: VERSION, airgap: { ...lab.airgapFiles(VERSION), images: {} } },
        image: { build: false, repository: IMAGE },
        ros: { domainId: 5, workloads: WORKLOADS },
        deliveryCheck: { enabled: false },
      },
      { sshPrivateKey: fs.readFileSync(lab.key, "utf8") },
    );
  const up = async (cfg: ConfigMap) => {
    await pulumi?.stack.setAllConfig(cfg);
    const run = await withChanges((onEvent) =>
      (pulumi as AutomationStack).stack.up({ onEvent, color: "never" }),
    );
    assert.equal(run.result.summary.result, "succeeded");
    return run;
  };
  const kubectl = (args: string) => lab.kubectl(laptop, args);
  const leftovers = (h: LabHost) => lab.leftovers(h);

  before(async function () {
    if (
      COMMAND_PLUGIN === "" ||
      !fs.existsSync(path.join(COMMAND_PLUGIN, "pulumi-resource-command"))
    )
      throw new Error(
        "the e2e tier needs the command provider plugin: run it with `npm run test:e2e` (scripts/e2e.sh finds it)",
      );
    if (!fs.existsSync(path.join(BIN, "pulumi")) || !fs.existsSync(path.join(BIN, "kubectl")))
      throw new Error("the e2e tier needs the toolchain: run it with `npm run test:e2e`");
    const missing = missingPrerequisite(MACHINES);
    if (missing !== undefined) throw new Error(`the lab cannot run: ${missing}`);
    await lab.start();
    // The toolchain's kubernetes provider and the command provider, as ambient plugins.
    pulumi = await automationStack(BIN, "e2e", [BIN, COMMAND_PLUGIN]);
  });
  after(async function () {
    if (this.currentTest?.state === "failed") console.error(lab.logs());
    pulumi?.cleanup();
    await lab.stop();
  });

  it("up installs k3s on every machine, joins the agents and runs the ROS stage", async () => {
    const { result } = await up(config(MACHINES));
    const nodes = result.outputs.nodes?.value as { name: string; arch: string }[];
    assert.deepEqual(nodes.map((n) => `${n.name} ${n.arch}`).sort(), [
      "e2e-arm arm64",
      "e2e-laptop amd64",
      "e2e-vm amd64",
    ]);
    assert.match(
      kubectl("get deployment -n rosfleet ros-listener -o jsonpath='{.status.readyReplicas}'"),
      /^1$/,
    );
    // The listener is pinned to arm64: it runs on the Pi-like agent.
    assert.equal(
      kubectl(
        "get pods -n rosfleet -l app.kubernetes.io/name=ros-listener -o jsonpath='{.items[*].spec.nodeName}'",
      ),
      "e2e-arm",
    );
    const state = stateText(pulumi as AutomationStack, BIN);
    for (const file of ["token", "agent-token"]) {
      const token = lab.root(laptop, `cat /var/lib/rancher/k3s/server/${file}`).stdout.trim();
      assert.ok(token.length > 40 && !state.includes(token), `no plaintext ${file} in state`);
    }
    // The agents were given the agent token only: the server token stays on the server.
    const serverToken = lab.root(laptop, "cat /var/lib/rancher/k3s/server/token").stdout.trim();
    for (const h of [arm, vm])
      assert.doesNotMatch(lab.root(h, "cat /etc/rancher/k3s/token").stdout, /::server:/);
    assert.ok(serverToken.includes("::server:"));
    const key = fs.readFileSync(lab.key, "utf8").split("\n")[1] ?? "-";
    assert.ok(!state.includes(key), "no plaintext SSH key in state");
  });

  it("a second up changes nothing", async () => {
    const { result, changes } = await up(config(MACHINES));
    assert.deepEqual(changeList(changes), []);
    assert.deepEqual(Object.keys(result.summary.resourceChanges ?? {}), ["same"]);
  });

  it("a label change updates only that node's step, and the node has it", async () => {
    const { changes } = await up(config(MACHINES, { "e2e-arm": { robot: "arm-1" } }));
    assert.deepEqual(
      changeList(changes).map((c) => c.split(":")[0]),
      ["e2e-arm-node"],
    );
    assert.equal(kubectl("get node e2e-arm -o jsonpath='{.metadata.labels.robot}'"), "arm-1");
  });

  it("removing an agent deletes its node and uninstalls k3s from it, touching nothing else", async () => {
    const kept = MACHINES.filter((m) => m.name !== "e2e-vm");
    const { changes } = await up(config(kept, { "e2e-arm": { robot: "arm-1" } }));
    const changed = changeList(changes);
    assert.ok(changed.length > 0);
    for (const c of changed) assert.match(c, /^e2e-vm(-[a-z-]+)?:delete$/);
    assert.doesNotMatch(kubectl("get nodes -o name"), /e2e-vm/);
    assert.equal(leftovers(vm), "");
    assert.notEqual(leftovers(arm), "", "the other agent keeps k3s");
  });

  it("destroy takes the lab down: no k3s left on any machine", async () => {
    const result = await (pulumi as AutomationStack).stack.destroy({ color: "never" });
    assert.equal(result.summary.result, "succeeded");
    for (const h of [laptop, arm]) assert.equal(leftovers(h), "", h.name);
  });
});
