// The SSH tier: the exact command lines rosfleet sends, run over a real SSH connection to an
// OpenSSH test host on loopback (see host.ts), through the login shell and `sudo -n` — the path
// the Pulumi command provider's remote.Command takes (an SSH exec request, stdin attached).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { renderK3sConfig } from "../../components/k3s/render";
import { installScript, uninstallScript } from "../../components/k3s/scripts";
import { preflightScript } from "../../components/machine/machine";
import { commandLine } from "../../components/shell";
import { machine } from "../helpers/machine";
import { SSH_USER, SshHost, missingPrerequisite } from "./host";

const TOKEN = "K10sshsshsshssh::server:must-not-show-in-ps";
const agent = machine({ name: "clover1", role: "agent", kind: "vm", user: SSH_USER });

describe("ssh: command lines over a real SSH connection", function () {
  this.timeout(60_000);
  const host = new SshHost();
  /** A script as sent to the machine, with its ROOT pointed at the test host's temp root. */
  const sent = (script: string, asRoot = true) =>
    commandLine(script.replace(/^ROOT=''$/m, `ROOT='${host.root}'`), { asRoot, user: SSH_USER });
  const join = () =>
    sent(
      installScript({
        machine: agent,
        version: "v1.33.5+k3s1",
        configYaml: renderK3sConfig({
          machine: agent,
          joinHost: "192.168.1.21",
          clusterInit: false,
          extraArgs: [],
        }),
        joinHost: "192.168.1.21",
      }),
    );

  before(async function () {
    const missing = missingPrerequisite();
    if (missing !== undefined) {
      // CI installs what these tests need (.ci/run); elsewhere, say why they did not run.
      if (process.env["CI"] === "true") throw new Error(`SSH tests cannot run: ${missing}`);
      console.log(`    SSH tests skipped: ${missing}`);
      this.skip();
    }
    await host.start();
    fs.writeFileSync(`${host.state}/reachable`, "");
  });
  after(() => host.stop());

  it("passes preflight as the SSH user on a fit machine", async () => {
    const r = await host.run(
      sent(
        preflightScript({ ...agent, arch: process.arch === "arm64" ? "arm64" : "amd64" }),
        false,
      ),
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^preflight ok: clover1 arch=(amd64|arm64) nic=\S+\n$/);
  });

  it("joins with the token on stdin: in a 0600 file, never on a command line", async () => {
    fs.writeFileSync(`${host.state}/slow`, "");
    const running = host.run(join(), TOKEN);
    // While the join runs, no process on this machine may show the token in its command line.
    const seen: string[] = [];
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline) {
      for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
        try {
          const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
          if (cmdline.includes("must-not-show-in-ps")) seen.push(cmdline);
        } catch {
          // the process ended meanwhile
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await running;
    fs.rmSync(`${host.state}/slow`);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(seen, []);
    assert.ok(host.calls().includes("installer agent INSTALL_K3S_VERSION=v1.33.5+k3s1"));
    const token = `${host.root}/etc/rancher/k3s/token`;
    assert.equal(fs.readFileSync(token, "utf8"), TOKEN);
    assert.equal((fs.statSync(token).mode & 0o777).toString(8), "600");
    assert.ok(!`${r.stdout}${r.stderr}${host.calls().join("\n")}`.includes("must-not-show-in-ps"));
  });

  it("changes nothing the second time", async () => {
    const r = await host.run(join(), TOKEN);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /k3s v1\.33\.5\+k3s1 \(agent\) on clover1 is up to date/);
    assert.deepEqual(
      host.calls().filter((c) => /^(curl|installer|systemctl restart)/.test(c)),
      [],
    );
  });

  it("uninstalls, and then has nothing left to do", async () => {
    const r = await host.run(sent(uninstallScript(agent)));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(host.calls().includes("k3s-agent-uninstall.sh"));
    assert.equal(fs.existsSync(`${host.root}/etc/rancher/k3s/token`), false);
    const again = await host.run(sent(uninstallScript(agent)));
    assert.match(again.stdout, /k3s \(agent\) is not installed on clover1/);
  });
});
