import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { DockerfileParser } from "dockerfile-ast";
import { validate } from "dockerfile-utils";
import { ProgramRun, Registration, runProgram } from "./helpers/program";
import { NO_LOG_FILE } from "../components/ros/render";
import { REPO_ROOT, readStackConfig } from "./helpers/stack";

const BUILD = "docker-build:index:Image";
/** How the SDK sends a value unknown at preview. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const POD_KINDS = [
  "kubernetes:core/v1:Pod",
  "kubernetes:apps/v1:Deployment",
  "kubernetes:apps/v1:DaemonSet",
  "kubernetes:batch/v1:Job",
];
type Obj = Record<string, unknown>;
/** The containers of a Pod, Deployment, DaemonSet or Job registration. */
function containersOf(r: Registration): Obj[] {
  const spec = r.inputs["spec"] as Obj;
  const pod =
    r.type === "kubernetes:core/v1:Pod" ? spec : ((spec["template"] as Obj)["spec"] as Obj);
  return pod["containers"] as Obj[];
}
const DOCKERFILE = path.join(REPO_ROOT, "images", "ros_demo", "Dockerfile");

function withImage(
  stack: string,
  change: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) {
  const config = structuredClone(readStackConfig(stack));
  config["image"] = { ...(config["image"] as Record<string, unknown>), ...change };
  return { ...config, ...extra };
}

describe("image: the build", () => {
  let dev: ProgramRun;
  before(async () => {
    dev = await runProgram(readStackConfig("dev"));
  });

  it("builds ros_demo for the stack's platforms, pushed, with registry cache, not on preview", () => {
    assert.deepEqual(dev.names(BUILD), ["ros-demo-build"]);
    const build = dev.get(BUILD, "ros-demo-build");
    assert.match(build.parent, /rosfleet:image:RosDemo::ros-demo$/);
    assert.deepEqual(build.inputs, {
      push: true,
      platforms: ["linux/amd64"],
      context: { location: "images/ros_demo" },
      dockerfile: { location: "images/ros_demo/Dockerfile" },
      buildArgs: { ROS_DISTRO: "humble" },
      tags: ["localhost:5000/ros_demo:humble"],
      registries: [],
      cacheFrom: [{ registry: { ref: "localhost:5000/ros_demo:buildcache-humble" } }],
      cacheTo: [
        {
          registry: {
            ref: "localhost:5000/ros_demo:buildcache-humble",
            mode: "max",
            ignoreError: true,
          },
        },
      ],
      buildOnPreview: false,
      network: "default", // the SDK's default
    });
  });

  it("exports the pushed reference by digest", () => {
    assert.match(
      String(dev.outputs["image"]),
      /^localhost:5000\/ros_demo:humble@sha256:[0-9a-f]{64}$/,
    );
  });

  it("builds both platforms by default and pushes with the secret registry password", async () => {
    const run = await runProgram(
      { ...readStackConfig("clover"), registryUsername: "clover", registryPassword: "hunter2" },
      { secretKeys: ["registryPassword"] },
    );
    const build = run.get(BUILD, "ros-demo-build");
    assert.deepEqual(build.inputs["platforms"], ["linux/amd64", "linux/arm64"]);
    assert.deepEqual(build.inputs["registries"], [
      { address: "docker.io", username: "clover", password: "hunter2" },
    ]);
    assert.ok(build.secretInputs.includes("registries"));
    assert.ok(!JSON.stringify(run.outputs).includes("hunter2"));
  });

  it("builds the distro of ros.distro", async () => {
    const run = await runProgram({ ...readStackConfig("dev"), ros: { distro: "jazzy" } });
    const build = run.get(BUILD, "ros-demo-build");
    assert.deepEqual(build.inputs["buildArgs"], { ROS_DISTRO: "jazzy" });
    assert.deepEqual(build.inputs["tags"], ["localhost:5000/ros_demo:jazzy"]);
  });

  it("uses the builder named in image.builder, and no cache when image.cache is false", async () => {
    const run = await runProgram(withImage("dev", { builder: "rosfleet-multiarch", cache: false }));
    const build = run.get(BUILD, "ros-demo-build");
    assert.deepEqual(build.inputs["builder"], { name: "rosfleet-multiarch" });
    assert.equal(build.inputs["cacheFrom"], undefined);
    assert.equal(build.inputs["cacheTo"], undefined);
  });

  it("hands every ROS container the digest the registry gave the push, and only that changes with it", async () => {
    const digests = [`sha256:${"1".repeat(64)}`, `sha256:${"2".repeat(64)}`];
    const runs: ProgramRun[] = [];
    for (const imageDigest of digests)
      runs.push(await runProgram(readStackConfig("dev"), { imageDigest }));
    const specs = runs.map((run, i) => {
      const ref = `localhost:5000/ros_demo:humble@${digests[i]}`;
      assert.equal(run.outputs["image"], ref);
      const ros = run.resources.filter(
        (r) => POD_KINDS.includes(r.type) && r.name !== "dashboard-headlamp",
      );
      assert.ok(ros.length >= 8);
      for (const r of ros)
        for (const c of containersOf(r))
          assert.equal(c["image"], ref, `${r.name}/${String(c["name"])}`);
      // Everything but the image (and the check's run key, a hash of it) is the same for both
      // builds: a rebuild rolls pods, nothing else.
      return JSON.stringify(
        ros.map((r) => r.inputs),
        (key, value: unknown) =>
          key === "env"
            ? (value as Obj[]).filter((e) => e["name"] !== "ROSFLEET_CHECK_RUN")
            : value,
      ).replaceAll(ref, "<image>");
    });
    assert.equal(specs[0], specs[1]);
  });

  it("leaves only the image unknown at preview, so preview --diff shows every other field", async () => {
    const run = await runProgram(readStackConfig("dev"), { preview: true });
    const pod = run.get("kubernetes:core/v1:Pod", "ros-demo-listener");
    const [listener] = containersOf(pod);
    assert.equal(listener["image"], UNKNOWN);
    assert.deepEqual(listener["args"], [
      "ros2",
      "run",
      "demo_nodes_cpp",
      "listener",
      ...NO_LOG_FILE,
    ]);
    const known = JSON.stringify({ ...pod.inputs, spec: "checked below" });
    assert.ok(!known.includes(UNKNOWN), known);
    for (const r of run.resources.filter((x) => POD_KINDS.includes(x.type)))
      for (const c of containersOf(r)) {
        // The check's run key hashes the image: it is unknown with it, and is its own env entry.
        const { image, env, ...rest } = c;
        const others = ((env as Obj[] | undefined) ?? []).filter(
          (e) => e["name"] !== "ROSFLEET_CHECK_RUN",
        );
        assert.ok(!JSON.stringify(others).includes(UNKNOWN), `${r.name}/${String(c["name"])} env`);
        assert.ok(
          !JSON.stringify(rest).includes(UNKNOWN),
          `${r.name}/${String(c["name"])} ${String(image)}`,
        );
      }
  });
});

