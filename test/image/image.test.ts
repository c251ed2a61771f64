// The image tier: rosfleet's image stage for real — the docker-build provider (toolchain) with
// its embedded buildx, BuildKit (toolchain) as a `remote` builder, registries on loopback —
// building images/ros_demo/Dockerfile itself for linux/amd64 and linux/arm64 (arm64 RUN steps
// under qemu-user), pushed behind a login, and handed to the workloads by digest, through the
// real engine (existing-cluster mode, kwok nodes). `FROM ros:<distro>-ros-base` comes from
// BuildKit's docker.io mirror, where world.ts puts base images made from images.sh's roots; the
// demo-node packages from an apt repository served here, the toolbox from Debian.
// Run with `npm run test:image`.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { ConfigMap, Stack } from "@pulumi/pulumi/automation";
import { ControlPlane, freePort, startControlPlane } from "../engine/controlplane";
import {
  AutomationStack,
  automationStack,
  changeList,
  leftInCluster,
  nameOf,
  rosfleetConfig,
  stateObjects,
  stateText,
  withChanges,
} from "../helpers/automation";
import { REPO_ROOT } from "../helpers/stack";
import { ensureEmulation } from "../helpers/emulation";
import {
  BUILDER,
  ImageWorld,
  Login,
  Manifest,
  RegistryApi,
  materials,
  missingImagePrerequisite,
} from "./world";

const BIN = process.env.ROSFLEET_TOOLCHAIN_BIN ?? "";
const MACHINES = [
  { name: "image-laptop", arch: "amd64", kind: "laptop" },
  { name: "image-pi", arch: "arm64", kind: "pi" },
] as const;
const LOGIN: Login = { username: "lab", password: "image-tier-registry-password-7c1e" };
const DOCKERFILE = path.join(REPO_ROOT, "images", "ros_demo", "Dockerfile");
const REPO_PATH = "rosfleet/ros_demo";
/** ELF e_machine of each platform's binaries. */
const ELF_MACHINE = { amd64: 62, arm64: 183 } as const;
const UNAME = { amd64: "x86_64", arm64: "aarch64" } as const;

interface Container {
  readonly name: string;
  readonly image: string;
}
interface Workload {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly spec: unknown;
}

/** The files of a gzip layer matching `pattern` (tar's --wildcards), by path. */
function layerFiles(blob: Buffer, pattern: string): Map<string, Buffer> {
  const list = spawnSync("tar", ["-tz", "--wildcards", "-f", "-", pattern], { input: blob });
  const files = new Map<string, Buffer>();
  if (list.status !== 0) return files;
  for (const name of list.stdout.toString("utf8").split("\n").filter(Boolean)) {
    const r = spawnSync("tar", ["-xzO", "-f", "-", name], { input: blob, maxBuffer: 64 << 20 });
    files.set(name, r.stdout);
  }
  return files;
}

