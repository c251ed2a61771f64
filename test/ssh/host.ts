// An OpenSSH test host on loopback: a real sshd (Debian's openssh-server) on 127.0.0.1:2222,
// a user with key authentication and passwordless sudo. It stands for a lab machine reached
// over SSH: the command lines rosfleet sends are run as the SSH exec request they are, through
// the user's login shell and `sudo -n`, with the machine's own tools (sudo, id, getent, ip,
// pgrep, pkill, timeout, ...). Only what a test host cannot have stands in: systemd's systemctl
// (first on sudo's `secure_path`), and k3s and its installer, which the scripts get as
// k3s.airgap files and place under the scripts' ROOT. The stand-ins' state dir comes by sudoers
// `env_file`. Needs root; removes everything it made on stop.
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

export const SSH_USER = "rosfleet-ssh";
const PORT = 2222;
const STANDINS = path.join(__dirname, "..", "standins");
const SUDOERS = `/etc/sudoers.d/${SSH_USER}`;

/** Why this machine cannot host the SSH tests, or undefined when it can. */
export function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return "they must run as root (to add a user and run sshd)";
  for (const tool of ["/usr/sbin/sshd", "/usr/bin/sudo", "/usr/bin/ssh", "/usr/sbin/useradd"])
    if (!fs.existsSync(tool)) return `${tool} is missing (apt-get install openssh-server sudo)`;
  return undefined;
}

export interface SshRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Where and as whom an SSH exec request goes. */
export interface SshTarget {
  readonly key: string;
  readonly port: number;
  readonly user: string;
  readonly host: string;
}

/** Sends `commandLine` as an SSH exec request (what the command provider does), `stdin` as its input. */
export function sshRun(to: SshTarget, commandLine: string, stdin = ""): Promise<SshRun> {
  return new Promise((resolve, reject) => {
    const ssh = spawn(
      "ssh",
      [
        ...["-i", to.key, "-p", String(to.port), "-o", "BatchMode=yes"],
        ...["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"],
        ...["-o", "LogLevel=ERROR", `${to.user}@${to.host}`, commandLine],
      ],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    ssh.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    ssh.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    ssh.once("error", reject);
    ssh.once("close", (status) => resolve({ status, stdout, stderr }));
    ssh.stdin.end(stdin);
  });
}

export async function waitForPort(
  port: number,
  seconds: number,
  host = "127.0.0.1",
): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, host);
      socket.once("connect", () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${host}:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export class SshHost {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-ssh-"));
  /** The machine's filesystem prefix (the scripts' ROOT) and the fakes' state. */
  readonly root = path.join(this.dir, "root");
  readonly state = path.join(this.dir, "state");
  readonly log = path.join(this.state, "calls.log");
  private sshd: ChildProcess | undefined;
  private readonly key = path.join(this.dir, "client_key");

  async start(): Promise<void> {
    fs.mkdirSync(this.root);
    fs.mkdirSync(this.state);
    fs.writeFileSync(this.log, "");
    // World-readable so that the test user's shell and sudo can reach the fakes and state.
    fs.chmodSync(this.dir, 0o755);
    spawnSync("userdel", ["-r", SSH_USER]);
    // "*": no password, but not locked (sshd without PAM refuses locked accounts).
    execFileSync("useradd", ["-m", "-s", "/bin/bash", "-p", "*", SSH_USER]);
    const env = `FAKE_LOG=${this.log}\nFAKE_STATE=${this.state}\nFAKE_ROOT=${this.root}\nSTANDINS=${STANDINS}\n`;
    fs.writeFileSync(path.join(this.dir, "fakes.env"), env);
    const sudoers = [
      `${SSH_USER} ALL=(ALL) NOPASSWD:ALL`,
      `Defaults:${SSH_USER} secure_path="${STANDINS}/path:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"`,
      `Defaults:${SSH_USER} env_file="${path.join(this.dir, "fakes.env")}"`,
      "",
    ].join("\n");
    fs.writeFileSync(SUDOERS, sudoers, { mode: 0o440 });
    execFileSync("visudo", ["-c", "-f", SUDOERS]);

    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", this.key]);
    execFileSync("ssh-keygen", [
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-f",
      path.join(this.dir, "host_key"),
    ]);
    const authorized = path.join(this.dir, "authorized_keys");
    fs.copyFileSync(`${this.key}.pub`, authorized);
    fs.chmodSync(authorized, 0o644);
    const config = path.join(this.dir, "sshd_config");
    fs.writeFileSync(
      config,
      [
        `Port ${PORT}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${path.join(this.dir, "host_key")}`,
        `AuthorizedKeysFile ${authorized}`,
        `PidFile ${path.join(this.dir, "sshd.pid")}`,
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "StrictModes no",
        "UsePAM no",
        `AllowUsers ${SSH_USER}`,
        "",
      ].join("\n"),
    );
    fs.mkdirSync("/run/sshd", { recursive: true });
    this.sshd = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", config], { stdio: "ignore" });
    await waitForPort(PORT, 10);
  }

  /** Sends `commandLine` as an SSH exec request, `stdin` as its input. */
  run(commandLine: string, stdin = ""): Promise<SshRun> {
    fs.writeFileSync(this.log, "");
    return sshRun(
      { key: this.key, port: PORT, user: SSH_USER, host: "127.0.0.1" },
      commandLine,
      stdin,
    );
  }

  /** The SSH user's home, where CopyToRemote puts files. */
  readonly home = `/home/${SSH_USER}`;

  /** The calls the stand-ins recorded during the last run. */
  calls(): string[] {
    return fs.readFileSync(this.log, "utf8").split("\n").filter(Boolean);
  }

  stop(): void {
    this.sshd?.kill();
    fs.rmSync(SUDOERS, { force: true });
    spawnSync("userdel", ["-r", SSH_USER]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
