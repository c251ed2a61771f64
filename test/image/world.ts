// What rosfleet's image stage needs around it, made on this machine for the image and cluster
// tiers: a registry for the lab's image (optionally behind a login), a second one that BuildKit
// uses as its docker.io mirror holding the `ros:<distro>-ros-base` images (made here from the
// roots of images.sh), an apt repository with the demo-node packages, BuildKit itself, and a
// `remote` buildx builder for it in a Docker config of its own (no Docker daemon, no buildx CLI:
// the docker-build provider embeds buildx). Everything listens on an address given (loopback or
// the cluster tier's hub address) and is removed by stop().
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort, stopProcess, waitFor } from "../engine/controlplane";
import { missingDebianFile } from "../cluster/nodes";

/** What this host lacks for the image stage's world, or undefined. */
export function missingImagePrerequisite(bin: string): string | undefined {
  if (process.getuid?.() !== 0) return "it must run as root (BuildKit, debootstrap, chroot)";
  for (const tool of ["pulumi-resource-docker-build", "buildkitd", "buildctl"])
    if (!fs.existsSync(path.join(bin, tool)))
      return `the toolchain has no ${tool} (scripts/toolchain.sh docker-build buildkit)`;
  return missingDebianFile([
    ["/usr/bin/docker-registry", "docker-registry"],
    ["/usr/bin/htpasswd", "apache2-utils"],
    ["/usr/bin/dpkg-scanpackages", "dpkg-dev"],
    ["/usr/sbin/debootstrap", "debootstrap"],
    ["/usr/sbin/runc", "runc"],
    ["/usr/bin/qemu-aarch64-static", "qemu-user-static"],
  ]);
}

/** What images.sh made (cached): the base roots, the apt repository, the pod sandbox. */
export interface Materials {
  readonly roots: { readonly amd64: string; readonly arm64: string };
  readonly apt: string;
  readonly pause: { readonly archive: string; readonly name: string; readonly digest: string };
}

/** Runs images.sh (builds once, then prints what is cached). */
export function materials(): Materials {
  const out = execFileSync("bash", [path.join(__dirname, "images.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = (name: string): string[] => {
    const found = out.split("\n").find((l) => l.startsWith(`${name} `));
    if (found === undefined) throw new Error(`images.sh printed no ${name}:\n${out}`);
    return found.split(" ").slice(1);
  };
  const [archive, name, digest] = line("pause");
  return {
    roots: { amd64: line("root-amd64")[0], arm64: line("root-arm64")[0] },
    apt: line("apt")[0],
    pause: { archive, name, digest },
  };
}

/** A child process whose output is kept (the tail) for failure reports. */
class Daemon {
  private output = "";
  readonly proc: ChildProcess;

  constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
  ) {
    this.proc = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString("utf8")).slice(-20_000);
    };
    this.proc.stdout?.on("data", keep);
    this.proc.stderr?.on("data", keep);
  }

  logs(): string {
    return `--- ${this.name} (exit ${this.proc.exitCode ?? this.proc.signalCode ?? "running"})\n${this.output}`;
  }

  stop(): Promise<void> {
    return stopProcess(this.proc, 10_000);
  }
}

/** HTTP on `address`: true once it answers at all. */
async function answers(url: string): Promise<boolean> {
  const r = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await r.arrayBuffer();
  return true;
}

export interface Login {
  readonly username: string;
  readonly password: string;
}

/** A Docker registry (Debian's docker-registry 2.8) on host:port, storage in `dir`. */
export class Registry {
  private constructor(
    private readonly daemon: Daemon,
    /** host:port */
    readonly address: string,
  ) {}