describe("image: the ros_demo Dockerfile built for amd64 and arm64, pushed, used by digest", function () {
  this.timeout(40 * 60_000);
  let cp: ControlPlane | undefined;
  let world: ImageWorld | undefined;
  let pulumi: AutomationStack | undefined;
  let stack: Stack;
  let api: RegistryApi;
  let restoreEnv = () => {};
  const dockerfile = fs.readFileSync(DOCKERFILE, "utf8");
  /** Per platform, the demo package's install id of the first build. */
  const firstInstall = new Map<string, string>();

  const config = (
    image: Record<string, unknown> = {},
    ros: Record<string, unknown> = {},
    password = LOGIN.password,
  ): ConfigMap =>
    rosfleetConfig(
      {
        cluster: { kubeconfig: cp?.kubeconfig },
        machines: MACHINES,
        image: {
          build: true,
          repository: world?.repository,
          platforms: ["linux/amd64", "linux/arm64"],
          builder: BUILDER,
          ...image,
        },
        ros: { distro: "jazzy", ...ros },
        dashboard: { enabled: false },
        deliveryCheck: { enabled: false },
        registryUsername: LOGIN.username,
      },
      { registryPassword: password },
    );

  /** Everything the lab declares to run in its namespace: Deployments, bare Pods, Jobs (where
   * the scheduler put a pod is not part of it). */
  async function workloads(): Promise<Workload[]> {
    const lists = await Promise.all(
      [
        "apis/apps/v1/namespaces/rosfleet/deployments",
        "api/v1/namespaces/rosfleet/pods",
        "apis/batch/v1/namespaces/rosfleet/jobs",
      ].map((url) =>
        cp?.api.get<{
          items: (Workload & { metadata: { ownerReferences?: unknown[] } })[];
        }>(`/${url}`),
      ),
    );
    return lists
      .flatMap((l) => l?.items ?? [])
      .filter((o) => o.metadata.ownerReferences === undefined)
      .map((o) => ({
        kind: o.kind,
        metadata: { name: o.metadata.name, namespace: o.metadata.namespace },
        spec: { ...(o.spec as object), nodeName: undefined },
      }));
  }

  const containersOf = (spec: unknown): Container[] => {
    const s = spec as {
      containers?: Container[];
      initContainers?: Container[];
      template?: { spec: { containers: Container[]; initContainers?: Container[] } };
    };
    const pod = s.template?.spec ?? s;
    return [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
  };

  /** Every container image the running lab's pods use (kwok runs what the API has). */
  async function podImages(): Promise<string[]> {
    const pods = await cp?.api.get<{ items: { spec: unknown }[] }>(
      "/api/v1/namespaces/rosfleet/pods",
    );
    return (pods?.items ?? []).flatMap((p) => containersOf(p.spec).map((c) => c.image));
  }

  /** The index `image` points at, and each platform's manifest. */
  async function pushed(image: string) {
    const digest = image.slice(image.indexOf("@") + 1);
    const index = await api.manifest(REPO_PATH, digest);
    const platforms = new Map<string, Manifest>();
    for (const m of index.body.manifests ?? []) {
      if (m.platform === undefined || m.platform.architecture === "unknown") continue;
      platforms.set(m.platform.architecture, (await api.manifest(REPO_PATH, m.digest)).body);
    }
    return { index, platforms };
  }

  before(async function () {
    if (BIN === "")
      throw new Error(
        "the image tier needs the toolchain: run `npm run test:image` (it builds it with scripts/toolchain.sh)",
      );
    const missing = missingImagePrerequisite(BIN);
    if (missing !== undefined) throw new Error(`the image tier cannot run here: ${missing}`);
    ensureEmulation();
    const m = materials();
    world = new ImageWorld(BIN, { host: "127.0.0.1", login: LOGIN });
    await world.start(m);
    api = new RegistryApi(world.lab?.address ?? "", LOGIN);
    cp = await startControlPlane(BIN);
    for (const machine of MACHINES)
      await cp.addNode(machine.name, { "kubernetes.io/arch": machine.arch });
    // The CLI runs the provider with this environment; the inline program (which finds the
    // builder first) runs in this process.
    restoreEnv = world.exportEnv();
    pulumi = await automationStack(BIN, "image", [BIN], world.env());
    stack = pulumi.stack;
  });

  after(async function () {
    fs.writeFileSync(DOCKERFILE, dockerfile);
    restoreEnv();
    if (this.currentTest?.state === "failed") console.error(world?.logs(), cp?.logs());
    await cp?.stop();
    await world?.stop();
    pulumi?.cleanup();
  });

  it("refuses Docker's own builder for two platforms, at preview, naming the key and the fix", async () => {
    await stack.setAllConfig(config({ builder: "default" }));
    const err = await stack.preview().then(
      () => assert.fail("preview passed with a docker-driver builder"),
      (e: unknown) => e as Error,
    );
    assert.match(
      err.message,
      /image\.builder: builder "default" uses the docker driver, which cannot build linux\/amd64 and linux\/arm64 into one image nor push the build cache \(image\.cache\): create one that can \(docker buildx create --name rosfleet --driver docker-container/,
    );
  });

  it("a wrong registry password fails up with one message naming the registry and the keys", async () => {
    await stack.setAllConfig(config({}, {}, "not-the-password"));
    const err = await stack.up().then(
      () => assert.fail("up passed with a wrong registry password"),
      (e: unknown) => e as Error,
    );
    const message = `registryPassword: registry ${world?.lab?.address} (image.repository) refused the login of registryUsername "lab": set the right registryUsername and registryPassword`;
    const diagnostics = err.message.slice(err.message.indexOf("Diagnostics:"));
    assert.ok(diagnostics.includes(message), err.message);
    assert.ok(!err.message.includes("not-the-password"), "the password is not shown");
    assert.equal(await api.exists(REPO_PATH, "jazzy"), false, "nothing was pushed");
    const ns = await cp?.api.request("GET", "/api/v1/namespaces/rosfleet");
    assert.equal(ns?.status, 404, "nothing was created in the cluster");
  });

  it("builds both platforms, each with its own arch's binaries, and every ROS container runs the pushed index by digest", async () => {
    await stack.setAllConfig(config());
    const { result } = await withChanges((onEvent) => stack.up({ onEvent }));
    assert.equal(result.summary.result, "succeeded");
    const image = String(result.outputs.image?.value);
    const tagged = await api.manifest(REPO_PATH, "jazzy");
    assert.equal(image, `${world?.repository}:jazzy@${tagged.digest}`);
    const { platforms } = await pushed(image);
    assert.deepEqual([...platforms.keys()].sort(), ["amd64", "arm64"]);
    for (const [arch, manifest] of platforms) {
      const layers = manifest.layers ?? [];
      // The Dockerfile's two RUN steps are the last two layers: demo nodes, then the toolbox.
      const demo = await api.blob(REPO_PATH, layers[layers.length - 2]?.digest ?? "");
      const toolbox = await api.blob(REPO_PATH, layers[layers.length - 1]?.digest ?? "");
      const installed = layerFiles(demo, "opt/ros/jazzy/share/demo_nodes_cpp/*");
      const on = installed.get("opt/ros/jazzy/share/demo_nodes_cpp/installed-on");
      assert.equal(
        on?.toString().trim(),
        UNAME[arch as "amd64"],
        `${arch}: uname -m of its RUN step`,
      );
      const id = installed.get("opt/ros/jazzy/share/demo_nodes_cpp/install-id")?.toString();
      assert.ok(id !== undefined && id.length > 30, `${arch}: install id`);
      firstInstall.set(arch, id);
      assert.ok(
        layerFiles(demo, "opt/ros/jazzy/lib/demo_nodes_py/listener").size === 1,
        `${arch}: demo_nodes_py installed`,
      );
      const dig = layerFiles(toolbox, "usr/bin/dig").get("usr/bin/dig");
      assert.equal(
        dig?.readUInt16LE(18),
        ELF_MACHINE[arch as "amd64"],
        `${arch}: dig's ELF machine`,
      );
    }
    const images = await podImages();
    assert.ok(images.length >= 4, `the lab's pods run (${images.join(", ")})`);
    assert.deepEqual([...new Set(images)], [image]);
  });

  it("the pull Secret holds the login, the state neither password nor auth in plaintext", async () => {
    const secret = await cp?.api.get<{ data: Record<string, string> }>(
      "/api/v1/namespaces/rosfleet/secrets/rosfleet-registry",
    );
    const auths = (
      JSON.parse(Buffer.from(secret?.data[".dockerconfigjson"] ?? "", "base64").toString()) as {
        auths: Record<string, { username: string; password: string }>;
      }
    ).auths;
    assert.deepEqual(auths[world?.lab?.address ?? ""]?.username, LOGIN.username);
    assert.deepEqual(auths[world?.lab?.address ?? ""]?.password, LOGIN.password);
    const state = stateText(pulumi as AutomationStack, BIN);
    assert.ok(!state.includes(LOGIN.password), "no plaintext registry password");
    assert.ok(
      !state.includes(Buffer.from(`${LOGIN.username}:${LOGIN.password}`).toString("base64")),
      "no registry auth",
    );
  });

  it("a second up changes nothing", async () => {
    const { changes } = await withChanges((onEvent) => stack.up({ onEvent }));
    assert.deepEqual(changeList(changes), []);
  });

  it("image.build false: a published image without the Pi's arm64 is refused at preview, naming the key", async () => {
    const index = await api.manifest(REPO_PATH, "jazzy");
    const amd64 = index.body.manifests?.find((m) => m.platform?.architecture === "amd64");
    assert.ok(amd64 !== undefined, "the build pushed an amd64 image");
    // That image alone under a tag of its own: a single-arch image, as a plain `docker push` makes.
    const base = `http://${world?.lab?.address}/v2/${REPO_PATH}/manifests`;
    const auth = `Basic ${Buffer.from(`${LOGIN.username}:${LOGIN.password}`).toString("base64")}`;
    const got = await fetch(`${base}/${amd64.digest}`, {
      headers: { Authorization: auth, Accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    assert.equal(got.status, 200);
    const put = await fetch(`${base}/amd64-only`, {
      method: "PUT",
      headers: {
        Authorization: auth,
        "Content-Type":
          got.headers.get("content-type") ?? "application/vnd.oci.image.manifest.v1+json",
      },
      body: Buffer.from(await got.arrayBuffer()),
    });
    assert.equal(put.status, 201, await put.text());
    await stack.setAllConfig(
      config({ build: false, repository: `${world?.repository}:amd64-only` }),
    );
    const err = await stack.preview().then(
      () => assert.fail("preview passed with an amd64-only image and an arm64 machine"),
      (e: unknown) => e as Error,
    );
    assert.match(
      err.message,
      /image\.repository: \S+:amd64-only has only linux\/amd64, but image-pi \(linux\/arm64\) would run it: publish it for linux\/amd64 and linux\/arm64 \(docker buildx build --platform linux\/amd64,linux\/arm64 --push\), or let rosfleet build it \(image\.build: true\)/,
    );
    // The two-platform index the build pushed passes the same check.
    await stack.setAllConfig(
      config({ build: false, repository: `${world?.repository}@${index.digest}` }),
    );
    const preview = await stack.preview();
    assert.doesNotMatch(preview.stdout, /could not check which platforms/);
  });

  it("a Dockerfile change rebuilds from the registry cache and changes only the pods' image", async () => {
    const before = await workloads();
    const previous = String((await stack.outputs()).image?.value);
    // A BuildKit without any local cache: what the build reuses can only come from the registry.
    await world?.startBuildKit();
    fs.writeFileSync(DOCKERFILE, `${dockerfile}LABEL org.rosfleet.test.change="1"\n`);
    try {
      const { result, changes } = await withChanges((onEvent) => stack.up({ onEvent }));
      const image = String(result.outputs.image?.value);
      assert.notEqual(image, previous);
      assertOnlyImagesChanged(before, await workloads(), previous, image);
      assert.ok(changes.has([...changes.keys()].find((u) => nameOf(u) === "ros-demo-build") ?? ""));
      const { platforms } = await pushed(image);
      for (const [arch, manifest] of platforms) {
        const layers = manifest.layers ?? [];
        const demo = await api.blob(REPO_PATH, layers[layers.length - 2]?.digest ?? "");
        const id = layerFiles(demo, "opt/ros/jazzy/share/demo_nodes_cpp/install-id")
          .get("opt/ros/jazzy/share/demo_nodes_cpp/install-id")
          ?.toString();
        assert.equal(id, firstInstall.get(arch), `${arch}: the RUN layer came from the cache`);
      }
    } finally {
      fs.writeFileSync(DOCKERFILE, dockerfile);
    }
  });

  it("the FROM line's distro argument changes the digest and nothing else in the workloads", async () => {
    const before = await workloads();
    const previous = String((await stack.outputs()).image?.value);
    await stack.setAllConfig(config({}, { distro: "humble" }));
    const { result } = await withChanges((onEvent) => stack.up({ onEvent }));
    const image = String(result.outputs.image?.value);
    assert.match(image, new RegExp(`^${world?.repository}:humble@sha256:[0-9a-f]{64}$`));
    assertOnlyImagesChanged(before, await workloads(), previous, image);
    assert.deepEqual([...new Set(await podImages())], [image]);
  });

  it("a registry that refuses the build cache does not fail the build", async () => {
    // In front of the lab registry, refusing cache manifests as some registries do.
    let refused = 0;
    const port = await freePort();
    const upstream = world?.lab?.address ?? "";
    const proxy = http.createServer((req, res) => {
      if (req.method === "PUT" && /\/manifests\/buildcache-/.test(req.url ?? "")) {
        refused += 1;
        req.resume();
        res.writeHead(400, { "Content-Type": "application/json" });
        res.end(
          '{"errors":[{"code":"MANIFEST_INVALID","message":"cache manifests are not accepted"}]}',
        );
        return;
      }
      const [host, p] = upstream.split(":");
      const forward = http.request(
        { host, port: Number(p), path: req.url, method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(forward);
    });
    await new Promise<void>((r) => proxy.listen(port, "127.0.0.1", r));
    try {
      await world?.startBuildKit([`127.0.0.1:${port}`]);
      await stack.setAllConfig(
        config({ repository: `127.0.0.1:${port}/${REPO_PATH}` }, { distro: "humble" }),
      );
      const { result } = await withChanges((onEvent) => stack.up({ onEvent }));
      assert.equal(result.summary.result, "succeeded");
      assert.ok(refused > 0, "the build tried to push its cache and was refused");
      assert.match(String(result.outputs.image?.value), /:humble@sha256:[0-9a-f]{64}$/);
    } finally {
      proxy.close();
    }
  });

  it("destroy leaves nothing of rosfleet in the API", async () => {
    const objects = await stateObjects(stack);
    await stack.destroy();
    assert.deepEqual(await leftInCluster(objects, (url) => cp?.api.request("GET", url)), []);
  });
});

/** `after` is `before` with `from` replaced by `to` in container images, and nothing else. */
function assertOnlyImagesChanged(
  before: readonly Workload[],
  after: readonly Workload[],
  from: string,
  to: string,
): void {
  const key = (w: Workload) => `${w.kind}/${w.metadata.name}`;
  const normal = (ws: readonly Workload[], image: string) =>
    Object.fromEntries(
      ws.map((w) => [
        key(w),
        JSON.parse(
          JSON.stringify(w.spec).split(JSON.stringify(image)).join('"<image>"'),
        ) as unknown,
      ]),
    );
  assert.ok(before.length >= 4, `workloads there before (${before.map(key).join(", ")})`);
  const a = normal(before, from);
  const b = normal(after, to);
  assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
  for (const k of Object.keys(a)) assert.deepEqual(b[k], a[k], `${k}: only its image changed`);
  assert.ok(!JSON.stringify(after).includes(from), "no workload keeps the old image");
}
