// Script tier: every script the program sends is run for real by bash, exactly as rendered and
// sent to the machine (on stdin to `bash -s`, the token on stdin to the join program), against
// a temp root. Only what a test host cannot have stands in (test/standins: k3s, its installer,
// systemd's systemctl); pgrep, pkill, timeout, cmp, install, mktemp are the machine's own.
// test/fakes simulate machine variants the host is not (an arm64 board, a user whose sudo asks
// for a password, a NIC, a missing kernel module, a download) and record their calls.
import assert from "node:assert/strict";
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { AirgapPlan, airgapPlan } from "../components/k3s/airgap";
import { renderK3sConfig } from "../components/k3s/render";
import {
  installScript,
  joinProgram,
  nodeScript,
  readFileProgram,
  registriesScript,
  removeNodeScript,
  uninstallScript,
} from "../components/k3s/scripts";
import { preflightScript } from "../components/machine/machine";
import { Action, StepScripts, bundleLine, programLine, scriptBundle } from "../components/shell";
import { Machine } from "../components/config";
import { machine } from "./helpers/machine";
import { rooted } from "./helpers/root";

const FAKES = path.join(__dirname, "fakes");
const STANDINS = path.join(__dirname, "standins");
const TOKEN = "K10aaaabbbbccccdddd::server:never-print-me";
/** An agent token as k3s writes it (`K10<hash>::node:<password>`). */
const AGENT_TOKEN = "K10aaaabbbbccccdddd::node:agent-password";
/** The server agents join: a listener on loopback stands for its API port. */
const SERVER = "127.0.0.1";
/** Nothing listens on 6443 there. */
const NO_SERVER = "127.0.0.2";

const server = machine({});
const pi = machine({
  name: "clover1",
  host: "192.168.1.31",
  role: "agent",
  kind: "pi",
  arch: "arm64",
});

interface Result {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The calls the fakes recorded since the last run. */
  readonly calls: string[];
}

/** A lab machine in a temp dir: its root filesystem and the fakes' state. */
class FakeMachine {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-root-"));
  readonly state = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-state-"));
  private readonly log = path.join(this.state, "calls.log");

  constructor() {
    // Booted with systemd (its marker directory; systemctl itself is a stand-in).
    fs.mkdirSync(this.file("run/systemd/system"), { recursive: true });
  }

  /** Creates a state flag file (e.g. "docker-running", "ready-after"). */
  set(flag: string, content = ""): this {
    fs.writeFileSync(path.join(this.state, flag), content);
    return this;
  }

  file(rel: string): string {
    return path.join(this.root, rel);
  }

  /** k3s is installed here (for the steps that run on a server). */
  withK3s(): this {
    fs.mkdirSync(this.file("usr/local/bin"), { recursive: true });
    fs.copyFileSync(path.join(STANDINS, "k3s"), this.file("usr/local/bin/k3s"));
    return this.set("k3s-version", "v1.33.5+k3s1\n");
  }

  /** Runs a step's script (`action` of its bundle) as the program sends it: as root unless not. */
  run(scripts: string | StepScripts, opts: { asRoot?: boolean; action?: Action } = {}): Result {
    const bundle = typeof scripts === "string" ? { create: scripts } : scripts;
    const as = { asRoot: opts.asRoot ?? true, user: "lab" };
    return this.exec(
      bundleLine(opts.action ?? "create", as),
      rooted(scriptBundle(bundle), this.root),
    );
  }

  /** Runs a step's fixed program (as root) with `stdin`. */
  runProgram(argv: readonly string[], stdin = ""): Result {
    return this.exec(programLine(argv, { asRoot: true, user: "lab" }), stdin);
  }

  private exec(line: string, stdin: string): Result {
    fs.writeFileSync(this.log, "");
    const r = spawnSync("/bin/sh", ["-c", line], {
      input: stdin,
      encoding: "utf8",
      env: {
        PATH: `${FAKES}:${STANDINS}/path:${process.env["PATH"] ?? "/usr/bin:/bin"}`,
        FAKE_LOG: this.log,
        FAKE_STATE: this.state,
        FAKE_ROOT: this.root,
        STANDINS,
        // bash with a socket for stdin (as over SSH, and as node spawns it) reads ~/.bashrc.
        HOME: this.root,
      },
    });
    const calls = fs.readFileSync(this.log, "utf8").split("\n").filter(Boolean);
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls };
  }
}

const install = (m: Machine, joinHost?: string) =>
  installScript({
    machine: m,
    version: "v1.33.5+k3s1",
    configYaml: renderK3sConfig({ machine: m, joinHost, clusterInit: false, extraArgs: [] }),
    joinHost,
  });
const installAndUndo = (m: Machine, joinHost?: string): StepScripts => ({
  create: install(m, joinHost),
  delete: uninstallScript(m),
});
/** What `<name>-join` runs on `m`, with the token on stdin. */
const join = (m: FakeMachine, token = TOKEN) => m.runProgram(joinProgram(m.root), token);
const changes = (r: Result) =>
  r.calls.filter((c) => /^(curl|installer|systemctl (restart|disable))/.test(c));

/** Within the calling describe: the k3s server's API port, for the reachability check. */
function listenAsServer(): void {
  let api: net.Server;
  before(async () => {
    api = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => api.listen(6443, SERVER, resolve));
  });
  after(() => new Promise<void>((resolve) => api.close(() => resolve())));
}

/** True once `p` was stopped: gone, or a zombie its parent (this test) has not reaped yet. */
function ended(p: ChildProcess): boolean {
  try {
    return fs.readFileSync(`/proc/${p.pid}/stat`, "utf8").split(" ")[2] === "Z";
  } catch {
    return true;
  }
}

/** A process that is what a hand-started `k3s server` is: named k3s-server (k3s execs itself so). */
function strayServer(): ChildProcess {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-stray-"));
  fs.copyFileSync("/bin/sleep", path.join(dir, "k3s-server"));
  fs.chmodSync(path.join(dir, "k3s-server"), 0o755);
  return spawn(path.join(dir, "k3s-server"), ["300"], { stdio: "ignore" });
}