  static async start(dir: string, host: string, login?: Login): Promise<Registry> {
    fs.mkdirSync(dir, { recursive: true });
    const port = await freePort(host);
    const auth =
      login === undefined
        ? ""
        : `auth:\n  htpasswd:\n    realm: rosfleet-test\n    path: ${path.join(dir, "htpasswd")}\n`;
    if (login !== undefined)
      fs.writeFileSync(
        path.join(dir, "htpasswd"),
        execFileSync("htpasswd", ["-Bbn", login.username, login.password], { encoding: "utf8" }),
      );
    const config = path.join(dir, "config.yml");
    fs.writeFileSync(
      config,
      `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${path.join(dir, "data")}
  delete:
    enabled: true
http:
  addr: ${host}:${port}
${auth}`,
    );
    const daemon = new Daemon(`registry ${host}:${port}`, "docker-registry", ["serve", config]);
    const registry = new Registry(daemon, `${host}:${port}`);
    await waitFor(
      "registry",
      () => answers(`http://${registry.address}/v2/`),
      30_000,
      () => daemon.logs(),
    );
    return registry;
  }

  logs = (): string => this.daemon.logs();
  stop = (): Promise<void> => this.daemon.stop();
}

/** BuildKit's daemon with its state in `dir`, the OCI worker on Debian's runc. */
export class BuildKit {
  private constructor(
    private readonly daemon: Daemon,
    private readonly dir: string,
    /** unix:///…/buildkitd.sock */
    readonly endpoint: string,
    private readonly bin: string,
  ) {}

  /**
   * `mirror` (host:port, plain HTTP) stands in for docker.io; `plainHttp` lists the other
   * registries reached without TLS.
   */
  static async start(
    bin: string,
    dir: string,
    mirror: string,
    plainHttp: readonly string[],
  ): Promise<BuildKit> {
    fs.mkdirSync(dir, { recursive: true });
    const endpoint = `unix://${path.join(dir, "buildkitd.sock")}`;
    const registries = [mirror, ...plainHttp]
      .map((r) => `[registry."${r}"]\n  http = true\n  insecure = true\n`)
      .join("");
    const config = path.join(dir, "buildkitd.toml");
    fs.writeFileSync(
      config,
      `root = "${path.join(dir, "root")}"
[grpc]
  address = ["${endpoint}"]
[worker.oci]
  enabled = true
  binary = "/usr/sbin/runc"
  snapshotter = "overlayfs"
  # RUN steps reach the apt repository and Debian's mirror from the host's network.
  networkMode = "host"
  gc = false
  platforms = ["linux/amd64", "linux/arm64"]
[worker.containerd]
  enabled = false
[registry."docker.io"]
  mirrors = ["${mirror}"]
${registries}`,
    );
    const daemon = new Daemon("buildkitd", path.join(bin, "buildkitd"), ["--config", config]);
    const kit = new BuildKit(daemon, dir, endpoint, bin);
    await waitFor(
      "buildkitd",
      () => Promise.resolve(kit.ctl(["debug", "workers"]).status === 0),
      60_000,
      () => daemon.logs(),
    );
    return kit;
  }

  /** `buildctl ARGS` against this daemon. */
  ctl(args: readonly string[]) {
    return spawnSyncText(path.join(this.bin, "buildctl"), ["--addr", this.endpoint, ...args]);
  }

  logs = (): string => this.daemon.logs();

  async stop(): Promise<void> {
    await this.daemon.stop();
    // Snapshots a killed daemon left mounted.
    const mounts = fs
      .readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[1] ?? "")
      .filter((m) => m.startsWith(this.dir))
      .reverse();
    for (const m of mounts) spawnSyncText("umount", ["-l", m]);
  }
}

const spawnSyncText = (command: string, args: readonly string[]) =>
  spawnSync(command, args, { encoding: "utf8", timeout: 20 * 60_000, maxBuffer: 64 << 20 });

/**
 * A Docker config dir whose only buildx builder is a `remote` one named `name` at `endpoint`,
 * as `docker buildx create --name NAME --driver remote ENDPOINT` writes it.
 */
export function writeRemoteBuilder(dockerConfig: string, name: string, endpoint: string): void {
  const instances = path.join(dockerConfig, "buildx", "instances");
  fs.mkdirSync(instances, { recursive: true });
  fs.writeFileSync(
    path.join(instances, name),
    JSON.stringify({
      Name: name,
      Driver: "remote",
      Nodes: [{ Name: `${name}0`, Endpoint: endpoint, Platforms: null, Flags: null, Files: null }],
      Dynamic: false,
    }),
  );
  fs.writeFileSync(path.join(dockerConfig, "config.json"), "{}\n");
}

