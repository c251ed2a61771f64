// The e2e tiers' lab: each machine a Docker container of its own (its own filesystem, processes
// and address on a bridge this harness makes), booted from a Debian root made with debootstrap
// — arm64 ones run under qemu-user emulation, so `uname -m` says aarch64 for real — running
// OpenSSH with a user who has key authentication and passwordless sudo. What a container cannot
// have stands in: systemd (test/e2e/standins/systemctl) and k3s with its installer, which reach
// the machines as k3s.airgap files (see `airgapFiles`). Behind the k3s stand-in is a real API
// server from the toolchain (scripts/toolchain.sh), mounted read-only. Needs root and a Docker
// engine (started here when none runs); everything made is removed by `stop()` except the
// images, which later runs reuse.
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SshRun, sshRun, waitForPort } from "../ssh/host";
import { EMULATOR, ensureEmulation } from "../helpers/emulation";

export type Arch = "amd64" | "arm64";

export interface LabMachine {
  readonly name: string;
  readonly arch: Arch;
}

export interface LabHost extends LabMachine {
  /** On eth0, the lab's network (the default route). */
  readonly ip: string;
  /** On eth1, a second network, as a Pi's Wi-Fi beside its Ethernet. */
  readonly wifiIp: string;
  readonly container: string;
}

export const LAB_USER = "lab";
/** The k3s release the stand-in reports, as the stacks of the lab and e2e tiers pin it. */
export const LAB_K3S_VERSION = "v1.33.5+k3s1";
/** The lab of the lab and e2e tiers: the laptop serves, an arm64 and an amd64 agent join. */
export const LAB_MACHINES = [
  { name: "e2e-laptop", arch: "amd64", role: "server", kind: "laptop" },
  { name: "e2e-arm", arch: "arm64", role: "agent", kind: "vm" },
  { name: "e2e-vm", arch: "amd64", role: "agent", kind: "vm" },
] as const;
const NETWORK = "rosfleet-e2e";
/** Every machine's second interface (eth1): a Pi with both Wi-Fi and Ethernet. */
const WIFI_NETWORK = "rosfleet-e2e-wifi";
const WIFI_SUBNET = "172.31.253";
/** The lab's bridge: the host is .1, machines from .10. */
const SUBNET = "172.31.252";
const STANDINS = path.join(__dirname, "standins");
const PACKAGES = [
  "openssh-server",
  "sudo",
  "curl",
  "iproute2",
  "procps",
  "kmod",
  "ca-certificates",
  "openssl",
];
/** Run in the machine's root (chroot) before it becomes an image. */
const SETUP = [
  `useradd -m -s /bin/bash -p '*' ${LAB_USER}`,
  `echo '${LAB_USER} ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/${LAB_USER}`,
  `chmod 0440 /etc/sudoers.d/${LAB_USER}`,
  `install -d -m 0700 -o ${LAB_USER} -g ${LAB_USER} /home/${LAB_USER}/.ssh`,
  "mkdir -p /run/sshd",
  // systemd's marker (preflight checks it): systemd itself is a stand-in here, like systemctl.
  "mkdir -p /run/systemd/system",
  // sudo's secure_path starts with /usr/local/sbin: the scripts' `systemctl` is the stand-in.
  "ln -sf /opt/rosfleet-standins/systemctl /usr/local/sbin/systemctl",
  "rm -f /etc/ssh/ssh_host_*",
].join(" && ");
const BOOT = "ssh-keygen -A >/dev/null && exec /usr/sbin/sshd -D -e";

const ok = (cmd: string, args: readonly string[]) =>
  spawnSync(cmd, args, { stdio: "ignore" }).status === 0;
const docker = (args: readonly string[], input?: string) =>
  execFileSync("docker", args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });

/** Why this machine cannot run the lab, or undefined when it can. */
export function missingPrerequisite(machines: readonly LabMachine[]): string | undefined {
  if (process.getuid?.() !== 0) return "it must run as root (Docker, debootstrap, chroot)";
  if (!ok("sh", ["-c", "command -v docker"]))
    return "docker is missing (apt-get install docker.io)";
  if (!ok("docker", ["info"]) && !ok("sh", ["-c", "command -v dockerd"]))
    return "no Docker engine runs and dockerd is missing (apt-get install docker.io)";
  if (!fs.existsSync("/usr/sbin/debootstrap"))
    return "debootstrap is missing (apt-get install debootstrap)";
  if (!ok("sh", ["-c", "command -v ssh"])) return "ssh is missing (apt-get install openssh-client)";
  if (
    machines.some((m) => m.arch !== hostArch()) &&
    !fs.existsSync(EMULATOR) &&
    !fs.existsSync("/usr/sbin/update-binfmts")
  )
    return "arm64 machines need qemu-user emulation (apt-get install qemu-user-static binfmt-support)";
  return undefined;
}