describe("scripts: preflight", () => {
  it("passes on a fit machine and reports arch and NIC", () => {
    const r = new FakeMachine().run(preflightScript(server), { asRoot: false });
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, "preflight ok: laptop arch=amd64 nic=eth0\n");
    assert.equal(r.status, 0);
    assert.ok(r.calls.includes("sudo -n true"), "checks sudo without a password");
  });

  it("fails on arch, sudo, Pi cgroups and vxlan, and docker at once, saying what to fix", () => {
    const m = new FakeMachine()
      .set("uname-m", "x86_64\n")
      .set("sudo-needs-password")
      .set("no-vxlan");
    fs.mkdirSync(m.file("boot/firmware"), { recursive: true });
    fs.writeFileSync(m.file("boot/firmware/cmdline.txt"), "console=tty1\n");
    fs.mkdirSync(m.file("sys/fs/cgroup"), { recursive: true });
    fs.writeFileSync(m.file("sys/fs/cgroup/cgroup.controllers"), "cpuset cpu io pids\n");
    const r = m.run(preflightScript({ ...pi, docker: true }), { asRoot: false });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      [
        "preflight failed on clover1 (nothing was installed):",
        "  - arch: the stack declares arm64 but uname -m says x86_64 (amd64): set arch: amd64 on this machine in the stack",
        "  - sudo: asks lab for a password; allow it without one: echo 'lab ALL=(ALL) NOPASSWD:ALL' | sudo tee /etc/sudoers.d/rosfleet",
        "  - cgroups: the memory cgroup is disabled (k3s needs it): append 'cgroup_memory=1 cgroup_enable=memory' to the single line of /boot/firmware/cmdline.txt, then reboot",
        "  - vxlan: the kernel module flannel needs between nodes is missing: sudo apt-get install linux-modules-extra-raspi, then reboot",
        "  - docker: not running, and docker: true makes k3s use it: install Docker (apt-get install docker.io), then sudo systemctl enable --now docker",
        "",
      ].join("\n"),
    );
  });

  it("says alone that a machine is not Linux with systemd, naming the fix", () => {
    const expect = (m: FakeMachine, line: string) => {
      const r = m.run(preflightScript({ ...pi, docker: true }), { asRoot: false });
      assert.equal(r.status, 1);
      assert.equal(r.stderr, `preflight failed on clover1 (nothing was installed):\n  - ${line}\n`);
    };
    // A Mac answering SSH: not "set arch" and an installer failure later.
    expect(
      new FakeMachine().set("uname-s", "Darwin\n").set("uname-m", "arm64\n"),
      "os: this is Darwin; rosfleet installs k3s on Linux with systemd only (a Linux VM on a Mac, or Linux on the machine itself)",
    );
    const wsl = new FakeMachine();
    fs.rmSync(wsl.file("run/systemd"), { recursive: true });
    fs.mkdirSync(wsl.file("proc"), { recursive: true });
    fs.writeFileSync(
      wsl.file("proc/version"),
      "Linux version 5.15.167.4-microsoft-standard-WSL2\n",
    );
    expect(
      wsl,
      "systemd: WSL is running without systemd, which k3s needs: add [boot] systemd=true to /etc/wsl.conf, then wsl --shutdown and reopen it",
    );
    fs.rmSync(wsl.file("proc/version"));
    expect(
      wsl,
      "systemd: not running as this machine's init (no /run/systemd/system); k3s runs as a systemd service: use a distribution booted with systemd (Raspberry Pi OS, Ubuntu, Debian)",
    );
  });

  it("with multus, wants the same wired NIC on every machine", () => {
    const m = new FakeMachine(); // test/fakes/ip: the default route is on eth0
    assert.equal(
      m.run(preflightScript(server, { multusInterface: "eth0" }), { asRoot: false }).status,
      0,
    );
    assert.match(
      m.run(preflightScript(server, { multusInterface: "enp7s0" }), { asRoot: false }).stderr,
      / {2}- nic: ros\.discovery multus attaches pods to enp7s0 on every machine, but this one's default route is on eth0: give the machines the same NIC name \(netplan match: macaddress \+ set-name\) or set ros\.multus\.interface\n/,
    );
    fs.mkdirSync(m.file("sys/class/net/eth0/wireless"), { recursive: true });
    assert.match(
      m.run(preflightScript(server, { multusInterface: "eth0" }), { asRoot: false }).stderr,
      / {2}- nic: eth0 is a Wi-Fi interface, and macvlan \(ros\.discovery multus\) does not work on Wi-Fi: use a wired NIC\n/,
    );
  });

  it("names /boot/cmdline.txt on older Pi images, and accepts cgroup v1 memory", () => {
    const m = new FakeMachine().set("uname-m", "aarch64\n");
    fs.mkdirSync(m.file("proc"), { recursive: true });
    fs.writeFileSync(
      m.file("proc/cgroups"),
      "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t1\t0\n",
    );
    assert.match(
      m.run(preflightScript(pi), { asRoot: false }).stderr,
      / of \/boot\/cmdline\.txt, then reboot/,
    );
    fs.writeFileSync(m.file("proc/cgroups"), "memory\t0\t1\t1\n");
    assert.equal(m.run(preflightScript(pi), { asRoot: false }).status, 0);
  });
});

