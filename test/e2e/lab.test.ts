// The lab tier: rosfleet's k3s steps on a lab of separate machines (Docker containers, one of
// them arm64 under emulation; see lab.ts) that reach each other over a network, with a real
// API server behind the k3s stand-in — the same command lines and stdin the Pulumi program's
// steps send, over SSH, in the order it runs them: preflight, air-gap copies, server install,
// token read, agent install + join, node labels, a second run that changes nothing, agent
// removal, uninstall. What it proves is the lab itself (the harness `npm run test:e2e` drives
// through Pulumi) and the scripts across machines: the join over the network with the real
// token, labels and taints by the real kubectl, drain and delete of a real Node. Run with
// `npm run test:lab` (root; builds the toolchain's control plane and kubectl).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { airgapPlan } from "../../components/k3s/airgap";
import { AGENT_TOKEN, renderK3sConfig, rewriteKubeconfig } from "../../components/k3s/render";
import {
  installScript,
  joinProgram,
  nodeScript,
  registriesScript,
  removeNodeScript,
  uninstallScript,
} from "../../components/k3s/scripts";
import { renderRegistries } from "../../components/k3s/registries";
import { redactRegistries } from "../../components/config/derived";
import { preflightScript } from "../../components/machine/machine";
import { Airgap, Machine } from "../../components/config";
import { StepScripts, bundleLine, programLine, scriptBundle } from "../../components/shell";
import { machine } from "../helpers/machine";
import {
  LAB_K3S_VERSION as VERSION,
  LAB_MACHINES as MACHINES,
  LAB_USER,
  Lab,
  LabHost,
  missingPrerequisite,
} from "./lab";

const BIN = process.env.ROSFLEET_TOOLCHAIN_BIN ?? "";