describe("image: image.build false", () => {
  it("deploys the published image as given, digest included, and builds nothing", async () => {
    const published = `docker.io/mickeyli789/ros_demo@sha256:${"b".repeat(64)}`;
    const run = await runProgram(withImage("clover", { build: false, repository: published }));
    assert.deepEqual(run.names(BUILD), []);
    assert.equal(run.outputs["image"], published);
  });
});

describe("image: the Dockerfile", () => {
  const text = fs.readFileSync(DOCKERFILE, "utf8");
  const dockerfile = DockerfileParser.parse(text);
  const instructions = dockerfile.getInstructions();
  const runs = instructions
    .filter((i) => i.getKeyword() === "RUN")
    .map((i) => i.getArgumentsContent() ?? "");

  it("passes the Dockerfile linter", () => {
    assert.deepEqual(validate(text), []);
  });

  it("builds FROM ros:${ROS_DISTRO}-ros-base with humble as the default distro", () => {
    const [arg, from] = instructions;
    assert.equal(arg.getKeyword(), "ARG");
    assert.equal(arg.getArgumentsContent(), "ROS_DISTRO=humble");
    assert.equal(from.getKeyword(), "FROM");
    assert.equal(from.getArgumentsContent(), "ros:${ROS_DISTRO}-ros-base");
    assert.ok(
      instructions.some(
        (i, n) => n > 1 && i.getKeyword() === "ARG" && i.getArgumentsContent() === "ROS_DISTRO",
      ),
      "ROS_DISTRO re-declared after FROM, so RUN can use it",
    );
  });

  it("installs the demo talker/listener (cpp and py) and the network tools", () => {
    const all = runs.join("\n");
    for (const pkg of [
      "ros-${ROS_DISTRO}-demo-nodes-cpp",
      "ros-${ROS_DISTRO}-demo-nodes-py",
      "iproute2",
      "iputils-ping",
      "tcpdump",
      "dnsutils",
    ])
      assert.ok(all.includes(pkg), pkg);
  });

  it("keeps one layer per concern, each cleaning its apt lists, without recommends", () => {
    assert.equal(runs.length, 2);
    for (const run of runs) {
      assert.match(run, /^apt-get update/);
      assert.match(run, /apt-get install -y --no-install-recommends/);
      assert.match(run, /rm -rf \/var\/lib\/apt\/lists\/\*$/);
    }
  });

  it("keeps the official entrypoint (no ENTRYPOINT or CMD of its own)", () => {
    assert.deepEqual(
      instructions.map((i) => i.getKeyword()).filter((k) => k === "ENTRYPOINT" || k === "CMD"),
      [],
    );
  });

  it("ships a .dockerignore that keeps the context empty", () => {
    assert.equal(
      fs
        .readFileSync(path.join(path.dirname(DOCKERFILE), ".dockerignore"), "utf8")
        .split("\n")
        .filter((l) => l && !l.startsWith("#"))
        .join(),
      "*",
    );
  });
});