describe("scripts: preflight and a k3s that was there first", () => {
  const foreign = (r: Result) => r.stderr.split("\n").find((l) => l.startsWith("  - k3s: "));

  it("refuses a k3s binary, unit or data dir rosfleet did not install, naming each and the key", () => {
    const m = new FakeMachine().withK3s();
    fs.mkdirSync(path.join(m.state, "units"), { recursive: true });
    fs.writeFileSync(path.join(m.state, "units", "k3s"), "");
    fs.mkdirSync(m.file("var/lib/rancher/k3s/server/db"), { recursive: true });
    const r = m.run(preflightScript(pi), { asRoot: false });
    assert.equal(r.status, 1);
    assert.equal(
      foreign(r),
      "  - k3s: a k3s rosfleet did not install is here (/usr/local/bin/k3s, k3s.service, /var/lib/rancher/k3s); rosfleet leaves it alone. To hand it over set adopt: true on this machine in the stack: rosfleet then rewrites its /etc/rancher/k3s/config.yaml, stops a k3s server on an agent, and on removal or destroy runs k3s's uninstall, which deletes /var/lib/rancher/k3s (that cluster's data). Otherwise uninstall it (/usr/local/bin/k3s-uninstall.sh or k3s-agent-uninstall.sh) or use another machine",
    );
    // Each alone is enough.
    const dataOnly = new FakeMachine();
    fs.mkdirSync(dataOnly.file("var/lib/rancher/k3s"), { recursive: true });
    assert.match(
      foreign(dataOnly.run(preflightScript(pi), { asRoot: false })) ?? "",
      /is here \(\/var\/lib\/rancher\/k3s\)/,
    );
  });

  it("passes with adopt: true, and on a k3s rosfleet installed", () => {
    const m = new FakeMachine().withK3s();
    const adopted = m.run(preflightScript({ ...server, adopt: true }), { asRoot: false });
    assert.equal(adopted.status, 0, adopted.stderr);
    fs.mkdirSync(m.file("etc/rancher/k3s"), { recursive: true });
    fs.writeFileSync(m.file("etc/rancher/k3s/rosfleet-owner"), "laptop server\n");
    const r = m.run(preflightScript(server), { asRoot: false });
    assert.equal(r.status, 0, r.stderr);
  });

  it("claims the machine before the installer runs: an install cut short is still rosfleet's", () => {
    const m = new FakeMachine().set("offline");
    const r = m.run(install(server));
    assert.equal(r.status, 1);
    assert.equal(
      fs.readFileSync(m.file("etc/rancher/k3s/rosfleet-owner"), "utf8"),
      "laptop server\n",
    );
    assert.equal(m.run(preflightScript(server), { asRoot: false }).status, 0);
  });
});