describe("lab: the k3s steps on separate machines, with a real API server behind k3s", function () {
  this.timeout(10 * 60_000);
  const lab = new Lab(MACHINES, BIN);
  const [laptop, arm, vm] = lab.hosts as [LabHost, LabHost, LabHost];
  const stack = new Map<string, Machine>(
    MACHINES.map((m, i) => [
      m.name,
      machine({ ...m, host: lab.hosts[i]?.ip, user: LAB_USER, labels: {}, taints: [] }),
    ]),
  );
  const m = (h: LabHost) => stack.get(h.name) as Machine;
  let airgap: Airgap;
  let token = "";

  /** A script step as the provider sends it: the fixed line, the bundle on stdin. */
  const send = async (
    h: LabHost,
    scripts: StepScripts,
    opts: { asRoot?: boolean; action?: "create" | "delete" } = {},
  ) => {
    const line = bundleLine(opts.action ?? "create", {
      asRoot: opts.asRoot ?? true,
      user: LAB_USER,
    });
    const r = await lab.ssh(h, line, scriptBundle(scripts));
    assert.equal(r.status, 0, `${h.name}: ${r.stdout}${r.stderr}\n${lab.logs()}`);
    return r.stdout;
  };
  // k3s.registries on the VM: a private registry with a login (the secret travels in the
  // registries step's stdin only).
  const PASSWORD = "lab-registry-password";
  const REGISTRIES = {
    mirrors: { "docker.io": { endpoint: ["http://10.0.0.9:5000"] } },
    configs: { "10.0.0.9:5000": { auth: { username: "lab", password: PASSWORD } } },
  };
  const registriesOf = (h: LabHost): StepScripts => ({
    create: registriesScript(m(h), renderRegistries(REGISTRIES)),
    delete: registriesScript(m(h), ""),
  });
  const installOf = (h: LabHost): StepScripts => {
    const joinHost = h === laptop ? undefined : laptop.ip;
    const plan = airgapPlan(airgap, m(h));
    const shown = h === vm ? renderRegistries(redactRegistries(REGISTRIES)) : undefined;
    return {
      create: installScript({
        machine: m(h),
        version: VERSION,
        configYaml: renderK3sConfig({ machine: m(h), joinHost, clusterInit: false, extraArgs: [] }),
        joinHost,
        airgap: plan?.params,
        registries: shown,
      }),
      delete: uninstallScript(m(h), plan, shown !== undefined),
    };
  };
  const join = async (h: LabHost) => {
    const r = await lab.ssh(h, programLine(joinProgram(), { asRoot: true, user: LAB_USER }), token);
    assert.equal(r.status, 0, `${h.name}: ${r.stdout}${r.stderr}\n${lab.logs()}`);
    return r.stdout;
  };
  const kubectl = (args: string) => lab.kubectl(laptop, args);
  const leftovers = (h: LabHost) => lab.leftovers(h);
  const running = (h: LabHost) => lab.root(h, "pgrep -f 'bin/k3s (server|agent)$'").status === 0;

  before(async function () {
    const missing = missingPrerequisite(MACHINES);
    if (missing !== undefined) {
      if (process.env["CI"] === "true") throw new Error(`the lab cannot run: ${missing}`);
      console.log(`    lab tests skipped: ${missing}`);
      this.skip();
    }
    if (!fs.existsSync(`${BIN}/kube-apiserver`) || !fs.existsSync(`${BIN}/kubectl`))
      throw new Error("the lab needs the toolchain: run `npm run test:lab` (it builds it)");
    await lab.start();
    airgap = {
      ...lab.airgapFiles(VERSION),
      images: {},
    };
  });
  after(async function () {
    if (this.currentTest?.state === "failed") console.error(lab.logs());
    await lab.stop();
  });

  it("passes preflight on each machine, and tells an arm64 machine declared amd64", async () => {
    for (const h of lab.hosts) {
      const out = await send(
        h,
        { create: preflightScript(m(h), { airgapped: true }) },
        { asRoot: false },
      );
      assert.match(out, new RegExp(`^preflight ok: ${h.name} arch=${h.arch} nic=eth0\\n$`));
    }
    const r = await lab.ssh(
      arm,
      bundleLine("create", { asRoot: false, user: LAB_USER }),
      scriptBundle({ create: preflightScript({ ...m(arm), arch: "amd64" }, { airgapped: true }) }),
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /the stack declares amd64 but uname -m says aarch64 \(arm64\)/);
  });

  it("checks a two-interface machine's nodeIp and flannelIface against its own addresses", async () => {
    const preflight = async (over: Partial<Machine>) =>
      lab.ssh(
        arm,
        bundleLine("create", { asRoot: false, user: LAB_USER }),
        scriptBundle({ create: preflightScript({ ...m(arm), ...over }, { airgapped: true }) }),
      );
    const wired = await preflight({ nodeIp: arm.ip, flannelIface: "eth0" });
    assert.equal(wired.status, 0, wired.stderr);
    assert.equal((await preflight({ nodeIp: arm.wifiIp, flannelIface: "eth1" })).status, 0);
    const crossed = await preflight({ nodeIp: arm.ip, flannelIface: "eth1" });
    assert.equal(crossed.status, 1);
    assert.match(crossed.stderr, new RegExp(`flannelIface: ${arm.ip} \\(nodeIp\\) is not on eth1`));
    const elsewhere = await preflight({ nodeIp: "172.31.254.9" });
    assert.equal(elsewhere.status, 1);
    assert.match(
      elsewhere.stderr,
      new RegExp(
        `nodeIp: 172\\.31\\.254\\.9 is not an address of this machine \\(it has ${arm.ip} on eth0, ${arm.wifiIp} on eth1\\)`,
      ),
    );
    const missing = await preflight({ flannelIface: "wlan0" });
    assert.match(
      missing.stderr,
      /flannelIface: this machine has no interface wlan0 \(it has lo, (.*, )?eth0, eth1\)/,
    );
    // From here on the arm machine is the lab's Pi on its wired address.
    stack.set(arm.name, { ...m(arm), nodeIp: arm.ip, flannelIface: "eth0" });
  });

  it("installs the server from the air-gap files: a Ready node, a token, a kubeconfig", async () => {
    // Copied to the SSH user's home as CopyToRemote does.
    for (const h of lab.hosts)
      for (const f of airgapPlan(airgap, m(h))?.copies ?? []) {
        const r = await lab.ssh(h, `cat >${f.remote}`, fs.readFileSync(f.local, "utf8"));
        assert.equal(r.status, 0, r.stderr);
      }
    const out = await send(laptop, installOf(laptop));
    assert.match(out, /installing k3s v1\.33\.5\+k3s1 \(server\) on e2e-laptop \(found: none\)/);
    assert.match(out, /node e2e-laptop is Ready/);
    // What the agents are given: the agent token (k3s's secure format), not the server token.
    const read = await lab.ssh(
      laptop,
      programLine(["cat", AGENT_TOKEN], { asRoot: true, user: LAB_USER }),
    );
    token = read.stdout.trim();
    assert.match(token, /^K10[0-9a-f]{64}::node:[0-9a-f]{32}$/);
    const kubeconfig = await lab.ssh(
      laptop,
      programLine(["cat", "/etc/rancher/k3s/k3s.yaml"], { asRoot: true, user: LAB_USER }),
    );
    assert.match(kubeconfig.stdout, /server: https:\/\/127\.0\.0\.1:6443/);
    // Rewritten as the program does, it works from the laptop's side over the network, with
    // the server's certificate checked (its tls-san is the machine's host).
    const file = path.join(lab.dir, "lab.kubeconfig");
    fs.writeFileSync(file, rewriteKubeconfig(kubeconfig.stdout, laptop.ip, "lab"), { mode: 0o600 });
    const nodes = execFileSync(
      path.join(BIN, "kubectl"),
      ["--kubeconfig", file, "get", "nodes", "-o", "name"],
      {
        encoding: "utf8",
      },
    );
    assert.equal(nodes, "node/e2e-laptop\n");
    assert.equal(lab.root(laptop, "stat -c %a /etc/rancher/k3s/k3s.yaml").stdout.trim(), "600");
  });

  it("joins both agents over the network with the agent token; labels and taints by kubectl", async () => {
    assert.match(await send(vm, registriesOf(vm)), /registries\.yaml on e2e-vm written/);
    assert.equal(lab.root(vm, "stat -c %a /etc/rancher/k3s/registries.yaml").stdout.trim(), "600");
    assert.equal(
      lab.root(vm, "cat /etc/rancher/k3s/registries.yaml").stdout,
      renderRegistries(REGISTRIES),
    );
    for (const h of [arm, vm]) {
      const out = await send(h, installOf(h));
      assert.match(out, new RegExp(`it starts when ${h.name}-join gives it the cluster token`));
      if (h === arm)
        assert.match(
          lab.root(arm, "cat /etc/rancher/k3s/config.yaml").stdout,
          new RegExp(`\\nnode-ip: ${arm.ip.replace(/\./g, "\\.")}\\nflannel-iface: eth0\\n`),
        );
      assert.match(
        await join(h),
        new RegExp(`k3s \\(agent\\) on ${h.name} runs with the cluster token`),
      );
    }
    stack.set(arm.name, {
      ...m(arm),
      labels: { robot: "arm-1" },
      taints: ["robot=arm:NoSchedule"],
    });
    for (const h of lab.hosts) await send(laptop, { create: nodeScript(m(h)) });
    const nodes = kubectl(
      "get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.labels.kubernetes\\.io/arch} {.metadata.labels.robot} {.spec.taints[*].key}{\"\\n\"}{end}'",
    );
    assert.deepEqual(
      nodes
        .trim()
        .split("\n")
        .map((l) => l.trim())
        .sort(),
      ["e2e-arm arm64 arm-1 robot", "e2e-laptop amd64", "e2e-vm amd64"],
    );
  });

  it("changes nothing the second time", async () => {
    assert.match(
      await send(laptop, installOf(laptop)),
      /k3s v1\.33\.5\+k3s1 \(server\) on e2e-laptop is up to date/,
    );
    for (const h of [arm, vm]) {
      assert.match(
        await send(h, installOf(h)),
        new RegExp(`\\(agent\\) on ${h.name} is up to date`),
      );
      assert.match(
        await join(h),
        new RegExp(`k3s-agent on ${h.name} already runs with this cluster token`),
      );
    }
    assert.match(await send(vm, registriesOf(vm)), /registries\.yaml on e2e-vm is up to date/);
  });

  it("restarts an agent whose registries.yaml changed, and it joins again", async () => {
    const changed = structuredClone(REGISTRIES);
    changed.configs["10.0.0.9:5000"].auth.password = `${PASSWORD}-2`;
    const out = await send(vm, {
      create: registriesScript(m(vm), renderRegistries(changed)),
      delete: registriesScript(m(vm), ""),
    });
    assert.match(out, /registries\.yaml on e2e-vm written: restarting k3s-agent to read it/);
    assert.ok(!out.includes(PASSWORD));
    assert.ok(running(vm), "k3s-agent runs again on e2e-vm");
    assert.match(await send(vm, registriesOf(vm)), /restarting k3s-agent/);
  });

  it("a label change is one update of the node; a removed label goes", async () => {
    stack.set(arm.name, { ...m(arm), labels: { zone: "bench" }, taints: [] });
    await send(laptop, { create: nodeScript(m(arm)) });
    const labels = JSON.parse(
      kubectl("get node e2e-arm -o jsonpath='{.metadata.labels}'"),
    ) as Record<string, string>;
    assert.equal(labels.zone, "bench");
    assert.equal(labels.robot, undefined);
    assert.equal(kubectl("get node e2e-arm -o jsonpath='{.spec.taints}'"), "");
  });

  it("removes a leaving server's node only once k3s's etcd finalizer lets it go, etcd healthy after", async () => {
    // A second server's Node as k3s keeps it: with the finalizer its etcd controller removes
    // when the member is gone (here, this test does so 4 s later).
    const name = "e2e-s2";
    const finalizer = "wrangler.cattle.io/managed-etcd-controller";
    const node = { apiVersion: "v1", kind: "Node", metadata: { name, finalizers: [finalizer] } };
    kubectl(`create -f - <<'EOF'\n${JSON.stringify(node)}\nEOF`);
    const removal = send(laptop, {
      create: removeNodeScript({ ...m(laptop), name, role: "server" }),
    }).then((out) => ({ out, at: Date.now() }));
    await new Promise((resolve) => setTimeout(resolve, 4000));
    assert.match(kubectl(`get node ${name} -o jsonpath={.metadata.deletionTimestamp}`), /\d{4}-/);
    const lifted = Date.now();
    kubectl(`patch node ${name} --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]'`);
    const { out, at } = await removal;
    assert.ok(at >= lifted, "the step waited for the member's removal (the finalizer)");
    assert.match(
      out,
      /server e2e-s2 left the cluster: its etcd member is removed and etcd is healthy/,
    );
    assert.doesNotMatch(kubectl("get nodes -o name"), /e2e-s2/);
  });

  it("removes an agent: drained and deleted on the server, then uninstalled on its machine", async () => {
    assert.match(
      await send(laptop, { create: removeNodeScript(m(vm)) }),
      /node\/e2e-vm (drained|deleted)/,
    );
    assert.doesNotMatch(kubectl("get nodes -o name"), /e2e-vm/);
    await send(vm, installOf(vm), { action: "delete" });
    assert.equal(running(vm), false, "no k3s process on e2e-vm");
    // The uninstall keeps registries.yaml (a reinstall would need it); its own step removes it.
    assert.equal(leftovers(vm), "/etc/rancher/k3s\n/etc/rancher/k3s/registries.yaml");
    assert.match(await send(vm, registriesOf(vm), { action: "delete" }), /removed/);
    assert.equal(leftovers(vm), "");
    assert.ok(running(arm), "the other agent still runs");
  });

  it("refuses at preflight a k3s data dir rosfleet did not make (closed to the SSH user), unless adopted", async () => {
    // A k3s installed by hand, as root: its datastore under a folder closed to others.
    lab.root(
      vm,
      "mkdir -p /var/lib/rancher/k3s/server/db && touch /var/lib/rancher/k3s/server/db/state.db && chmod 0700 /var/lib/rancher",
    );
    const preflight = (over: Partial<Machine>) =>
      lab.ssh(
        vm,
        bundleLine("create", { asRoot: false, user: LAB_USER }),
        scriptBundle({ create: preflightScript({ ...m(vm), ...over }, { airgapped: true }) }),
      );
    const refused = await preflight({});
    assert.equal(refused.status, 1);
    assert.match(
      refused.stderr,
      /^ {2}- k3s: a k3s rosfleet did not install is here \(\/var\/lib\/rancher\/k3s\); rosfleet leaves it alone\. To hand it over set adopt: true on this machine in the stack/m,
    );
    const adopted = await preflight({ adopt: true });
    assert.equal(adopted.status, 0, adopted.stderr);
    lab.root(vm, "rm -rf /var/lib/rancher");
    assert.equal(leftovers(vm), "");
  });

  it("uninstalls the rest, and then has nothing left to do", async () => {
    for (const h of [arm, laptop]) {
      await send(h, installOf(h), { action: "delete" });
      assert.equal(running(h), false, `no k3s process on ${h.name}`);
      assert.equal(leftovers(h), "");
      assert.match(await send(h, installOf(h), { action: "delete" }), /is not installed on/);
    }
  });
});
