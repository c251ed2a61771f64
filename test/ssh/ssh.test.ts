// The SSH tier: the exact command lines and stdin rosfleet sends, over a real SSH connection to
// an OpenSSH test host on loopback (see host.ts), through the login shell and `sudo -n` — the
// path the Pulumi command provider's remote.Command takes (an SSH exec request, stdin attached)
// — with the machine's real tools. Only k3s, its installer and systemctl stand in.
import assert from "node:assert/strict";
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { airgapPlan } from "../../components/k3s/airgap";
import { renderK3sConfig } from "../../components/k3s/render";
import { installScript, joinProgram, uninstallScript } from "../../components/k3s/scripts";
import { preflightScript } from "../../components/machine/machine";
import { StepScripts, bundleLine, programLine, scriptBundle } from "../../components/shell";
import { Machine } from "../../components/config";
import { machine } from "../helpers/machine";
import { rooted } from "../helpers/root";
import { SSH_USER, SshHost, SshRun, missingPrerequisite } from "./host";

const TOKEN = "K10sshsshsshssh::server:must-not-show-in-ps";
const VERSION = "v1.33.5+k3s1";
const STANDINS = path.join(__dirname, "..", "standins");
const HOST_ARCH = process.arch === "arm64" ? "arm64" : "amd64";
const agent = machine({
  name: "clover1",
  role: "agent",
  kind: "vm",
  user: SSH_USER,
  arch: HOST_ARCH,
});
/** The server the agent joins: this test listens on its API port. */
const SERVER = "127.0.0.1";

/** What @pulumi/command 1.2.1 reports for a failed command (FACTS.md), before the engine's prefix. */
const providerError = (line: string, r: SshRun) =>
  `Process exited with status ${r.status}: running ${JSON.stringify(line)}:\n${r.stdout}${r.stderr}`;

/** Every process's command line on this machine, now. */
function commandLines(): string[] {
  const lines: string[] = [];
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      lines.push(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8"));
    } catch {
      // the process ended meanwhile
    }
  }
  return lines;
}

