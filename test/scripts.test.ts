// Script tier: every script the program sends is run for real by bash, exactly as rendered and
// wrapped for the machine, against a temp root. The system commands it calls (sudo, curl,
// systemctl, k3s, ...) are recording fakes from test/fakes that keep their state in files.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AirgapPlan, airgapPlan } from "../components/k3s/airgap";
import { renderK3sConfig } from "../components/k3s/render";
import {
  installScript,
  nodeScript,
  readFileScript,
  removeNodeScript,
  uninstallScript,
} from "../components/k3s/scripts";
import { preflightScript } from "../components/machine/machine";
import { commandLine } from "../components/shell";
import { Machine } from "../components/config";
import { machine } from "./helpers/machine";

const FAKES = path.join(__dirname, "fakes");
const TOKEN = "K10aaaabbbbccccdddd::server:never-print-me";

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

  /** Creates a state flag file (e.g. "reachable", "docker-running"). */
  set(flag: string, content = ""): this {
    fs.writeFileSync(path.join(this.state, flag), content);
    return this;
  }

  file(rel: string): string {
    return path.join(this.root, rel);
  }

  /** Runs `script` as the program would send it (as root: through `sudo -n`), stdin optional. */
  run(script: string, opts: { asRoot?: boolean; stdin?: string } = {}): Result {
    const rooted = script.replace(/^ROOT=''$/m, `ROOT='${this.root}'`);
    const line = commandLine(rooted, { asRoot: opts.asRoot ?? true, user: "lab" });
    fs.writeFileSync(this.log, "");
    const r = spawnSync("/bin/sh", ["-c", line], {
      input: opts.stdin ?? "",
      encoding: "utf8",
      env: {
        PATH: `${FAKES}:${process.env["PATH"] ?? "/usr/bin:/bin"}`,
        FAKE_LOG: this.log,
        FAKE_STATE: this.state,
        FAKE_ROOT: this.root,
        // bash -c with a socket for stdin (as over SSH, and as node spawns it) reads ~/.bashrc.
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

describe("scripts: install", () => {
  it("installs the pinned version with settings in a 0600 config.yaml, waits for Ready", () => {
    const m = new FakeMachine();
    const r = m.run(install(server));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      r.calls.filter((c) => /^(curl|installer|systemctl (restart|disable))/.test(c)),
      ["curl -sfL https://get.k3s.io", "installer server INSTALL_K3S_VERSION=v1.33.5+k3s1"],
    );
    assert.ok(r.calls.some((c) => c.startsWith("k3s kubectl get node laptop -o")));
    const config = m.file("etc/rancher/k3s/config.yaml");
    assert.equal((fs.statSync(config).mode & 0o777).toString(8), "600");
    assert.match(
      fs.readFileSync(config, "utf8"),
      /^node-name: laptop\ntls-san:\n {2}- 192\.168\.1\.21\n/,
    );
  });

  it("is a no-op the second time", () => {
    const m = new FakeMachine();
    m.run(install(server));
    const r = m.run(install(server));
    assert.equal(r.status, 0);
    assert.match(r.stdout, /k3s v1\.33\.5\+k3s1 \(server\) on laptop is up to date/);
    assert.equal(r.calls.filter((c) => /^(curl|installer|systemctl restart)/.test(c)).length, 0);
  });

  it("restarts k3s when only its configuration changed, re-runs the installer on a new version", () => {
    const m = new FakeMachine();
    m.run(install(server));
    const restarted = m.run(install({ ...server, docker: true }));
    assert.ok(restarted.calls.includes("systemctl restart k3s"));
    assert.ok(!restarted.calls.some((c) => c.startsWith("curl")));
    const upgraded = m.run(install(server).replace("v1.33.5+k3s1", "v1.34.1+k3s1"));
    assert.ok(upgraded.calls.includes("installer server INSTALL_K3S_VERSION=v1.34.1+k3s1"));
  });

  it("fails with the journal hint when the server does not become Ready", () => {
    const m = new FakeMachine().set("ready-after", "1000");
    const r = m.run(install(server).replace("WAIT_SECONDS='300'", "WAIT_SECONDS='1'"));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /k3s server laptop is not Ready after 1s: see journalctl -u k3s on it/);
    assert.ok(r.calls.includes("sleep 2"), "polls rather than failing at once");
  });

  it("joins an agent with the token from stdin into a 0600 file, never printed or passed as an argument", () => {
    const m = new FakeMachine().set("reachable");
    const r = m.run(install(pi, "192.168.1.21"), { stdin: TOKEN });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.calls.includes("installer agent INSTALL_K3S_VERSION=v1.33.5+k3s1"));
    const token = m.file("etc/rancher/k3s/token");
    assert.equal(fs.readFileSync(token, "utf8"), TOKEN);
    assert.equal((fs.statSync(token).mode & 0o777).toString(8), "600");
    assert.match(
      fs.readFileSync(m.file("etc/rancher/k3s/config.yaml"), "utf8"),
      /token-file: \/etc\/rancher\/k3s\/token/,
    );
    for (const text of [r.stdout, r.stderr, ...r.calls])
      assert.ok(!text.includes("never-print-me"), text);
    const again = m.run(install(pi, "192.168.1.21"), { stdin: TOKEN });
    assert.equal(
      again.calls.filter((c) => /^(curl|installer|systemctl restart)/.test(c)).length,
      0,
    );
  });

  it("stops a stray k3s server on an agent first, as the lab notes did", () => {
    const m = new FakeMachine().set("reachable").set("stray-server");
    fs.mkdirSync(m.file("usr/local/bin"), { recursive: true });
    fs.writeFileSync(
      m.file("usr/local/bin/k3s-killall.sh"),
      '#!/bin/sh\necho k3s-killall.sh >>"$FAKE_LOG"\nrm -f "$FAKE_STATE/stray-server"\n',
      { mode: 0o755 },
    );
    fs.mkdirSync(path.join(m.state, "active"));
    fs.writeFileSync(path.join(m.state, "active", "k3s"), "");
    const r = m.run(install(pi, "192.168.1.21"), { stdin: TOKEN });
    assert.equal(r.status, 0, r.stderr);
    const order = (c: string) => r.calls.indexOf(c);
    assert.ok(order("systemctl disable --now k3s") >= 0);
    assert.ok(order("k3s-killall.sh") > order("systemctl disable --now k3s"));
    assert.ok(order("k3s-killall.sh") < order("installer agent INSTALL_K3S_VERSION=v1.33.5+k3s1"));
    const again = m.run(install(pi, "192.168.1.21"), { stdin: TOKEN });
    assert.ok(!again.calls.includes("k3s-killall.sh"), "no stray server the second time");
  });

  it("changes nothing on an agent that cannot reach its server, and says so", () => {
    const m = new FakeMachine();
    const r = m.run(install(pi, "192.168.1.21"), { stdin: TOKEN });
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^clover1 cannot reach the k3s server at 192\.168\.1\.21:6443\/tcp \(nothing was changed here\)/,
    );
    assert.equal(fs.existsSync(m.file("etc/rancher/k3s")), false);
  });

  it("refuses to join without a token", () => {
    const r = new FakeMachine().set("reachable").run(install(pi, "192.168.1.21"), { stdin: "" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no cluster token was given on stdin/);
  });
});

describe("scripts: uninstall", () => {
  it("runs the agent uninstall script and removes the token; then does nothing", () => {
    const m = new FakeMachine().set("reachable");
    m.run(install(pi, "192.168.1.21"), { stdin: TOKEN });
    const r = m.run(uninstallScript(pi));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.calls.includes("k3s-agent-uninstall.sh"));
    assert.equal(fs.existsSync(m.file("etc/rancher/k3s/token")), false);
    const again = m.run(uninstallScript(pi));
    assert.equal(again.status, 0);
    assert.match(again.stdout, /k3s \(agent\) is not installed on clover1/);
  });
});