describe("scripts: install", () => {
  listenAsServer();

  it("installs the pinned version with settings in a 0600 config.yaml, starts it, waits for Ready", () => {
    const m = new FakeMachine();
    const r = m.run(install(server));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(changes(r), [
      "curl -sfL --connect-timeout 20 --max-time 120 https://get.k3s.io",
      "installer server INSTALL_K3S_VERSION=v1.33.5+k3s1 INSTALL_K3S_SKIP_START=true",
      "systemctl restart k3s",
    ]);
    assert.ok(r.calls.some((c) => c.startsWith("k3s kubectl get node laptop -o")));
    const config = m.file("etc/rancher/k3s/config.yaml");
    assert.equal((fs.statSync(config).mode & 0o777).toString(8), "600");
    assert.match(
      fs.readFileSync(config, "utf8"),
      /^node-name: laptop\ntls-san:\n {2}- 192\.168\.1\.21\n/,
    );
    assert.equal(
      fs.readFileSync(m.file("etc/rancher/k3s/rosfleet-owner"), "utf8"),
      "laptop server\n",
    );
  });

  it("makes the agents' password once on the first server (0600), never printed, kept after", () => {
    const m = new FakeMachine();
    const r = m.run(install(server));
    const file = m.file("etc/rancher/k3s/agent-token");
    const password = fs.readFileSync(file, "utf8");
    assert.match(password, /^[0-9a-f]{32}$/);
    assert.equal((fs.statSync(file).mode & 0o777).toString(8), "600");
    for (const text of [r.stdout, r.stderr, ...r.calls]) assert.ok(!text.includes(password), text);
    assert.match(
      fs.readFileSync(m.file("etc/rancher/k3s/config.yaml"), "utf8"),
      /^agent-token-file: \/etc\/rancher\/k3s\/agent-token$/m,
    );
    m.run(install(server));
    assert.equal(fs.readFileSync(file, "utf8"), password);
  });

  it("is a no-op the second time", () => {
    const m = new FakeMachine();
    m.run(install(server));
    const r = m.run(install(server));
    assert.equal(r.status, 0);
    assert.match(r.stdout, /k3s v1\.33\.5\+k3s1 \(server\) on laptop is up to date/);
    assert.deepEqual(changes(r), []);
  });

  it("restarts k3s when only its configuration changed; installs and restarts a new version", () => {
    const m = new FakeMachine();
    m.run(install(server));
    const restarted = m.run(install({ ...server, docker: true }));
    assert.deepEqual(changes(restarted), ["systemctl restart k3s"]);
    const upgraded = m.run(install(server).replace("v1.33.5+k3s1", "v1.34.1+k3s1"));
    assert.deepEqual(changes(upgraded), [
      "curl -sfL --connect-timeout 20 --max-time 120 https://get.k3s.io",
      "installer server INSTALL_K3S_VERSION=v1.34.1+k3s1 INSTALL_K3S_SKIP_START=true",
      "systemctl restart k3s",
    ]);
  });

  it("calls k3s by its full path (sudo's secure_path may lack /usr/local/bin)", () => {
    const m = new FakeMachine();
    m.run(install(server));
    // test/standins/k3s is on no PATH: only /usr/local/bin/k3s under the machine's root answers.
    assert.ok(m.run(install(server)).calls.some((c) => c.startsWith("k3s --version")));
    assert.match(install(server), /^K3S="\$ROOT\/usr\/local\/bin\/k3s"$/m);
    assert.doesNotMatch(install(server), /(^|[\s(;|])k3s (kubectl|--version)/m);
  });

  it("says what to check when the installer cannot download k3s, and starts nothing", () => {
    const m = new FakeMachine().set("offline");
    const r = m.run(install(server));
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^the k3s installer failed or did not finish within 600s on laptop: check that it reaches get\.k3s\.io and github\.com \(or use k3s\.airgap\), then pulumi up again$/m,
    );
    assert.deepEqual(changes(r), [
      "curl -sfL --connect-timeout 20 --max-time 120 https://get.k3s.io",
    ]);
  });

  it("fails with the journal hint when the server does not become Ready", () => {
    const m = new FakeMachine().set("ready-after", "1000");
    const r = m.run(install(server).replace("WAIT_SECONDS='300'", "WAIT_SECONDS='1'"));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /k3s server laptop is not Ready after 1s: see journalctl -u k3s on it/);
    assert.ok(r.calls.includes("sleep 2"), "polls rather than failing at once");
  });

  it("bounds a start that never finishes, and says where to look", () => {
    const m = new FakeMachine().set("hang-k3s");
    const r = m.run(install(server).replace("WAIT_SECONDS='300'", "WAIT_SECONDS='1'"));
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^k3s on laptop did not start within 1s: see journalctl -u k3s on it \(/m,
    );
  });

  it("installs a joining agent without starting it, then the join step starts it with the token", () => {
    const m = new FakeMachine();
    const r = m.run(install(pi, SERVER));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(changes(r), [
      "curl -sfL --connect-timeout 20 --max-time 120 https://get.k3s.io",
      "installer agent INSTALL_K3S_VERSION=v1.33.5+k3s1 INSTALL_K3S_SKIP_START=true",
    ]);
    assert.match(r.stdout, /it starts when clover1-join gives it the cluster token\n$/);
    assert.match(
      fs.readFileSync(m.file("etc/rancher/k3s/config.yaml"), "utf8"),
      /token-file: \/etc\/rancher\/k3s\/token/,
    );

    const joined = join(m);
    assert.equal(joined.status, 0, joined.stderr);
    assert.deepEqual(changes(joined), ["systemctl restart k3s-agent"]);
    assert.ok(fs.existsSync(path.join(m.state, "nodes", "clover1")), "the node registered");
    const token = m.file("etc/rancher/k3s/token");
    assert.equal(fs.readFileSync(token, "utf8"), TOKEN);
    assert.equal((fs.statSync(token).mode & 0o777).toString(8), "600");
    for (const text of [r.stdout, r.stderr, joined.stdout, joined.stderr, ...joined.calls])
      assert.ok(!text.includes("never-print-me"), text);

    assert.deepEqual(changes(join(m)), [], "the same token changes nothing");
    const again = m.run(install(pi, SERVER));
    assert.match(again.stdout, /k3s v1\.33\.5\+k3s1 \(agent\) on clover1 is up to date/);
    assert.deepEqual(changes(again), []);
  });

  it("restarts the agent with a new token (the server was reinstalled)", () => {
    const m = new FakeMachine();
    m.run(install(pi, SERVER));
    join(m);
    const r = join(m, "K10new::server:other");
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(changes(r), ["systemctl restart k3s-agent"]);
    assert.equal(fs.readFileSync(m.file("etc/rancher/k3s/token"), "utf8"), "K10new::server:other");
  });

  it("drops an agent's old token when its first server was installed anew, so the join step starts it", () => {
    const m = new FakeMachine();
    const inCluster = (cluster: string) =>
      installScript({
        machine: pi,
        version: "v1.33.5+k3s1",
        configYaml: renderK3sConfig({
          machine: pi,
          joinHost: SERVER,
          clusterInit: false,
          extraArgs: [],
        }),
        joinHost: SERVER,
        cluster,
      });
    m.run(inCluster("laptop-install-1"));
    join(m);
    // The same cluster: nothing changes, the token stays.
    const same = m.run(inCluster("laptop-install-1"));
    assert.match(same.stdout, /is up to date/);
    assert.ok(fs.existsSync(m.file("etc/rancher/k3s/token")));
    // A new cluster: no restart with the old token (k3s-agent would retry it for ever).
    const moved = m.run(inCluster("laptop2-install-1"));
    assert.equal(moved.status, 0, moved.stderr);
    assert.match(
      moved.stdout,
      /clover1 joins a new cluster \(its first server was installed anew\): its old token is dropped/,
    );
    assert.match(moved.stdout, /it starts when clover1-join gives it the cluster token\n$/);
    assert.deepEqual(changes(moved), []);
    assert.equal(fs.existsSync(m.file("etc/rancher/k3s/token")), false);
    const joined = join(m, "K10new::server:other");
    assert.deepEqual(changes(joined), ["systemctl restart k3s-agent"]);
  });

  it("bounds the join of an agent whose token the server rejects, naming the journal", () => {
    const m = new FakeMachine().set("cluster-token", "K10other::server:real");
    m.run(install(pi, SERVER).replace("WAIT_SECONDS='\\''300'\\''", "WAIT_SECONDS='\\''1'\\''"));
    const r = join(m);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^k3s-agent on clover1 did not start within 1s: see journalctl -u k3s-agent on it \(an agent that cannot reach the server on 6443\/tcp, or whose token the server rejects, waits here\)\n$/,
    );
  });

  it("stops a stray k3s server started by hand, found by its process name, without killing itself", async () => {
    const stray = strayServer();
    const m = new FakeMachine();
    const r = m.run(install(pi, SERVER));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^stopping a stray k3s server on clover1$/m);
    assert.equal(ended(stray), true, "the stray server was stopped");
    await new Promise((resolve) =>
      stray.exitCode === null ? stray.once("exit", resolve) : resolve(0),
    );
    const again = m.run(install(pi, SERVER));
    assert.doesNotMatch(again.stdout, /stray/);
  });

  it("stops a stray k3s server service on an agent with k3s-killall.sh, as the lab notes did", () => {
    const m = new FakeMachine();
    fs.mkdirSync(m.file("usr/local/bin"), { recursive: true });
    fs.writeFileSync(
      m.file("usr/local/bin/k3s-killall.sh"),
      '#!/bin/sh\necho k3s-killall.sh >>"$FAKE_LOG"\n',
      { mode: 0o755 },
    );
    fs.mkdirSync(path.join(m.state, "active"));
    fs.writeFileSync(path.join(m.state, "active", "k3s"), "");
    const r = m.run(install(pi, SERVER));
    assert.equal(r.status, 0, r.stderr);
    const order = (c: string) => r.calls.findIndex((x) => x.startsWith(c));
    assert.ok(order("systemctl disable --now k3s") >= 0);
    assert.ok(order("k3s-killall.sh") > order("systemctl disable --now k3s"));
    assert.ok(order("k3s-killall.sh") < order("installer agent"));
    const again = m.run(install(pi, SERVER));
    assert.ok(!again.calls.includes("k3s-killall.sh"), "no stray server the second time");
  });

  it("changes nothing on an agent that cannot reach its server, and says so", () => {
    const m = new FakeMachine();
    const r = m.run(install(pi, NO_SERVER));
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^clover1 cannot reach the k3s server at 127\.0\.0\.2:6443\/tcp \(nothing was changed here\)/,
    );
    assert.equal(fs.existsSync(m.file("etc/rancher/k3s")), false);
  });

  it("refuses to join without a token", () => {
    const m = new FakeMachine();
    m.run(install(pi, SERVER));
    const r = join(m, "");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no cluster token was given on stdin to clover1-join/);
    assert.deepEqual(changes(r), []);
  });

  it("turns an agent into a server: uninstalls the agent first", () => {
    const m = new FakeMachine();
    m.run(install(pi, SERVER));
    join(m);
    const r = m.run(install({ ...pi, role: "server" }));
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^clover1 was a k3s agent and is now a server: uninstalling the agent first$/m,
    );
    assert.ok(
      r.calls.indexOf("k3s-agent-uninstall.sh") <
        r.calls.findIndex((c) => c.startsWith("installer server")),
    );
    assert.equal(
      fs.readFileSync(m.file("etc/rancher/k3s/rosfleet-owner"), "utf8"),
      "clover1 server\n",
    );
  });

  it("turns a joined agent into a joining HA server: the agent token goes, the join step hands over the server's", () => {
    const m = new FakeMachine();
    m.run(install(pi, SERVER));
    join(m, AGENT_TOKEN);
    // The join step's input differs by role (server token and agent token): it runs again.
    const r = m.run(install({ ...pi, role: "server" }, SERVER));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.calls.includes("k3s-agent-uninstall.sh"));
    assert.match(r.stdout, /it starts when clover1-join gives it the cluster token\n$/);
    assert.equal(fs.existsSync(m.file("etc/rancher/k3s/token")), false, "the agent token went");
    const joined = m.runProgram(joinProgram(m.root), `${TOKEN}\n${AGENT_TOKEN}\n`);
    assert.equal(joined.status, 0, joined.stderr);
    assert.deepEqual(changes(joined), ["systemctl restart k3s"]);
    const token = m.file("etc/rancher/k3s/token");
    assert.equal(fs.readFileSync(token, "utf8"), TOKEN);
    assert.equal((fs.statSync(token).mode & 0o777).toString(8), "600");
    // Every server admits agents with the same password: the agent token's.
    const agents = m.file("etc/rancher/k3s/agent-token");
    assert.equal(fs.readFileSync(agents, "utf8"), "agent-password");
    assert.equal((fs.statSync(agents).mode & 0o777).toString(8), "600");
    for (const text of [joined.stdout, joined.stderr, ...joined.calls])
      assert.ok(!text.includes("agent-password") && !text.includes(TOKEN), text);
    assert.deepEqual(
      fs.readdirSync(m.file("etc/rancher")).filter((f) => f !== "k3s"),
      [],
      "no copy left behind",
    );
    // A joining server given only one token (an agent's) is refused at once.
    const short = m.runProgram(joinProgram(m.root), AGENT_TOKEN);
    assert.equal(short.status, 1);
    assert.match(short.stderr, /no cluster token was given on stdin to clover1-join/);
  });
});

