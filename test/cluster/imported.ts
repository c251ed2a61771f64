// The dev stack's image path on the cluster tier's real parts: Debian's dockerd builds
// images/ros_demo/Dockerfile with Docker's own builder, and components/image/import.sh, sent
// exactly as the program's step sends it, imports it into a real node's containerd. k3s itself
// cannot be had here: a stand-in `k3s` whose only command, `ctr`, is the toolchain's real ctr on
// that node's socket.
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { bundleLine, scriptBundle } from "../../components/shell";
import { importScript, removeScript, sourcesDigest } from "../../components/image/imported";
import { LOCAL_REPOSITORY } from "../../components/common/image-reference";
import { REPO_ROOT } from "../helpers/stack";
import { waitUntil } from "../e2e/lab";
import { AptServer, Materials } from "../image/world";
import type { ClusterNode } from "./nodes";

/** What a step run printed and how it ended. */
export interface StepRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export class DockerImport {
  private dockerd: ChildProcess | undefined;
  private apt: AptServer | undefined;
  /** Docker's tags this made (removed by stop, with the untagged layers they leave). */
  private readonly tags: string[] = [];
  readonly root: string;

  constructor(
    private readonly dir: string,
    private readonly bin: string,
    private readonly node: ClusterNode,
  ) {
    this.root = path.join(dir, "k3s-root");
  }

  /** dockerd, the stand-in k3s, and `ros:<distro>-ros-base` in Docker's store (from the image
   * world's mirror, its apt source pointed at a server dockerd's bridge reaches). */
  async start(m: Materials, mirror: string, distro: string): Promise<void> {
    this.dockerd = await startDockerd(path.join(this.dir, "dockerd.log"));
    const bin = path.join(this.root, "usr", "local", "bin");
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(
      path.join(bin, "k3s"),
      `#!/bin/sh\n# stand-in k3s: only \`k3s ctr\`, the real ctr on ${this.node.name}'s containerd\n[ "$1" = ctr ] || { echo "stand-in k3s: only ctr" >&2; exit 2; }\nshift\nexec ${path.join(this.bin, "ctr")} --address ${this.node.socket} "$@"\n`,
      { mode: 0o755 },
    );
    const gateway = docker([
      "network",
      "inspect",
      "bridge",
      "-f",
      "{{(index .IPAM.Config 0).Gateway}}",
    ]).trim();
    this.apt = await AptServer.start(m.apt, gateway);
    const base = `${mirror}/library/ros:${distro}-ros-base`;
    docker(["pull", "-q", base]);
    this.tags.push(base, `ros:${distro}-ros-base`);
    const ctx = fs.mkdtempSync(path.join(this.dir, "base-"));
    fs.writeFileSync(
      path.join(ctx, "Dockerfile"),
      `FROM ${base}\nRUN echo 'deb [trusted=yes] ${this.apt.url} ./' >/etc/apt/sources.list.d/ros2.list\n`,
    );
    docker(["build", "-q", "-t", `ros:${distro}-ros-base`, ctx]);
  }

  /** Runs the program's import step action as the local Command would (its line, its stdin). */
  run(action: "create" | "delete", distro: "jazzy" | "humble"): StepRun {
    const params = {
      repository: LOCAL_REPOSITORY,
      distro,
      context: "images/ros_demo",
      sources: sourcesDigest(path.join(REPO_ROOT, "images", "ros_demo")),
      install: "cluster-tier-install",
      root: this.root,
    };
    // What the step sends (machine/step.ts): its command line, and the bundle on stdin.
    const stdin = scriptBundle({ create: importScript(params), delete: removeScript(params) });
    const line = bundleLine(action, { asRoot: true });
    const r = spawnSync("/bin/sh", ["-c", line], {
      cwd: REPO_ROOT,
      env: dockerEnv(),
      input: stdin,
      encoding: "utf8",
      timeout: 20 * 60_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** The node's containerd images: name → labels, as `ctr images ls` prints them. */
  images(): Map<string, string> {
    const r = spawnSync(
      path.join(this.bin, "ctr"),
      ["--address", this.node.socket, "-n", "k8s.io", "images", "ls"],
      { encoding: "utf8" },
    );
    const rows = r.stdout.trim().split("\n").slice(1);
    return new Map(
      rows.map((row) => {
        const cols = row.trim().split(/\s+/);
        return [cols[0], cols[cols.length - 1]] as const;
      }),
    );
  }

  logs(): string {
    const log = path.join(this.dir, "dockerd.log");
    return [
      fs.existsSync(log) ? fs.readFileSync(log, "utf8").slice(-4000) : "",
      this.apt?.logs() ?? "",
    ].join("\n");
  }

  async stop(): Promise<void> {
    await this.apt?.stop();
    for (const tag of this.tags)
      spawnSync("docker", ["image", "rm", "-f", tag], { stdio: "ignore", env: dockerEnv() });
    spawnSync("docker", ["image", "prune", "-f"], { stdio: "ignore", env: dockerEnv() });
    if (this.dockerd !== undefined) {
      this.dockerd.kill("SIGTERM");
      await new Promise((r) => this.dockerd?.once("exit", r));
    }
  }
}

/** The environment Docker's clients get: the tier's image world points DOCKER_HOST and
 * DOCKER_CONFIG of this process away from any Docker daemon (world.ts exportEnv). */
export function dockerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.DOCKER_HOST;
  delete env.DOCKER_CONFIG;
  return env;
}

/** dockerd, unless one answers; its log in `logFile`. */
async function startDockerd(logFile: string): Promise<ChildProcess | undefined> {
  const answers = () =>
    spawnSync("docker", ["info"], { stdio: "ignore", env: dockerEnv() }).status === 0;
  if (answers()) return undefined;
  const log = fs.openSync(logFile, "a");
  const dockerd = spawn("dockerd", [], { stdio: ["ignore", log, log] });
  try {
    await waitUntil("dockerd did not answer", answers, 60);
  } catch (e) {
    dockerd.kill("SIGTERM");
    throw new Error(`${(e as Error).message}: ${fs.readFileSync(logFile, "utf8").slice(-3000)}`, {
      cause: e,
    });
  }
  return dockerd;
}

/** `docker ARGS`, its stdout; throws with its stderr when it fails. */
export function docker(args: readonly string[]): string {
  const r = spawnSync("docker", args, { encoding: "utf8", timeout: 15 * 60_000, env: dockerEnv() });
  if (r.status !== 0) throw new Error(`docker ${args.join(" ")}: ${r.stderr.slice(-3000)}`);
  return r.stdout;
}