describe("scripts: node reconcile and removal (on the server)", () => {
  const labelled = (labels: Record<string, string>, taints: string[], cordon = false) =>
    nodeScript({ ...pi, labels, taints, cordon });
  const kubectl = (r: Result) =>
    r.calls.filter((c) => /^k3s kubectl (label|taint|cordon|uncordon|annotate)/.test(c));

  it("waits for the node, then applies labels, taints and cordon", () => {
    const m = new FakeMachine().set("ready-after", "2");
    fs.mkdirSync(path.join(m.state, "nodes"));
    fs.writeFileSync(path.join(m.state, "nodes", "clover1"), "");
    const r = m.run(labelled({ robot: "clover1" }, ["gpu=true:NoSchedule"], true));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.calls.filter((c) => c === "sleep 2").length, 2);
    assert.deepEqual(kubectl(r), [
      "k3s kubectl label --overwrite node/clover1 robot=clover1",
      "k3s kubectl taint --overwrite node/clover1 gpu=true:NoSchedule",
      "k3s kubectl annotate --overwrite node/clover1 rosfleet.dev/labels=robot rosfleet.dev/taints=gpu:NoSchedule",
      "k3s kubectl cordon node/clover1",
    ]);
  });

  it("removes the labels and taints it set before that the stack no longer has", () => {
    const m = new FakeMachine();
    fs.mkdirSync(path.join(m.state, "nodes"));
    fs.writeFileSync(path.join(m.state, "nodes", "clover1"), "");
    m.run(labelled({ robot: "clover1", zone: "a" }, ["gpu=true:NoSchedule"]));
    const r = m.run(labelled({ zone: "b" }, []));
    assert.deepEqual(kubectl(r), [
      "k3s kubectl label node/clover1 robot-",
      "k3s kubectl taint node/clover1 gpu:NoSchedule-",
      "k3s kubectl label --overwrite node/clover1 zone=b",
      "k3s kubectl annotate --overwrite node/clover1 rosfleet.dev/labels=zone rosfleet.dev/taints=",
      "k3s kubectl uncordon node/clover1",
    ]);
  });

  it("fails with a hint when the node never registers", () => {
    const r = new FakeMachine().run(
      nodeScript(pi).replace("WAIT_SECONDS='300'", "WAIT_SECONDS='0'"),
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /node clover1 did not register as Ready within 0s/);
  });

  it("drains and deletes a removed agent's node, and is done when it is gone", () => {
    const m = new FakeMachine();
    fs.mkdirSync(path.join(m.state, "nodes"));
    fs.writeFileSync(path.join(m.state, "nodes", "clover1"), "");
    const r = m.run(removeNodeScript(pi));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      r.calls.filter((c) => /^k3s kubectl (drain|delete)/.test(c)),
      [
        "k3s kubectl drain clover1 --ignore-daemonsets --delete-emptydir-data --force --timeout=120s",
        "k3s kubectl delete node clover1 --ignore-not-found",
      ],
    );
    const again = m.run(removeNodeScript(pi));
    assert.match(again.stdout, /node clover1 is not in the cluster/);
    assert.ok(!again.calls.some((c) => c.startsWith("k3s kubectl drain")));
  });
});

describe("scripts: reading secrets back", () => {
  it("prints a file as root and nothing else", () => {
    const m = new FakeMachine();
    fs.writeFileSync(m.file("token"), TOKEN);
    const r = m.run(readFileScript(m.file("token")));
    assert.equal(r.stdout, TOKEN);
    assert.deepEqual(r.calls, [`sudo -n bash -c set -euo pipefail\\ncat '${m.file("token")}'`]);
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
    fs.copyFileSync(path.join(FAKES, "k3s-installer.sh"), files.installScript);
    // Stands for the k3s binary: it only tells its version.
    fs.writeFileSync(files.binary, `#!/bin/sh\necho "k3s version ${binaryVersion} (fake)"\n`);
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
        "installer server INSTALL_K3S_VERSION=v1.33.5+k3s1 INSTALL_K3S_SKIP_DOWNLOAD=true",
      ),
    );
    const k3s = m.file("usr/local/bin/k3s");
    assert.equal((fs.statSync(k3s).mode & 0o777).toString(8), "755");
    assert.match(fs.readFileSync(k3s, "utf8"), /k3s version v1\.33\.5\+k3s1/);
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
    const r = m.run(uninstallScript(server, plan));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(m.file("home/lab")), []);
  });
});