describe("scripts: k3s.registries", () => {
  listenAsServer();
  const YAML = 'configs:\n  "192.168.1.10:5000":\n    auth:\n      password: "it\'s $ecret"\n';
  const SHOWN = YAML.replace(/password: .*/, "password: '[secret]'");
  const registries = (m: Machine, yaml = YAML): StepScripts => ({
    create: registriesScript(m, yaml),
    delete: registriesScript(m, ""),
  });
  const withRegistries = (m: Machine, joinHost?: string): StepScripts => ({
    create: installScript({
      machine: m,
      version: "v1.33.5+k3s1",
      configYaml: renderK3sConfig({ machine: m, joinHost, clusterInit: false, extraArgs: [] }),
      joinHost,
      registries: SHOWN,
    }),
    delete: uninstallScript(m, undefined, true),
  });
  const file = (m: FakeMachine) => m.file("etc/rancher/k3s/registries.yaml");
  const restarts = (r: Result) => r.calls.filter((c) => c.startsWith("systemctl restart"));

  it("writes registries.yaml 0600 before k3s is installed, which then starts with it", () => {
    const m = new FakeMachine();
    const r = m.run(registries(server));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readFileSync(file(m), "utf8"), YAML);
    assert.equal((fs.statSync(file(m)).mode & 0o777).toString(8), "600");
    assert.equal((fs.statSync(m.file("etc/rancher/k3s")).mode & 0o777).toString(8), "700");
    assert.deepEqual(restarts(r), []);
    assert.equal(m.run(withRegistries(server)).status, 0);
    assert.equal(fs.readFileSync(file(m), "utf8"), YAML);
    const again = m.run(registries(server));
    assert.match(again.stdout, /registries\.yaml on laptop is up to date/);
    assert.deepEqual(restarts(again), []);
  });

  it("restarts a running k3s when the file changed (it reads it only at start), and waits for Ready", () => {
    const m = new FakeMachine();
    m.run(registries(server));
    m.run(withRegistries(server));
    const r = m.run(registries(server, YAML.replace("5000", "5001")));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(restarts(r), ["systemctl restart k3s"]);
    assert.ok(r.calls.some((c) => c.startsWith("k3s kubectl get node laptop -o")));
    assert.ok(!r.stdout.includes("$ecret") && !r.stderr.includes("$ecret"));
  });

  it("keeps the file when k3s is reinstalled or the machine changes role", () => {
    const m = new FakeMachine();
    m.run(registries(pi));
    m.run(withRegistries(pi, SERVER));
    join(m);
    const reinstall = m.run(withRegistries(pi, SERVER), { action: "delete" });
    assert.equal(reinstall.status, 0, reinstall.stderr);
    assert.ok(reinstall.calls.includes("k3s-agent-uninstall.sh"));
    assert.equal(fs.readFileSync(file(m), "utf8"), YAML);
    m.run(withRegistries(pi, SERVER));
    join(m);
    const role = m.run(withRegistries({ ...pi, role: "server" }));
    assert.equal(role.status, 0, role.stderr);
    assert.match(role.stdout, /uninstalling the agent first/);
    assert.equal(fs.readFileSync(file(m), "utf8"), YAML);
    assert.deepEqual(
      fs.readdirSync(m.file("etc/rancher")).filter((f) => f !== "k3s"),
      [],
      "no copy left behind",
    );
  });

  it("is left by the undo of another name's step (a rename), k3s not restarted", () => {
    const m = new FakeMachine();
    m.run(registries(server));
    m.run(withRegistries(server));
    const renamed = { ...server, name: "laptop2" };
    m.run(registries(renamed));
    m.run(withRegistries(renamed));
    // The old name's step goes last, as the engine deletes it.
    const r = m.run(registries(server), { action: "delete" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /now rosfleet's server laptop2's: left in place \(not laptop's\)/);
    assert.equal(fs.readFileSync(file(m), "utf8"), YAML);
    assert.deepEqual(restarts(r), []);
  });

  it("goes with its step: removed, k3s restarted without it, the folders gone with k3s", () => {
    const m = new FakeMachine();
    m.run(registries(server));
    m.run(withRegistries(server));
    const r = m.run(registries(server), { action: "delete" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.existsSync(file(m)), false);
    assert.deepEqual(restarts(r), ["systemctl restart k3s"]);
    // destroy: the install goes first (keeping the file), then this step.
    const m2 = new FakeMachine();
    m2.run(registries(server));
    m2.run(withRegistries(server));
    assert.equal(m2.run(withRegistries(server), { action: "delete" }).status, 0);
    assert.ok(fs.existsSync(file(m2)));
    const last = m2.run(registries(server), { action: "delete" });
    assert.equal(last.status, 0, last.stderr);
    assert.deepEqual(restarts(last), []);
    assert.equal(fs.existsSync(m2.file("etc/rancher")), false);
    assert.equal(fs.existsSync(m2.file("var/lib/rancher")), false);
  });
});

describe("scripts: a server of an HA cluster becoming an agent", () => {
  listenAsServer();

  it("leaves etcd first: its node deleted through the first server's API, then the server uninstalled", () => {
    const s2 = { ...pi, role: "server" as const };
    const m = new FakeMachine();
    m.run(install(s2, SERVER));
    join(m, `${TOKEN}\n${AGENT_TOKEN}\n`);
    fs.writeFileSync(m.file("etc/rancher/k3s/k3s.yaml"), "admin kubeconfig");
    fs.mkdirSync(path.join(m.state, "nodes"), { recursive: true });
    fs.writeFileSync(path.join(m.state, "nodes", "clover1"), "");
    const r = m.run(install(pi, SERVER));
    assert.equal(r.status, 0, r.stderr);
    const deleted = r.calls.indexOf(
      `k3s kubectl --kubeconfig ${m.file("etc/rancher/k3s/k3s.yaml")} --server https://${SERVER}:6443 delete node clover1 --ignore-not-found --timeout=300s`,
    );
    assert.ok(deleted >= 0, r.calls.join("\n"));
    assert.ok(
      deleted < r.calls.indexOf("k3s-uninstall.sh"),
      "the member goes before the uninstall",
    );
    // The server token went with the server; the agent starts with the agent token its join
    // step (a changed input) hands over.
    assert.match(r.stdout, /it starts when clover1-join gives it the cluster token\n$/);
    assert.equal(fs.existsSync(m.file("etc/rancher/k3s/token")), false);
    assert.equal(fs.existsSync(m.file("etc/rancher/k3s/agent-token")), false);
    assert.deepEqual(changes(join(m, AGENT_TOKEN)), ["systemctl restart k3s-agent"]);
    assert.equal(fs.readFileSync(m.file("etc/rancher/k3s/token"), "utf8"), AGENT_TOKEN);
  });
});

describe("scripts: uninstall", () => {
  listenAsServer();

  it("runs the agent uninstall script and removes the token; then does nothing", () => {
    const m = new FakeMachine();
    m.run(installAndUndo(pi, SERVER));
    join(m);
    // What the running k3s keeps there.
    fs.mkdirSync(m.file("var/lib/rancher/k3s/agent"), { recursive: true });
    const r = m.run(installAndUndo(pi, SERVER), { action: "delete" });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.calls.includes("k3s-agent-uninstall.sh"));
    assert.equal(fs.existsSync(m.file("etc/rancher/k3s/token")), false);
    const again = m.run(installAndUndo(pi, SERVER), { action: "delete" });
    assert.equal(again.status, 0);
    assert.match(again.stdout, /k3s \(agent\) is not installed on clover1/);
    // Nothing of k3s is left, not even the empty folders install.sh made.
    assert.equal(fs.existsSync(m.file("etc/rancher")), false);
    assert.equal(fs.existsSync(m.file("var/lib/rancher")), false);
  });

  it("keeps /etc/rancher and /var/lib/rancher when something else lives there", () => {
    const m = new FakeMachine();
    m.run(installAndUndo(pi, SERVER));
    join(m);
    fs.mkdirSync(m.file("etc/rancher/rke2"), { recursive: true });
    fs.mkdirSync(m.file("var/lib/rancher/k3s"), { recursive: true });
    fs.writeFileSync(m.file("var/lib/rancher/other"), "x");
    const r = m.run(installAndUndo(pi, SERVER), { action: "delete" });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.existsSync(m.file("etc/rancher/rke2")));
    assert.ok(fs.existsSync(m.file("var/lib/rancher/other")));
  });

  it("leaves an install that now belongs to another name or role (renamed, replaced, role changed)", () => {
    const m = new FakeMachine();
    m.run(install(pi, SERVER));
    join(m);
    for (const old of [
      { ...pi, name: "clover-old" },
      { ...pi, role: "server" as const },
    ]) {
      const r = m.run(uninstallScript(old));
      assert.equal(r.status, 0, r.stderr);
      assert.match(
        r.stdout,
        /^k3s on this machine is now rosfleet's agent clover1: left installed/,
      );
      assert.deepEqual(
        r.calls.filter((c) => c.includes("uninstall")),
        [],
      );
      assert.ok(fs.existsSync(m.file("etc/rancher/k3s/token")));
    }
  });
});

describe("scripts: node reconcile and removal (on the server)", () => {
  const labelled = (labels: Record<string, string>, taints: string[], cordon = false) =>
    nodeScript({ ...pi, labels, taints, cordon });
  const kubectl = (r: Result) =>
    r.calls.filter((c) =>
      /^k3s kubectl (label|taint|cordon|uncordon|annotate|drain|delete)/.test(c),
    );
  const withNode = (m: FakeMachine) => {
    fs.mkdirSync(path.join(m.state, "nodes"));
    fs.writeFileSync(path.join(m.state, "nodes", "clover1"), "");
    return m;
  };

  it("waits for the node, then applies labels, taints and cordon", () => {
    const m = withNode(new FakeMachine().withK3s().set("ready-after", "2"));
    const r = m.run(labelled({ robot: "clover1" }, ["gpu=true:NoSchedule"], true));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.calls.filter((c) => c === "sleep 2").length, 2);
    assert.deepEqual(kubectl(r), [
      "k3s kubectl label --overwrite node/clover1 robot=clover1",
      "k3s kubectl taint --overwrite nodes clover1 gpu=true:NoSchedule",
      "k3s kubectl annotate --overwrite node/clover1 rosfleet.dev/labels=robot rosfleet.dev/taints=gpu:NoSchedule",
      "k3s kubectl cordon node/clover1",
    ]);
  });

  it("removes the labels and taints it set before that the stack no longer has", () => {
    const m = withNode(new FakeMachine().withK3s());
    m.run(labelled({ robot: "clover1", zone: "a" }, ["gpu=true:NoSchedule"]));
    const r = m.run(labelled({ zone: "b" }, []));
    assert.deepEqual(kubectl(r), [
      "k3s kubectl label node/clover1 robot-",
      "k3s kubectl taint nodes clover1 gpu:NoSchedule-",
      "k3s kubectl label --overwrite node/clover1 zone=b",
      "k3s kubectl annotate --overwrite node/clover1 rosfleet.dev/labels=zone rosfleet.dev/taints=",
      "k3s kubectl uncordon node/clover1",
    ]);
  });

  it("fails with a hint when the node never registers", () => {
    const r = new FakeMachine()
      .withK3s()
      .run(nodeScript(pi).replace("WAIT_SECONDS='300'", "WAIT_SECONDS='0'"));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /node clover1 did not register as Ready within 0s/);
  });

  it("drains and deletes a removed agent's node, and is done when it is gone", () => {
    const m = withNode(new FakeMachine().withK3s());
    const r = m.run(removeNodeScript(pi));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(kubectl(r), [
      "k3s kubectl drain clover1 --ignore-daemonsets --delete-emptydir-data --force --timeout=120s",
      "k3s kubectl delete node clover1 --ignore-not-found --timeout=60s",
    ]);
    const again = m.run(removeNodeScript(pi));
    assert.match(again.stdout, /node clover1 is not in the cluster/);
    assert.deepEqual(kubectl(again), []);
  });

  it("removes a leaving server's node (its etcd member), then waits for etcd to be healthy", () => {
    const s2 = { ...pi, role: "server" as const };
    const m = withNode(new FakeMachine().withK3s());
    const r = m.run(removeNodeScript(s2));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(kubectl(r), [
      "k3s kubectl drain clover1 --ignore-daemonsets --delete-emptydir-data --force --timeout=120s",
      "k3s kubectl delete node clover1 --ignore-not-found --timeout=300s",
    ]);
    assert.ok(r.calls.includes("k3s kubectl get --raw /readyz/etcd"));
    assert.match(
      r.stdout,
      /server clover1 left the cluster: its etcd member is removed and etcd is healthy/,
    );
    // etcd that stays unhealthy fails the step, so the uninstall after it does not run.
    const sick = withNode(new FakeMachine().withK3s().set("etcd-breaks-on-delete"));
    const failed = sick.run(removeNodeScript(s2).replace("WAIT_SECONDS='300'", "WAIT_SECONDS='3'"));
    assert.equal(failed.status, 1);
    assert.match(
      failed.stderr,
      /^etcd is not healthy on the first server 3s after clover1's member was removed: see journalctl -u k3s there\. clover1 was not uninstalled yet/m,
    );
  });

  describe("a leaving server while another is down", () => {
    const s2 = { ...pi, role: "server" as const };
    /** Servers clover1 (leaving), s1 and s3; the ones in `down` are not Ready. */
    const lab = (down: readonly string[]) => {
      const m = withNode(new FakeMachine().withK3s());
      for (const name of ["clover1", "s1", "s3"]) {
        fs.writeFileSync(path.join(m.state, "nodes", name), "");
        fs.writeFileSync(path.join(m.state, "nodes", `${name}.role`), "server");
        if (down.includes(name)) fs.writeFileSync(path.join(m.state, "nodes", `${name}.down`), "");
      }
      return m;
    };

    it("refuses before it drains or deletes anything, naming the server that is down", () => {
      const r = lab(["s3"]).run(removeNodeScript(s2));
      assert.equal(r.status, 1);
      assert.match(
        r.stderr,
        /^server clover1 cannot leave while s3 is down: etcd would be left with a dead member among the rest and lose quorum \(the API would go\)\. Remove the dead server first \(delete it from machines, pulumi up\), or bring it back; then remove clover1\. Nothing was drained, deleted or uninstalled$/m,
      );
      assert.deepEqual(kubectl(r), []);
    });

    it("removes the server that is down itself: the others are up", () => {
      // Its own Ready condition is False too (ready-after: never).
      const r = lab(["clover1"]).set("ready-after", "1000").run(removeNodeScript(s2));
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(kubectl(r), [
        "k3s kubectl delete node clover1 --ignore-not-found --timeout=300s",
      ]);
    });

    it("refuses while etcd is not healthy, and an agent's removal does not ask", () => {
      const sick = lab([]).set("etcd-unhealthy");
      const r = sick.run(removeNodeScript(s2));
      assert.equal(r.status, 1);
      assert.match(
        r.stderr,
        /^etcd is not healthy on the first server: clover1 stays until it is/m,
      );
      assert.deepEqual(kubectl(r), []);
      const agent = lab(["s3"]).run(removeNodeScript(pi));
      assert.equal(agent.status, 0, agent.stderr);
    });
  });

  it("deletes the node of a dead machine at once, without waiting out a drain", () => {
    const m = withNode(new FakeMachine().withK3s().set("ready-after", "1000"));
    const r = m.run(removeNodeScript(pi));
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /node clover1 is not Ready \(its machine is off or gone\): deleting it without a drain/,
    );
    assert.deepEqual(kubectl(r), [
      "k3s kubectl delete node clover1 --ignore-not-found --timeout=60s",
    ]);
  });
});