/** The Debian mirror this machine's own apt uses (test/helpers/debian-mirror.sh). */
const debianMirror = (): string =>
  execFileSync("bash", [path.join(__dirname, "..", "helpers", "debian-mirror.sh"), "bookworm"], {
    encoding: "utf8",
  }).trim();

const hostArch = (): Arch => (process.arch === "arm64" ? "arm64" : "amd64");

/** The image of a machine of `arch`: built once (debootstrap ~35 s, arm64 longer), then reused. */
export function hostImage(arch: Arch, log: (line: string) => void): string {
  const digest = createHash("sha256")
    .update(JSON.stringify([PACKAGES, SETUP, BOOT]))
    .digest("hex")
    .slice(0, 12);
  const tag = `rosfleet-e2e-host:${arch}-${digest}`;
  if (ok("docker", ["image", "inspect", tag])) return tag;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `rosfleet-e2e-${arch}-`));
  const started = Date.now();
  try {
    execFileSync(
      "debootstrap",
      [
        "--variant=minbase",
        `--arch=${arch}`,
        `--include=${PACKAGES.join(",")}`,
        "bookworm",
        root,
        debianMirror(),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    execFileSync("chroot", [root, "/bin/sh", "-c", SETUP]);
    execFileSync("sh", [
      "-c",
      `tar -C "$1" -c . | docker import --change "CMD [\\"/bin/sh\\", \\"-c\\", \\"$2\\"]" - "$3"`,
      "sh",
      root,
      BOOT,
      tag,
    ]);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  log(`lab: built ${tag} in ${Math.round((Date.now() - started) / 1000)} s`);
  return tag;
}

/** Waits until `check` holds; throws `what` after `seconds`. */
export async function waitUntil(
  what: string,
  check: () => boolean,
  seconds: number,
): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} after ${seconds} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Starts dockerd (logging to `logFile`) unless one answers; returns the one it started. */
export async function ensureDockerd(logFile: string): Promise<ChildProcess | undefined> {
  if (ok("docker", ["info"])) return undefined;
  const log = fs.openSync(logFile, "a");
  const dockerd = spawn("dockerd", [], { stdio: ["ignore", log, log] });
  await waitUntil("dockerd did not answer", () => ok("docker", ["info"]), 60);
  return dockerd;
}

export class Lab {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-lab-"));
  /** The SSH private key the machines accept (the stack's sshPrivateKey). */
  readonly key = path.join(this.dir, "id_ed25519");
  readonly hosts: readonly LabHost[];
  private dockerd: ChildProcess | undefined;

  /** `toolchain`: the bin directory of scripts/toolchain.sh (mounted at /opt/rosfleet-toolchain). */
  constructor(
    machines: readonly LabMachine[],
    private readonly toolchain: string,
    private readonly log: (line: string) => void = (line) => console.log(`    ${line}`),
  ) {
    this.hosts = machines.map((m, i) => ({
      ...m,
      ip: `${SUBNET}.${10 + i}`,
      wifiIp: `${WIFI_SUBNET}.${10 + i}`,
      container: `rosfleet-e2e-${m.name}`,
    }));
  }

  host(name: string): LabHost {
    const host = this.hosts.find((h) => h.name === name);
    if (host === undefined) throw new Error(`no lab machine ${name}`);
    return host;
  }

  async start(): Promise<void> {
    await this.ensureDocker();
    if (this.hosts.some((h) => h.arch !== hostArch())) ensureEmulation();
    this.removeContainers();
    docker(["network", "create", "--subnet", `${SUBNET}.0/24`, NETWORK]);
    docker(["network", "create", "--subnet", `${WIFI_SUBNET}.0/24`, WIFI_NETWORK]);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", this.key]);
    const publicKey = fs.readFileSync(`${this.key}.pub`, "utf8");
    for (const h of this.hosts) {
      const image = hostImage(h.arch, this.log);
      docker([
        ...["run", "-d", "--name", h.container, "--hostname", h.name],
        ...["--network", NETWORK, "--ip", h.ip],
        ...["-v", `${STANDINS}:/opt/rosfleet-standins:ro`],
        ...["-v", `${this.toolchain}:/opt/rosfleet-toolchain:ro`],
        image,
      ]);
      docker(["network", "connect", "--ip", h.wifiIp, WIFI_NETWORK, h.container]);
      docker(
        [
          ...["exec", "-i", h.container, "sh", "-c"],
          `f=/home/${LAB_USER}/.ssh/authorized_keys; cat >"$f" && chown ${LAB_USER}: "$f" && chmod 0600 "$f"`,
        ],
        publicKey,
      );
    }
    // arm64 machines make their host keys under emulation: allow them time.
    for (const h of this.hosts) await waitForPort(22, 120, h.ip);
  }

  private async ensureDocker(): Promise<void> {
    this.dockerd = await ensureDockerd(path.join(this.dir, "dockerd.log"));
  }

  /** Sends `commandLine` to `host` as its SSH user, `stdin` as input: what the provider does. */
  ssh(host: LabHost, commandLine: string, stdin = ""): Promise<SshRun> {
    return sshRun({ key: this.key, port: 22, user: LAB_USER, host: host.ip }, commandLine, stdin);
  }

  /** Runs `script` as root on `host` (for a test's own looks, not rosfleet's steps). */
  root(host: LabHost, script: string): SshRun {
    const r = spawnSync("docker", ["exec", host.container, "bash", "-c", script], {
      encoding: "utf8",
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** `k3s kubectl ARGS` (a shell word list) on `server`, as root; throws when it fails. */
  kubectl(server: LabHost, args: string): string {
    const r = this.root(server, `/usr/local/bin/k3s kubectl ${args}`);
    if (r.status !== 0) throw new Error(`kubectl ${args}: ${r.stderr}`);
    return r.stdout;
  }

  /** What k3s or rosfleet left on a machine: its files, the air-gap copies, a k3s process. */
  leftovers(host: LabHost): string {
    // Unanchored: under emulation a process's command line starts with qemu's.
    return this.root(
      host,
      "find /usr/local/bin /etc/rancher /var/lib/rancher ~lab -mindepth 1 -not -path '*/.*' 2>/dev/null; pgrep -af 'bin/k3s (server|agent)$'",
    ).stdout.trim();
  }

  /** What the machines' services logged: for a failure message. */
  logs(): string {
    return this.hosts
      .map(
        (h) =>
          `--- ${h.name}:\n${this.root(h, "tail -n 30 /var/log/k3s*.log /var/log/k3s-components/*.log 2>/dev/null").stdout}`,
      )
      .join("\n");
  }

  private removeContainers(): void {
    for (const h of this.hosts) spawnSync("docker", ["rm", "-f", h.container], { stdio: "ignore" });
    for (const n of [NETWORK, WIFI_NETWORK])
      spawnSync("docker", ["network", "rm", n], { stdio: "ignore" });
  }

  async stop(): Promise<void> {
    if (ok("docker", ["info"])) this.removeContainers();
    if (this.dockerd !== undefined) {
      const exited = new Promise((r) => this.dockerd?.once("exit", r));
      this.dockerd.kill("SIGTERM");
      await exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * The k3s.airgap files of release `version` for the stack: the installer stand-in, and per
   * arch a k3s stand-in that reports that release.
   */
  airgapFiles(version: string): {
    installScript: string;
    binaries: Partial<Record<Arch, string>>;
  } {
    const text = fs.readFileSync(path.join(STANDINS, "k3s"), "utf8");
    const [shebang, ...rest] = text.split("\n");
    const binaries: Partial<Record<Arch, string>> = {};
    for (const arch of new Set(this.hosts.map((h) => h.arch))) {
      const file = path.join(this.dir, `k3s-${arch}`);
      fs.writeFileSync(file, [shebang, `K3S_STANDIN_VERSION=${version}`, ...rest].join("\n"), {
        mode: 0o755,
      });
      binaries[arch] = file;
    }
    return { installScript: path.join(STANDINS, "k3s-install.sh"), binaries };
  }
}
