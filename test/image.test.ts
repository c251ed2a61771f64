import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DockerfileParser } from "dockerfile-ast";
import { validate } from "dockerfile-utils";
import { ProgramRun, Registration, runProgram } from "./helpers/program";
import { NO_LOG_FILE } from "../components/ros/render";
import { builderPlan, readBuilders } from "../components/image/builder";
import { Fetch, checkRegistryLogin, speaksPlainHttp, tryLogin } from "../components/image/login";
import { missingPlatformProblem, publishedPlatforms } from "../components/image/published";
import {
  importScript,
  importedRef,
  onPath,
  removeScript,
  requireDocker,
  sourcesDigest,
} from "../components/image/imported";
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

/** The dev stack with a registry on the laptop: built with docker-build and pushed. */
const pushedDev = (change: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) =>
  withImage(
    "dev",
    { repository: "localhost:5000/ros_demo", platforms: ["linux/amd64"], ...change },
    extra,
  );

describe("image: the build", () => {
  let dev: ProgramRun;
  before(async () => {
    dev = await runProgram(pushedDev());
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
      buildArgs: { ROS_DISTRO: "jazzy" },
      tags: ["localhost:5000/ros_demo:jazzy"],
      registries: [],
      cacheFrom: [{ registry: { ref: "localhost:5000/ros_demo:buildcache-jazzy" } }],
      cacheTo: [
        {
          registry: {
            ref: "localhost:5000/ros_demo:buildcache-jazzy",
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
      /^localhost:5000\/ros_demo:jazzy@sha256:[0-9a-f]{64}$/,
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
    // During up the login is tried first (Docker Hub's API host), over HTTPS only (Docker Hub
    // is not declared as HTTP); offline here, so the build goes ahead and would say what it finds.
    assert.deepEqual(run.fetches, ["https://registry-1.docker.io/v2/"]);
  });

  it("tries the registry login during up only, and a refused one stops the program before any resource", async () => {
    const config = {
      ...readStackConfig("clover"),
      registryUsername: "clover",
      registryPassword: "no",
    };
    const preview = await runProgram(config, { secretKeys: ["registryPassword"], preview: true });
    assert.deepEqual(preview.fetches, [], "preview stays offline");
    const refusing = (_url: string, init?: RequestInit) =>
      Promise.resolve(
        new Response("", {
          status: 401,
          headers: init?.headers === undefined ? { "WWW-Authenticate": 'Basic realm="hub"' } : {},
        }),
      );
    await assert.rejects(
      runProgram(config, { secretKeys: ["registryPassword"], fetch: refusing }),
      /registryPassword: registry docker\.io \(image\.repository\) refused the login of registryUsername "clover"/,
    );
  });

  it("builds the distro of ros.distro", async () => {
    const run = await runProgram(pushedDev({}, { ros: { distro: "jazzy" } }));
    const build = run.get(BUILD, "ros-demo-build");
    assert.deepEqual(build.inputs["buildArgs"], { ROS_DISTRO: "jazzy" });
    assert.deepEqual(build.inputs["tags"], ["localhost:5000/ros_demo:jazzy"]);
  });

  it("uses the builder named in image.builder, and no cache when image.cache is false", async () => {
    const run = await runProgram(pushedDev({ builder: "rosfleet-multiarch", cache: false }));
    const build = run.get(BUILD, "ros-demo-build");
    assert.deepEqual(build.inputs["builder"], { name: "rosfleet-multiarch" });
    assert.equal(build.inputs["cacheFrom"], undefined);
    assert.equal(build.inputs["cacheTo"], undefined);
  });

  it("hands every ROS container the digest the registry gave the push, and only that changes with it", async () => {
    const digests = [`sha256:${"1".repeat(64)}`, `sha256:${"2".repeat(64)}`];
    const runs: ProgramRun[] = [];
    for (const imageDigest of digests) runs.push(await runProgram(pushedDev(), { imageDigest }));
    const specs = runs.map((run, i) => {
      const ref = `localhost:5000/ros_demo:jazzy@${digests[i]}`;
      assert.equal(run.outputs["image"], ref);
      const ros = run.resources.filter(
        (r) => POD_KINDS.includes(r.type) && r.name !== "dashboard-headlamp",
      );
      assert.ok(ros.length >= 8);
      for (const r of ros)
        for (const c of containersOf(r))
          assert.equal(c["image"], ref, `${r.name}/${String(c["name"])}`);
      // Everything but the image (and the check's run key, a hash of it, with its label) is the
      // same for both builds: a rebuild rolls pods, nothing else.
      return JSON.stringify(
        ros.map((r) => r.inputs),
        (key, value: unknown) =>
          key === "env"
            ? (value as Obj[]).filter((e) => e["name"] !== "ROSFLEET_CHECK_RUN")
            : key === "rosfleet.dev/check-run"
              ? "<run>"
              : value,
      ).replaceAll(ref, "<image>");
    });
    assert.equal(specs[0], specs[1]);
  });

  it("leaves only the image unknown at preview, so preview --diff shows every other field", async () => {
    const run = await runProgram(pushedDev(), { preview: true });
    const pod = run.get("kubernetes:apps/v1:Deployment", "ros-demo-listener");
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

  it("builds FROM ros:${ROS_DISTRO}-ros-base with jazzy (the current LTS) as the default distro", () => {
    const [arg, from] = instructions;
    assert.equal(arg.getKeyword(), "ARG");
    assert.equal(arg.getArgumentsContent(), "ROS_DISTRO=jazzy");
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

describe("image: the builder the build gets", () => {
  const image = (over: Record<string, unknown> = {}) =>
    ({
      build: true,
      repository: "registry.lab:5000/rosfleet/ros_demo",
      platforms: ["linux/amd64", "linux/arm64"],
      cache: true,
      builder: "default",
      importInto: undefined,
      ...over,
    }) as Parameters<typeof builderPlan>[0];
  const builders = new Map([
    ["rosfleet", "docker-container"],
    ["old", "docker"],
  ]);

  it("refuses a docker-driver builder (a Docker context's, or an instance) for two platforms", () => {
    for (const name of ["default", "desktop-linux", "old"]) {
      const plan = builderPlan(image({ builder: name }), builders);
      assert.equal(plan.ok, false, name);
      if (plan.ok) continue;
      assert.equal(plan.problem.path, "image.builder");
      assert.match(
        plan.problem.message,
        new RegExp(
          `^builder "${name}" uses the docker driver, which cannot build linux/amd64 and linux/arm64 into one image nor push the build cache \\(image\\.cache\\): create one that can \\(docker buildx create --name rosfleet --driver docker-container`,
        ),
      );
    }
  });

  it("builds one platform without the cache on a docker-driver builder, and says so", () => {
    const plan = builderPlan(image({ platforms: ["linux/amd64"] }), builders);
    assert.deepEqual(plan.ok && plan.cache, false);
    assert.match(
      (plan.ok && plan.warning) || "",
      /^image\.cache skipped: builder "default" uses the docker driver/,
    );
    assert.deepEqual(builderPlan(image({ platforms: ["linux/amd64"], cache: false }), builders), {
      ok: true,
      cache: false,
    });
  });

  it("takes a container or remote builder, no builder named, or no build as they are", () => {
    assert.deepEqual(builderPlan(image({ builder: "rosfleet" }), builders), {
      ok: true,
      cache: true,
    });
    assert.deepEqual(builderPlan(image({ builder: undefined }), new Map()), {
      ok: true,
      cache: true,
    });
    assert.deepEqual(builderPlan(image({ build: false }), new Map()), { ok: true, cache: true });
  });

  it("reads buildx's instances, and fails the program with the config error at preview", async () => {
    const found = readBuilders(path.join(REPO_ROOT, "test", "fixtures", "buildx"));
    assert.deepEqual([...found], [["rosfleet-multiarch", "docker-container"]]);
    await assert.rejects(
      runProgram(pushedDev({ builder: "default", platforms: ["linux/amd64", "linux/arm64"] }), {
        preview: true,
      }),
      /invalid rosfleet stack configuration \(1 problem\):\n {2}image\.builder: builder "default" uses the docker driver/,
    );
  });
});

describe("image: the registry login, tried before the build", () => {
  const LOGIN = {
    registry: "registry.lab:5000",
    path: "rosfleet/ros_demo",
    username: "lab",
    password: "pw",
  };
  const basic = `Basic ${Buffer.from("lab:pw").toString("base64")}`;
  /** The image settings of a build pushed to that registry. */
  const settings = {
    build: true,
    repository: "registry.lab:5000/rosfleet/ros_demo",
    platforms: ["linux/amd64"],
    cache: true,
    builder: undefined,
    importInto: undefined,
  } as Parameters<typeof checkRegistryLogin>[0];
  /** A registry that wants `scheme` and accepts only lab:pw; requests are recorded. */
  function registry(scheme: "basic" | "bearer" | "none", speaks: "https" | "http" = "https") {
    const seen: string[] = [];
    const fake: Fetch = (url, init) => {
      seen.push(`${url} ${init?.headers?.Authorization ?? "-"}`);
      if (!url.startsWith(`${speaks}:`)) return Promise.reject(new TypeError("fetch failed"));
      const ok = init?.headers?.Authorization === basic;
      if (url.endsWith("/v2/") && scheme === "none") return Promise.resolve(new Response("{}"));
      if (url.endsWith("/v2/") && init?.headers === undefined)
        return Promise.resolve(
          new Response("", {
            status: 401,
            headers: {
              "WWW-Authenticate":
                scheme === "basic"
                  ? 'Basic realm="lab"'
                  : `Bearer realm="${speaks}://auth.lab/token",service="registry.lab"`,
            },
          }),
        );
      // A token server answers with the token (a registry's /v2/ with nothing in particular).
      return Promise.resolve(
        new Response(JSON.stringify({ token: "t0k" }), { status: ok ? 200 : 401 }),
      );
    };
    return { fake, seen };
  }

  it("accepts the right login over Basic, and over a Bearer token for the push scope", async () => {
    const b = registry("basic");
    assert.equal(await tryLogin(LOGIN, b.fake), "accepted");
    assert.deepEqual(b.seen, [
      `https://registry.lab:5000/v2/ -`,
      `https://registry.lab:5000/v2/ ${basic}`,
    ]);
    const t = registry("bearer");
    assert.equal(await tryLogin(LOGIN, t.fake), "accepted");
    assert.equal(
      t.seen[1],
      `https://auth.lab/token?service=registry.lab&scope=repository%3Arosfleet%2Fros_demo%3Apull%2Cpush ${basic}`,
    );
  });

  it("tells a read-only login from one that may push, where the token says what it grants", async () => {
    /** A token as the distribution token spec's servers write it: a JWT with `access`. */
    const jwt = (access: unknown) =>
      [
        "e30",
        Buffer.from(JSON.stringify({ sub: "lab", access })).toString("base64url"),
        "c2ln",
      ].join(".");
    const grants =
      (token: string): Fetch =>
      (url, init) =>
        url.endsWith("/v2/") && init?.headers === undefined
          ? Promise.resolve(
              new Response("", {
                status: 401,
                headers: {
                  "WWW-Authenticate":
                    'Bearer realm="https://auth.lab/token",service="registry.lab"',
                },
              }),
            )
          : Promise.resolve(new Response(JSON.stringify({ token })));
    const repo = (actions: string[]) => [
      { type: "repository", name: "rosfleet/ros_demo", actions },
    ];
    assert.equal(await tryLogin(LOGIN, grants(jwt(repo(["pull"])))), "read-only");
    assert.equal(await tryLogin(LOGIN, grants(jwt([]))), "read-only", "granted nothing at all");
    assert.equal(await tryLogin(LOGIN, grants(jwt(repo(["pull", "push"])))), "accepted");
    // Another repository's push is not this one's.
    assert.equal(
      await tryLogin(
        LOGIN,
        grants(jwt([{ type: "repository", name: "other/repo", actions: ["push"] }])),
      ),
      "read-only",
    );
    // An opaque token (or a JWT without `access`) says nothing: the build will tell.
    assert.equal(await tryLogin(LOGIN, grants("opaque-token")), "accepted");
    assert.equal(await tryLogin(LOGIN, grants(jwt(undefined))), "accepted");
    await assert.rejects(
      checkRegistryLogin(settings, "lab", "pw", grants(jwt(repo(["pull"])))),
      (err: Error) =>
        err.message ===
        'invalid rosfleet stack configuration (1 problem):\n  registryPassword: registry registry.lab:5000 (image.repository) takes the login of registryUsername "lab" but grants it no push on rosfleet/ros_demo (a read-only token): the built image could not be pushed. Use a token or account with write access to that repository (pulumi config set --secret registryPassword …), or image.build false to deploy it as published',
    );
  });

  it("finds a wrong password, also on a plain-HTTP registry", async () => {
    assert.equal(await tryLogin({ ...LOGIN, password: "no" }, registry("basic").fake), "refused");
    assert.equal(
      await tryLogin(
        { ...LOGIN, password: "no", plainHttp: true },
        registry("bearer", "http").fake,
      ),
      "refused",
    );
  });

  it("asks over plain HTTP only a registry on loopback or declared as HTTP in k3s.registries", async () => {
    const h = registry("basic", "http");
    assert.equal(await tryLogin(LOGIN, h.fake), "unknown");
    assert.deepEqual(h.seen, ["https://registry.lab:5000/v2/ -"], "no request in clear");
    assert.equal(await tryLogin({ ...LOGIN, plainHttp: true }, h.fake), "accepted");
    const plain = speaksPlainHttp({
      mirrors: { "docker.io": { endpoint: ["http://registry.lab:5000", "https://mirror.lab"] } },
    });
    assert.deepEqual(
      [
        "registry.lab:5000",
        "mirror.lab",
        "docker.io",
        "127.0.0.1:5000",
        "localhost:5000",
        "evil.lab",
      ].map(plain),
      [true, false, false, true, true, false],
    );
    assert.equal(speaksPlainHttp(undefined)("registry.lab:5000"), false);
  });

  it("gives every request a deadline, and takes a connection lost half-way as unknown", async () => {
    const b = registry("basic");
    const signals: (AbortSignal | undefined)[] = [];
    let calls = 0;
    const flaky: Fetch = (url, init) => {
      signals.push(init?.signal);
      return ++calls === 1 ? b.fake(url, init) : Promise.reject(new TypeError("socket hang up"));
    };
    assert.equal(await tryLogin(LOGIN, flaky), "unknown");
    assert.equal(signals.length, 2);
    assert.ok(
      signals.every((sig) => sig instanceof AbortSignal),
      "each request can time out",
    );
  });

  it("leaves what it cannot ask to the build: unreachable, or no login needed", async () => {
    assert.equal(
      await tryLogin(LOGIN, () => Promise.reject(new TypeError("fetch failed"))),
      "unknown",
    );
    assert.equal(await tryLogin(LOGIN, registry("none").fake), "accepted");
  });

  it("throws the one config error naming the registry and the keys, and checks nothing without a login", async () => {
    await assert.rejects(
      checkRegistryLogin(settings, "lab", "wrong", registry("basic").fake),
      (err: Error) =>
        err.message ===
        'invalid rosfleet stack configuration (1 problem):\n  registryPassword: registry registry.lab:5000 (image.repository) refused the login of registryUsername "lab": set the right registryUsername and registryPassword (pulumi config set registryUsername …; pulumi config set --secret registryPassword …)',
    );
    const never: Fetch = () => assert.fail("no login to check");
    await checkRegistryLogin(settings, undefined, "pw", never);
    await checkRegistryLogin({ ...settings, build: false }, "lab", "pw", never);
  });
});

describe("image: a published image (image.build false) has every arch of the lab", () => {
  const nodes = [
    { name: "laptop", kind: "laptop", arch: "amd64", labels: {}, cordon: false },
    { name: "clover1", kind: "pi", arch: "arm64", labels: {}, cordon: false },
  ] as const;

  it("names each node whose platform the image lacks, and the two ways out", () => {
    assert.equal(
      missingPlatformProblem("r.lab/ros_demo:v1", ["linux/amd64"], nodes),
      "r.lab/ros_demo:v1 has only linux/amd64, but clover1 (linux/arm64) would run it: publish it for linux/amd64 and linux/arm64 (docker buildx build --platform linux/amd64,linux/arm64 --push), or let rosfleet build it (image.build: true)",
    );
    assert.equal(missingPlatformProblem("r", ["linux/arm64", "linux/amd64"], nodes), undefined);
  });

  it("says why when the registry cannot be read, so up warns and goes on", async () => {
    const offline: Fetch = () => Promise.reject(new TypeError("fetch failed"));
    assert.deepEqual(await publishedPlatforms("r.lab:5000/ros_demo:v1", undefined, offline), {
      unknown: "registry r.lab:5000 did not answer",
    });
  });
});

describe("image: the dev stack without a registry (built by Docker, imported into k3s)", () => {
  const LOCAL = "command:local:Command";
  const IMPORTED = /^rosfleet\.invalid\/ros_demo@sha256:[0-9a-f]{64}$/;
  let dev: ProgramRun;
  before(async () => {
    dev = await runProgram(readStackConfig("dev"), { stack: "dev" });
  });

  it("builds nothing with docker-build and runs one step on the machine, as root, after its k3s install", () => {
    assert.deepEqual(dev.names(BUILD), []);
    const step = dev.get(LOCAL, "ros-demo-import");
    assert.match(step.parent, /rosfleet:image:RosDemo::ros-demo$/);
    assert.equal(step.inputs["create"], "sudo -n bash -s -- create");
    assert.equal(step.inputs["delete"], "sudo -n bash -s -- delete");
    const install = dev.get(LOCAL, "devbox-install");
    assert.ok(step.dependencies.includes(install.urn));
    const sent = String(step.inputs["stdin"]);
    const params = importScript({
      repository: "rosfleet.invalid/ros_demo",
      distro: "jazzy",
      context: "images/ros_demo",
      sources: sourcesDigest(path.join(REPO_ROOT, "images", "ros_demo")),
      install: "devbox-install-id",
      // The mocks' engine gives a resource the id <name>-id.
    });
    assert.ok(sent.includes(params), "the create script is import.sh with the lab's parameters");
    assert.ok(
      sent.includes(removeScript({ repository: "rosfleet.invalid/ros_demo", distro: "jazzy" })),
    );
    assert.match(sent, /^TAG='rosfleet\.invalid\/ros_demo:jazzy'$/m);
  });

  it("hands every ROS container, the pull probe's too, the digest the import printed", () => {
    const ref = String(dev.outputs["image"]);
    assert.match(ref, IMPORTED);
    const pods = dev.resources.filter(
      (r) => POD_KINDS.includes(r.type) && r.name !== "dashboard-headlamp",
    );
    assert.ok(pods.length >= 8);
    for (const r of pods)
      for (const c of containersOf(r))
        assert.equal(c["image"], ref, `${r.name}/${String(c["name"])}`);
    const probe = dev.get("pulumi-nodejs:dynamic/ros:PullProbe", "ros-pull");
    assert.equal(probe.inputs["image"], ref);
    assert.ok(dev.dependsOn(probe, dev.get(LOCAL, "ros-demo-import")));
  });

  it("leaves the image unknown at a first preview, and asks no registry", async () => {
    const preview = await runProgram(
      { ...readStackConfig("dev"), registryUsername: "lab", registryPassword: "pw" },
      { stack: "dev", preview: true, secretKeys: ["registryPassword"] },
    );
    const [listener] = containersOf(
      preview.get("kubernetes:apps/v1:Deployment", "ros-demo-listener"),
    );
    assert.equal(listener["image"], UNKNOWN);
    const up = await runProgram(
      { ...readStackConfig("dev"), registryUsername: "lab", registryPassword: "pw" },
      { stack: "dev", secretKeys: ["registryPassword"] },
    );
    assert.deepEqual(up.fetches, [], "no login is tried: nothing is pushed");
  });

  it("changes the step (and so the image) when the sources change, only then", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-sources-"));
    try {
      fs.writeFileSync(path.join(dir, "Dockerfile"), "FROM ros:jazzy-ros-base\n");
      fs.mkdirSync(path.join(dir, "etc"));
      fs.writeFileSync(path.join(dir, "etc", "a.conf"), "a\n");
      const first = sourcesDigest(dir);
      assert.match(first, /^[0-9a-f]{64}$/);
      assert.equal(sourcesDigest(dir), first, "the same sources, the same digest");
      fs.writeFileSync(path.join(dir, "etc", "a.conf"), "b\n");
      const changed = sourcesDigest(dir);
      assert.notEqual(changed, first, "a file's contents");
      fs.renameSync(path.join(dir, "etc", "a.conf"), path.join(dir, "etc", "b.conf"));
      assert.notEqual(sourcesDigest(dir), changed, "a file's name");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("takes only a repository@digest line from the import's output", () => {
    const digest = `sha256:${"c".repeat(64)}`;
    const repo = "rosfleet.invalid/ros_demo";
    assert.equal(importedRef(`${repo}@${digest}\n`, repo), `${repo}@${digest}`);
    for (const bad of [
      "",
      "ok",
      `${repo}:jazzy@${digest}`,
      `other/ros_demo@${digest}`,
      `${repo}@sha256:12`,
    ])
      assert.throws(
        () => importedRef(`${bad}\n`, repo),
        /the image import printed .* not rosfleet\.invalid\/ros_demo@sha256:<digest>/,
      );
  });

  it("stops at preview, before anything runs, when this machine has no docker", async () => {
    assert.equal(onPath("docker", "/nonexistent:/also-not"), false);
    assert.equal(onPath("sh", "/nonexistent:/bin"), true);
    assert.equal(onPath("bin", "/"), false, "a directory is no command");
    assert.throws(
      () => requireDocker("devbox", () => false),
      /image\.repository: not set, so Docker builds the image on devbox \(this machine\) and k3s imports it, but no docker command is on the PATH: install Docker Engine/,
    );
    assert.doesNotThrow(
      () => requireDocker(undefined, () => false),
      "a pushed build needs no docker here",
    );
    await assert.rejects(
      runProgram(readStackConfig("dev"), { stack: "dev", preview: true, docker: false }),
      /invalid rosfleet stack configuration \(1 problem\):\n {2}image\.repository: not set, so Docker builds/,
    );
    // A lab that pushes does not need it here.
    await runProgram(pushedDev(), { preview: true, docker: false });
  });
});