describe("scripts: reading secrets back", () => {
  it("prints a file as root and nothing else, by a fixed command line", () => {
    const m = new FakeMachine();
    fs.writeFileSync(m.file("token"), TOKEN);
    const r = m.runProgram(readFileProgram(m.file("token")));
    assert.equal(r.stdout, TOKEN);
    assert.deepEqual(r.calls, [`sudo -n cat ${m.file("token")}`]);
  });
});

describe("scripts: air-gapped install", () => {
  /** A machine whose SSH user's home holds what k3s.airgap copied there. */
  function airgapped(binaryVersion = "v1.33.5+k3s1"): { m: FakeMachine; plan: AirgapPlan } {
    const m = new FakeMachine();
    const laptop = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-laptop-"));
    const files = {
      installScript: path.join(laptop, "install.sh"),
      binary: path.join(laptop, "k3s"),
      images: path.join(laptop, "k3s-airgap-images-amd64.tar.zst"),
    };
    fs.copyFileSync(path.join(STANDINS, "k3s-installer.sh"), files.installScript);
    // Stands for the k3s binary of that release.
    fs.writeFileSync(
      files.binary,
      `#!/bin/sh\nK3S_STANDIN_VERSION=${binaryVersion} exec bash "$STANDINS/k3s" "$@"\n`,
    );
    fs.writeFileSync(files.images, "images");
    const airgap = {
      installScript: files.installScript,
      binaries: { amd64: files.binary },
      images: { amd64: files.images },
    };
    const plan = airgapPlan(airgap, server);
    assert.ok(plan !== undefined);
    // What CopyToRemote does: the files land in the SSH user's home.
    fs.mkdirSync(m.file("home/lab"), { recursive: true });
    for (const f of plan.copies) fs.copyFileSync(f.local, m.file(`home/lab/${f.remote}`));
    return { m, plan };
  }
  const airgapInstall = (plan: AirgapPlan) =>
    installScript({
      machine: server,
      version: "v1.33.5+k3s1",
      configYaml: renderK3sConfig({
        machine: server,
        joinHost: undefined,
        clusterInit: false,
        extraArgs: [],
      }),
      joinHost: undefined,
      airgap: plan.params,
    });

  it("installs the copied binary and images, then runs the copied installer without download", () => {
    const { m, plan } = airgapped();
    const r = m.run(airgapInstall(plan));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.calls.some((c) => c.startsWith("curl")), "nothing downloaded");
    assert.ok(
      r.calls.includes(
        "installer server INSTALL_K3S_VERSION=v1.33.5+k3s1 INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_SKIP_START=true",
      ),
    );
    const k3s = m.file("usr/local/bin/k3s");
    assert.equal((fs.statSync(k3s).mode & 0o777).toString(8), "755");
    assert.match(fs.readFileSync(k3s, "utf8"), /K3S_STANDIN_VERSION=v1\.33\.5\+k3s1 /);
    assert.equal(
      fs.readFileSync(
        m.file("var/lib/rancher/k3s/agent/images/rosfleet-k3s-airgap-images-amd64.tar.zst"),
        "utf8",
      ),
      "images",
    );
  });

  it("is a no-op the second time, and reinstalls when the binary changed", () => {
    const { m, plan } = airgapped();
    m.run(airgapInstall(plan));
    const again = m.run(airgapInstall(plan));
    assert.equal(again.calls.filter((c) => c.startsWith("installer")).length, 0);
    fs.appendFileSync(m.file("home/lab/rosfleet-k3s"), "# rebuilt\n");
    const changed = m.run(airgapInstall(plan));
    assert.equal(changed.calls.filter((c) => c.startsWith("installer")).length, 1);
  });

  it("leaves a local machine's own binary as it is (no chmod), and installs from it", () => {
    const { m } = airgapped();
    const laptop = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-laptop-"));
    const own = path.join(laptop, "k3s-v1.33.5");
    fs.writeFileSync(
      own,
      `#!/bin/sh\nK3S_STANDIN_VERSION=v1.33.5+k3s1 exec bash "$STANDINS/k3s" "$@"\n`,
    );
    fs.chmodSync(own, 0o644);
    fs.copyFileSync(path.join(STANDINS, "k3s-installer.sh"), path.join(laptop, "install.sh"));
    const plan = airgapPlan(
      { installScript: path.join(laptop, "install.sh"), binaries: { amd64: own }, images: {} },
      { ...server, host: "localhost", local: true },
    );
    assert.ok(plan !== undefined && plan.copies.length === 0);
    const r = m.run(airgapInstall(plan));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      (fs.statSync(own).mode & 0o777).toString(8),
      "644",
      "the user's file is untouched",
    );
    assert.equal((fs.statSync(m.file("usr/local/bin/k3s")).mode & 0o777).toString(8), "755");
    assert.deepEqual(
      fs.readdirSync(m.file("usr/local/bin")).filter((f) => f.includes("check")),
      [],
      "no check copy left",
    );
  });

  it("refuses a binary of another release, before installing anything", () => {
    const { m, plan } = airgapped("v1.32.1+k3s1");
    const r = m.run(airgapInstall(plan));
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /the air-gap k3s binary for laptop is v1\.32\.1\+k3s1, but k3s\.version is v1\.33\.5\+k3s1/,
    );
    assert.equal(fs.existsSync(m.file("usr/local/bin/k3s")), false);
    assert.equal(fs.existsSync(m.file("etc/rancher/k3s")), false);
  });

  it("removes the copied files with k3s", () => {
    const { m, plan } = airgapped();
    m.run(airgapInstall(plan));
    const r = m.run(
      { create: airgapInstall(plan), delete: uninstallScript(server, plan) },
      {
        action: "delete",
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(m.file("home/lab")), []);
  });

  it("refuses, as root, to remove a name that is a path or a glob, and removes nothing", () => {
    const { m, plan } = airgapped();
    m.run(airgapInstall(plan));
    const kept = m.file("home/kept");
    fs.writeFileSync(kept, "the user's");
    for (const hostile of ["../kept", "rosfleet-*"]) {
      const bad: AirgapPlan = {
        ...plan,
        copies: [...plan.copies, { role: "images", local: "/dev/null", remote: hostile }],
      };
      const r = m.run(
        { create: airgapInstall(plan), delete: uninstallScript(server, bad) },
        { action: "delete" },
      );
      assert.equal(r.status, 1, hostile);
      assert.match(
        r.stderr,
        new RegExp(`refusing to remove air-gap file "${hostile.replace("*", "\\*")}" from laptop`),
      );
      assert.ok(fs.existsSync(kept), hostile);
    }
    assert.equal(fs.readdirSync(m.file("home/lab")).length, plan.copies.length);
    assert.ok(fs.existsSync(m.file("usr/local/bin/k3s")), "checked before k3s is removed");
  });
});