describe("ssh: steps over a real SSH connection, with the machine's own tools", function () {
  this.timeout(60_000);
  const host = new SshHost();
  let api: net.Server;
  let airgap: ReturnType<typeof airgapPlan>;

  /** Sends a step's script bundle (`action`) as the provider would: fixed line, script on stdin. */
  const runScript = (
    scripts: StepScripts,
    opts: { asRoot?: boolean; action?: "create" | "delete" } = {},
  ) => {
    const line = bundleLine(opts.action ?? "create", {
      asRoot: opts.asRoot ?? true,
      user: SSH_USER,
    });
    return { line, run: host.run(line, rooted(scriptBundle(scripts), host.root)) };
  };
  const installSteps = (m: Machine): StepScripts => ({
    create: installScript({
      machine: m,
      version: VERSION,
      configYaml: renderK3sConfig({
        machine: m,
        joinHost: SERVER,
        clusterInit: false,
        extraArgs: [],
      }),
      joinHost: SERVER,
      airgap: airgap?.params,
    }),
    delete: uninstallScript(m, airgap),
  });
  const joinStep = (token = TOKEN) =>
    host.run(programLine(joinProgram(host.root), { asRoot: true, user: SSH_USER }), token);

  before(async function () {
    const missing = missingPrerequisite();
    if (missing !== undefined) {
      // CI installs what these tests need (.ci/run); elsewhere, say why they did not run.
      if (process.env["CI"] === "true") throw new Error(`SSH tests cannot run: ${missing}`);
      console.log(`    SSH tests skipped: ${missing}`);
      this.skip();
    }
    await host.start();
    // Booted with systemd, as preflight checks (the scripts' systemctl is a stand-in).
    fs.mkdirSync(path.join(host.root, "run", "systemd", "system"), { recursive: true });
    api = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => api.listen(6443, SERVER, resolve));
    // k3s.airgap files, put in the SSH user's home as CopyToRemote would: the installer and
    // the binary of this release stand in for k3s's.
    const laptop = fs.mkdtempSync(path.join(host.dir, "laptop-"));
    const binary = path.join(laptop, "k3s");
    fs.writeFileSync(
      binary,
      `#!/bin/sh\nK3S_STANDIN_VERSION=${VERSION} exec bash "$STANDINS/k3s" "$@"\n`,
    );
    airgap = airgapPlan(
      {
        installScript: path.join(STANDINS, "k3s-installer.sh"),
        binaries: { [HOST_ARCH]: binary },
        images: {},
      },
      agent,
    );
    for (const f of airgap?.copies ?? []) {
      fs.copyFileSync(f.local, path.join(host.home, f.remote));
      execFileSync("chown", [SSH_USER, path.join(host.home, f.remote)]);
    }
  });
  after(async () => {
    host.stop();
    await new Promise<void>((resolve) =>
      api === undefined ? resolve() : api.close(() => resolve()),
    );
  });

  it("passes preflight as the SSH user on a fit machine", async () => {
    const { run } = runScript(
      { create: preflightScript(agent, { airgapped: true }) },
      { asRoot: false },
    );
    const r = await run;
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^preflight ok: clover1 arch=(amd64|arm64) nic=\S+\n$/);
  });

  it("fails preflight with a short message that names the machine and the fix", async () => {
    const wrong = {
      ...agent,
      arch: HOST_ARCH === "amd64" ? ("arm64" as const) : ("amd64" as const),
    };
    const { line, run } = runScript(
      { create: preflightScript(wrong, { airgapped: true }) },
      { asRoot: false },
    );
    const r = await run;
    assert.equal(r.status, 1);
    const message = providerError(line, r);
    assert.equal(
      message,
      [
        `Process exited with status 1: running "bash -s -- create":`,
        "preflight failed on clover1 (nothing was installed):",
        `  - arch: the stack declares ${wrong.arch} but uname -m says ${process.arch === "arm64" ? "aarch64" : "x86_64"} (${HOST_ARCH}): set arch: ${HOST_ARCH} on this machine in the stack`,
        "",
      ].join("\n"),
    );
    assert.ok(message.length < 400, `${message.length} characters`);
  });

  it("joins a fresh agent while a stray k3s server runs: stops it, not itself; no script or token in ps", async () => {
    // A hand-started k3s server, as the lab notes found on a Pi: k3s execs itself as k3s-server.
    fs.copyFileSync("/bin/sleep", path.join(host.dir, "k3s-server"));
    const stray: ChildProcess = spawn(path.join(host.dir, "k3s-server"), ["300"], {
      stdio: "ignore",
    });
    fs.writeFileSync(`${host.state}/slow`, "");
    const { run } = runScript(installSteps(agent));
    const seen = new Set<string>();
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline) {
      for (const line of commandLines())
        if (line.includes("rosfleet_create") || line.includes("CONFIG_YAML")) seen.add(line);
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await run;
    fs.rmSync(`${host.state}/slow`);
    assert.equal(r.status, 0, `${r.status}: ${r.stderr}`);
    assert.match(r.stdout, /^stopping a stray k3s server on clover1$/m);
    await new Promise((resolve) =>
      stray.exitCode === null && stray.signalCode === null
        ? stray.once("exit", resolve)
        : resolve(0),
    );
    assert.equal(stray.signalCode, "SIGTERM");
    assert.deepEqual([...seen], [], "the script is never on a command line");
    assert.ok(
      host
        .calls()
        .includes(
          `installer agent INSTALL_K3S_VERSION=${VERSION} INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_SKIP_START=true`,
        ),
    );

    const tokenSeen: string[] = [];
    const joining = joinStep();
    const until = Date.now() + 500;
    while (Date.now() < until) {
      tokenSeen.push(...commandLines().filter((l) => l.includes("must-not-show-in-ps")));
      await new Promise((res) => setTimeout(res, 20));
    }
    const joined = await joining;
    assert.equal(joined.status, 0, joined.stderr);
    assert.deepEqual(tokenSeen, []);
    assert.ok(host.calls().includes("systemctl restart k3s-agent"));
    const token = `${host.root}/etc/rancher/k3s/token`;
    assert.equal(fs.readFileSync(token, "utf8"), TOKEN);
    assert.equal((fs.statSync(token).mode & 0o777).toString(8), "600");
    assert.ok(
      !`${r.stdout}${r.stderr}${joined.stdout}${joined.stderr}${host.calls().join("\n")}`.includes(
        "must-not-show-in-ps",
      ),
    );
  });

  it("changes nothing the second time", async () => {
    const r = await runScript(installSteps(agent)).run;
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /k3s v1\.33\.5\+k3s1 \(agent\) on clover1 is up to date/);
    const joined = await joinStep();
    assert.equal(joined.status, 0, joined.stderr);
    assert.match(joined.stdout, /k3s-agent on clover1 already runs with this cluster token/);
    assert.deepEqual(
      host.calls().filter((c) => /^(installer|systemctl (restart|disable))/.test(c)),
      [],
    );
  });

  it("leaves the install alone when a renamed machine's old step is deleted", async () => {
    const r = await runScript(installSteps({ ...agent, name: "clover-old" }), { action: "delete" })
      .run;
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /left installed \(not clover-old's agent\)/);
    assert.ok(fs.existsSync(`${host.root}/etc/rancher/k3s/token`));
  });

  it("uninstalls, and then has nothing left to do", async () => {
    const r = await runScript(installSteps(agent), { action: "delete" }).run;
    assert.equal(r.status, 0, r.stderr);
    assert.ok(host.calls().includes("k3s-agent-uninstall.sh"));
    assert.equal(fs.existsSync(`${host.root}/etc/rancher/k3s/token`), false);
    assert.deepEqual(
      fs.readdirSync(host.home).filter((f) => f.startsWith("rosfleet-")),
      [],
    );
    const again = await runScript(installSteps(agent), { action: "delete" }).run;
    assert.match(again.stdout, /k3s \(agent\) is not installed on clover1/);
  });
});