/** The distros the base images and demo packages exist for (images.sh). */
export const TEST_DISTROS = ["jazzy", "humble"] as const;

/**
 * Pushes `ros:<distro>-ros-base` for amd64 and arm64 to the mirror, made from the cached roots,
 * with an apt source for the demo packages at `aptUrl`: what `FROM ros:${ROS_DISTRO}-ros-base`
 * pulls. Humble is Jazzy's root under Humble's name (the build needs the layout, not the distro).
 */
export function pushBaseImages(kit: BuildKit, m: Materials, mirror: string, aptUrl: string) {
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-base-"));
  try {
    for (const arch of ["amd64", "arm64"] as const) {
      const target = path.join(ctx, `root-${arch}.tar`);
      try {
        fs.linkSync(m.roots[arch], target);
      } catch {
        fs.copyFileSync(m.roots[arch], target);
      }
    }
    fs.writeFileSync(path.join(ctx, "ros2.list"), `deb [trusted=yes] ${aptUrl} ./\n`);
    fs.mkdirSync(path.join(ctx, "humble", "opt", "ros"), { recursive: true });
    fs.symlinkSync("jazzy", path.join(ctx, "humble", "opt", "ros", "humble"));
    fs.mkdirSync(path.join(ctx, "jazzy"));
    fs.writeFileSync(
      path.join(ctx, "Dockerfile"),
      `FROM scratch
ARG TARGETARCH
ARG ROS_DISTRO
ADD root-\${TARGETARCH}.tar /
COPY \${ROS_DISTRO}/ /
COPY ros2.list /etc/apt/sources.list.d/ros2.list
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 ROS_DISTRO=\${ROS_DISTRO}
ENTRYPOINT ["/ros_entrypoint.sh"]
CMD ["bash"]
`,
    );
    for (const distro of TEST_DISTROS) {
      const r = kit.ctl([
        "build",
        "--frontend",
        "dockerfile.v0",
        "--local",
        `context=${ctx}`,
        "--local",
        `dockerfile=${ctx}`,
        "--opt",
        "platform=linux/amd64,linux/arm64",
        "--opt",
        `build-arg:ROS_DISTRO=${distro}`,
        "--output",
        `type=image,name=${mirror}/library/ros:${distro}-ros-base,push=true,registry.insecure=true`,
      ]);
      if (r.status !== 0)
        throw new Error(`base image ros:${distro}-ros-base: ${r.stderr.slice(-4000)}`);
    }
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
}

/** The apt repository served over HTTP on host (python's http.server). */
export class AptServer {
  private constructor(
    private readonly daemon: Daemon,
    readonly url: string,
  ) {}

  static async start(dir: string, host: string): Promise<AptServer> {
    const port = await freePort(host);
    const daemon = new Daemon("apt", "python3", [
      "-m",
      "http.server",
      String(port),
      "--bind",
      host,
      "--directory",
      dir,
    ]);
    const server = new AptServer(daemon, `http://${host}:${port}/`);
    await waitFor(
      "apt repository",
      () => answers(`${server.url}Packages`),
      30_000,
      () => daemon.logs(),
    );
    return server;
  }

  logs = (): string => this.daemon.logs();
  stop = (): Promise<void> => this.daemon.stop();
}

export const BUILDER = "rosfleet-test";

export interface WorldOptions {
  /** Where the lab's registry listens (the cluster tier's nodes pull from it). */
  readonly host: string;
  /** The lab registry's login (htpasswd), if any. */
  readonly login?: Login;
}

/** Everything above, started in order and stopped in reverse. */
export class ImageWorld {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-image-"));
  readonly dockerConfig = path.join(this.dir, "docker");
  mirror: Registry | undefined;
  lab: Registry | undefined;
  apt: AptServer | undefined;
  kit: BuildKit | undefined;
  private kits = 0;

  constructor(
    private readonly bin: string,
    private readonly options: WorldOptions,
  ) {}

  async start(m: Materials): Promise<void> {
    this.mirror = await Registry.start(path.join(this.dir, "mirror"), "127.0.0.1");
    this.lab = await Registry.start(
      path.join(this.dir, "lab"),
      this.options.host,
      this.options.login,
    );
    this.apt = await AptServer.start(m.apt, "127.0.0.1");
    await this.startBuildKit();
    pushBaseImages(this.requireKit(), m, this.mirror.address, this.apt.url);
  }

  /**
   * A BuildKit with no local cache (a fresh state dir) and the builder that names it; `plainHttp`
   * are more registries it reaches without TLS.
   */
  async startBuildKit(plainHttp: readonly string[] = []): Promise<void> {
    await this.kit?.stop();
    this.kits += 1;
    this.kit = await BuildKit.start(
      this.bin,
      path.join(this.dir, `buildkit-${this.kits}`),
      this.mirror?.address ?? "",
      [this.lab?.address ?? "", ...plainHttp],
    );
    writeRemoteBuilder(this.dockerConfig, BUILDER, this.kit.endpoint);
  }

  private requireKit(): BuildKit {
    if (this.kit === undefined) throw new Error("BuildKit is not running");
    return this.kit;
  }

  /** Where the lab pushes: `<lab registry>/rosfleet/ros_demo`. */
  get repository(): string {
    return `${this.lab?.address}/rosfleet/ros_demo`;
  }

  /**
   * The CLI's environment for the provider: this Docker config (its one builder), and a Docker
   * daemon that is not there, so nothing falls back to one.
   */
  env(): Record<string, string> {
    return {
      DOCKER_CONFIG: this.dockerConfig,
      DOCKER_HOST: `unix://${path.join(this.dir, "no-docker.sock")}`,
    };
  }

  /**
   * The same environment for this process, where an inline program runs (it finds the builder
   * before the provider does); returns what puts the old one back.
   */
  exportEnv(): () => void {
    const old = Object.entries(this.env()).map(([k]) => [k, process.env[k]] as const);
    Object.assign(process.env, this.env());
    return () => {
      for (const [k, v] of old)
        if (v === undefined) Reflect.deleteProperty(process.env, k);
        else process.env[k] = v;
    };
  }

  logs(): string {
    return [this.kit, this.lab, this.mirror, this.apt].map((d) => d?.logs() ?? "").join("\n");
  }

  async stop(): Promise<void> {
    for (const d of [this.kit, this.apt, this.lab, this.mirror]) await d?.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The registry API of the lab registry, as the test reads what was pushed. */
export class RegistryApi {
  constructor(
    private readonly address: string,
    private readonly login?: Login,
  ) {}

  private get(urlPath: string, accept?: string): Promise<Response> {
    const headers: Record<string, string> = {};
    if (accept !== undefined) headers.Accept = accept;
    if (this.login !== undefined)
      headers.Authorization = `Basic ${Buffer.from(`${this.login.username}:${this.login.password}`).toString("base64")}`;
    return fetch(`http://${this.address}/v2/${urlPath}`, { headers });
  }

  /** A manifest or index by tag or digest, with the digest the registry gives it. */
  async manifest(repo: string, ref: string): Promise<{ digest: string; body: Manifest }> {
    const r = await this.get(
      `${repo}/manifests/${ref}`,
      [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
      ].join(", "),
    );
    if (!r.ok) throw new Error(`manifest ${repo}:${ref}: ${r.status} ${await r.text()}`);
    return {
      digest: r.headers.get("docker-content-digest") ?? "",
      body: (await r.json()) as Manifest,
    };
  }

  async exists(repo: string, ref: string): Promise<boolean> {
    return await this.manifest(repo, ref).then(
      () => true,
      () => false,
    );
  }

  /** A blob's bytes. */
  async blob(repo: string, digest: string): Promise<Buffer> {
    const r = await this.get(`${repo}/blobs/${digest}`);
    if (!r.ok) throw new Error(`blob ${digest}: ${r.status}`);
    return Buffer.from(await r.arrayBuffer());
  }
}

export interface Manifest {
  readonly mediaType?: string;
  readonly manifests?: readonly {
    readonly digest: string;
    readonly platform?: { readonly architecture: string; readonly os: string };
    readonly annotations?: Record<string, string>;
  }[];
  readonly layers?: readonly { readonly digest: string; readonly mediaType: string }[];
  readonly config?: { readonly digest: string };
}
