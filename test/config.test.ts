import {
  pullCredentials,
  redactRegistries,
  registriesWithSecrets,
  schedulableNodes,
  taintedNodes,
} from "../components/config/derived";
import * as pulumi from "@pulumi/pulumi";
import assert from "node:assert/strict";
import { LabSettings, ParseEnv, Problem, formatProblems, parseLab } from "../components/config";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { REPO_ROOT, configValues, exampleStacks, readStackConfig } from "./helpers/stack";

// The SDK's own tsconfig reader, which its run.ts uses (its typings export nothing).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { loadTypeScriptCompilerOptions } = require("@pulumi/pulumi/tsutils") as {
  loadTypeScriptCompilerOptions: (file: string) => Record<string, unknown>;
};

const server = { name: "laptop", host: "192.168.1.21", role: "server" };
const base = {
  ssh: { user: "ubuntu" },
  machines: [server],
  k3s: { version: "v1.33.5+k3s1" },
  image: { repository: "docker.io/lab/ros_demo" },
};

/** The shell of a user whose SSH agent runs (the no-agent rules have their own tests). */
const WITH_AGENT: Partial<ParseEnv> = { sshAgent: () => "running" };

function settings(config: Record<string, unknown>): LabSettings {
  const result = parseLab(configValues(config), WITH_AGENT);
  if (!result.ok) assert.fail(formatProblems(result.problems));
  return result.settings;
}

function problems(config: Record<string, unknown>, env?: Partial<ParseEnv>): string[] {
  const result = parseLab(configValues(config), { ...WITH_AGENT, ...env });
  assert.equal(result.ok, false, "expected the configuration to be rejected");
  return (result as { problems: readonly Problem[] }).problems.map(
    (p) => `${p.path}: ${p.message}`,
  );
}

const withMachines = (...machines: object[]) => ({ ...base, machines });

describe("config: example stacks", () => {
  it("ships the dev stack, the lab-notes stack and the MicroK8s guide's stack", () => {
    assert.deepEqual(exampleStacks(), ["clover", "dev", "microk8s"]);
  });

  // microk8s reads its kubeconfig from the user's ~/.kube: validated in cluster.test.ts.
  for (const stack of exampleStacks().filter((s) => s !== "microk8s")) {
    it(`validates Pulumi.${stack}.yaml from disk`, () => {
      settings(readStackConfig(stack));
    });
  }

  it("runs the program transpile-only, its types checked by npm test instead", () => {
    const project = parse(fs.readFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), "utf8")) as {
      runtime: { options: { typescript: boolean; tsconfig: string } };
    };
    assert.equal(project.runtime.options.typescript, true);
    // What the SDK's run.ts does with it: transpileOnly = the tsconfig's noCheck.
    const read = (file: string) =>
      loadTypeScriptCompilerOptions(path.join(REPO_ROOT, file))["noCheck"];
    assert.equal(read(project.runtime.options.tsconfig), true);
    assert.notEqual(read("tsconfig.json"), true, "tsc (npm run build) still checks every type");
    const scripts = (
      JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    assert.match(scripts["test"] ?? "", /^npm run build && /);
    assert.equal(scripts["build"], "tsc --noEmit");
  });

  it("makes the dev stack a single local server", () => {
    const lab = settings(readStackConfig("dev"));
    assert.deepEqual(
      lab.machines.map((m) => [m.name, m.host, m.local, m.role, m.arch]),
      [["devbox", "localhost", true, "server", "amd64"]],
    );
  });

  it("describes the lab notes: laptop server with docker, Pi clover1 and a VM as agents", () => {
    const lab = settings(readStackConfig("clover"));
    assert.deepEqual(
      lab.machines.map((m) => [m.name, m.role, m.kind, m.arch, m.docker, m.user]),
      [
        ["laptop", "server", "laptop", "amd64", true, "ubuntu"],
        ["clover1", "agent", "pi", "arm64", false, "ubuntu"],
        ["vm1", "agent", "vm", "amd64", false, "ubuntu"],
      ],
    );
  });
});

describe("config: defaults", () => {
  it("fills every optional key", () => {
    const lab = settings(base);
    assert.deepEqual(lab.machines[0], {
      name: "laptop",
      host: "192.168.1.21",
      local: false,
      role: "server",
      kind: "vm",
      arch: "amd64",
      user: "ubuntu",
      port: 22,
      nodeIp: undefined,
      flannelIface: undefined,
      hostKey: undefined,
      labels: {},
      taints: [],
      docker: false,
      cordon: false,
      skipUninstall: false,
      adopt: false,
    });
    assert.deepEqual(lab.k3s, {
      version: "v1.33.5+k3s1",
      apiEndpoint: undefined,
      serverArgs: [],
      agentArgs: [],
      airgap: undefined,
      registries: undefined,
    });
    assert.deepEqual(lab.image, {
      repository: "docker.io/lab/ros_demo",
      build: true,
      builder: undefined,
      cache: true,
      platforms: ["linux/amd64", "linux/arm64"],
      importInto: undefined,
    });
    assert.deepEqual(
      { ...lab.ros, workloads: lab.ros.workloads.map((w) => w.name) },
      {
        distro: "jazzy",
        domainId: 0,
        discovery: "discovery-server",
        multus: { interface: "eth0", range: undefined, install: true },
        workloads: [
          "demo-listener",
          "demo-talkerlistener",
          "demo-talker",
          "ros-talker",
          "ros-listener",
        ],
      },
    );
    assert.deepEqual(lab.dashboard, { enabled: true, access: "view", tokenHours: 24 });
    assert.deepEqual(lab.deliveryCheck, {
      enabled: true,
      timeoutSeconds: 120,
      maxLossPercent: 0,
      maxLatencyMs: 0,
      largeMessageBytes: 1 << 20,
    });
    assert.equal(lab.registryUsername, undefined);
  });

  it("makes a pi arm64 and lets a machine's user override ssh.user", () => {
    const lab = settings(
      withMachines(server, {
        name: "pi1",
        host: "10.0.0.2",
        role: "agent",
        kind: "pi",
        user: "pi",
      }),
    );
    assert.equal(lab.machines[1].arch, "arm64");
    assert.equal(lab.machines[1].user, "pi");
  });

  it("accepts booleans and integers given as text by `pulumi config set --path`", () => {
    const lab = settings({
      ...base,
      image: { repository: "r/x", build: "false" },
      ros: { domainId: "42" },
      machines: [{ ...server, port: "2222", docker: "true", skipUninstall: "true" }],
    });
    assert.equal(lab.image.build, false);
    assert.equal(lab.ros.domainId, 42);
    assert.equal(lab.machines[0].port, 2222);
    assert.equal(lab.machines[0].docker, true);
    assert.equal(lab.machines[0].skipUninstall, true);
  });

  it("needs no SSH user for a local machine", () => {
    const lab = settings({ ...base, ssh: undefined, machines: [{ ...server, host: "localhost" }] });
    assert.equal(lab.machines[0].user, undefined);
    assert.equal(lab.machines[0].local, true);
  });

  it("accepts three servers (HA) with agents", () => {
    const lab = settings(
      withMachines(
        { name: "s1", host: "10.0.0.1", role: "server" },
        { name: "s2", host: "10.0.0.2", role: "server" },
        { name: "s3", host: "10.0.0.3", role: "server" },
        { name: "a1", host: "10.0.0.4", role: "agent" },
      ),
    );
    assert.equal(lab.machines.filter((m) => m.role === "server").length, 3);
  });
});

describe("config: workloads", () => {
  it("defaults to the lab notes' three as one-replica Deployments and the guide's, talkerlistener on arm64", () => {
    const lab = settings(readStackConfig("clover"));
    assert.deepEqual(lab.ros.workloads, [
      {
        name: "demo-listener",
        kind: "deployment",
        replicas: 1,
        arch: undefined,
        node: undefined,
        lang: "cpp",
        containers: ["listener", "toolbox"],
      },
      {
        name: "demo-talkerlistener",
        kind: "deployment",
        replicas: 1,
        arch: "arm64",
        node: undefined,
        lang: "cpp",
        containers: ["listener", "talker", "toolbox"],
      },
      {
        name: "demo-talker",
        kind: "deployment",
        replicas: 1,
        arch: undefined,
        node: undefined,
        lang: "cpp",
        containers: ["talker"],
      },
      {
        name: "ros-talker",
        kind: "deployment",
        replicas: 1,
        arch: undefined,
        node: undefined,
        lang: "cpp",
        containers: ["talker"],
      },
      {
        name: "ros-listener",
        kind: "deployment",
        replicas: 1,
        arch: undefined,
        node: undefined,
        lang: "cpp",
        containers: ["listener"],
      },
    ]);
  });

  it("leaves talkerlistener unpinned in a lab without arm64", () => {
    assert.equal(settings(base).ros.workloads[1].arch, undefined);
  });

  it("takes ros.workloads as written, with defaults", () => {
    const lab = settings({
      ...base,
      ros: {
        workloads: [
          { name: "talkers", kind: "deployment", replicas: 5, lang: "py", containers: ["talker"] },
        ],
      },
    });
    assert.deepEqual(lab.ros.workloads, [
      {
        name: "talkers",
        kind: "deployment",
        replicas: 5,
        arch: undefined,
        node: undefined,
        lang: "py",
        containers: ["talker"],
      },
    ]);
  });

  it("rejects placements the lab cannot satisfy and malformed workloads", () => {
    assert.deepEqual(
      problems({
        ...withMachines(server, { name: "vm1", host: "10.0.0.9", role: "agent", cordon: true }),
        ros: {
          workloads: [
            { name: "a", arch: "arm64", containers: ["talker"] },
            { name: "b", node: "clover1", containers: ["listener"] },
            { name: "b", node: "vm1", containers: ["listener"] },
            {
              name: "c",
              node: "laptop",
              arch: "amd64",
              replicas: 2,
              containers: ["talker", "talker"],
            },
            { name: "d", kind: "job", containers: [] },
            { name: "ros-discovery", kind: "deployment", containers: ["talker"] },
          ],
        },
      }),
      [
        'ros.workloads[4].kind: expected pod | deployment, got "job"',
        "ros.workloads[4].containers: must list at least one container",
        'ros.workloads[2].name: "b" is already used by ros.workloads[1]',
        `ros.workloads[5].name: "ros-discovery" is the name of rosfleet's own discovery server (their selectors would take each other's pods); choose another name`,
        "ros.workloads[0].arch: no machine of the lab is arm64: nothing could run it",
        'ros.workloads[1].node: no machine is named "clover1"',
        'ros.workloads[2].node: "vm1" is cordoned: nothing can be scheduled there',
        "ros.workloads[3].replicas: only a kind: deployment has replicas",
        'ros.workloads[3].containers: "talker" is listed twice: one container per role',
      ],
    );
  });
});

describe("config: multus", () => {
  it("needs a free address range with ros.discovery multus, and well-formed values", () => {
    assert.deepEqual(problems({ ...base, ros: { discovery: "multus" } }), [
      "ros.multus.range: required with ros.discovery multus: free addresses of the machines' LAN for the pods' second interfaces, e.g. 192.168.1.200/28",
    ]);
    assert.deepEqual(
      problems({
        ...base,
        ros: { discovery: "multus", multus: { interface: "eth 0", range: "192.168.1.0/33" } },
      }),
      [
        'ros.multus.interface: expected a network interface name such as eth0, got "eth 0"',
        'ros.multus.range: expected an IPv4 range such as 192.168.1.200/28, got "192.168.1.0/33"',
      ],
    );
  });

  it("needs a range with room for every pod on ros-macvlan at once, and says how much", () => {
    const three = [
      server,
      { name: "pi1", host: "10.0.0.2", role: "agent", kind: "pi" },
      { name: "pi2", host: "10.0.0.3", role: "agent", kind: "pi" },
    ];
    const multus = (range: string, extra: Record<string, unknown> = {}) =>
      problems({
        ...base,
        machines: three,
        ros: { discovery: "multus", multus: { range }, ...extra },
      });
    // The default workloads: 5 pods, 2 more in a rollout, 3 per node for the check and readiness.
    assert.deepEqual(multus("192.168.1.200/28"), [
      "ros.multus.range: 192.168.1.200/28 gives 14 addresses, but the lab's pods on ros-macvlan need up to 19 at once (5 workload pods, 5 more while Deployments roll out, a beacon, a check Job and a Multus readiness Job on each of 3 nodes): pods past that wait in ContainerCreating; use a /27 or larger range of free LAN addresses",
    ]);
    assert.equal(
      settings({
        ...base,
        machines: three,
        ros: { discovery: "multus", multus: { range: "192.168.1.192/27" } },
      }).ros.multus.range,
      "192.168.1.192/27",
    );
    // Listed workloads count by their replicas (and a quarter more while rolling out).
    const workloads = [
      { name: "talkers", kind: "deployment", replicas: 8, containers: ["talker"] },
    ];
    const [wide] = multus("192.168.1.192/28", { workloads });
    assert.match(wide ?? "", /need up to 19 at once \(8 workload pods, 2 more while/);
    assert.match(wide ?? "", /use a \/27 or larger/);
  });

  it("takes the interface and range as given", () => {
    const lab = settings({
      ...base,
      ros: {
        discovery: "multus",
        multus: { interface: "enp7s0", range: "192.168.1.200/28", install: false },
      },
    });
    assert.deepEqual(lab.ros.multus, {
      interface: "enp7s0",
      range: "192.168.1.200/28",
      install: false,
    });
  });
});

describe("config: k3s.airgap", () => {
  const pi = { name: "pi1", host: "10.0.0.2", role: "agent", kind: "pi" };
  const onDisk = new Set(["airgap/install.sh", "airgap/k3s", "airgap/k3s-arm64"]);
  const isFile = (f: string) => onDisk.has(f);

  it("takes the installer and a binary per arch of the lab", () => {
    const airgap = {
      installScript: "airgap/install.sh",
      binaries: { amd64: "airgap/k3s", arm64: "airgap/k3s-arm64" },
    };
    const result = parseLab(
      configValues({ ...withMachines(server, pi), k3s: { version: "v1.33.5+k3s1", airgap } }),
      { ...WITH_AGENT, isFile },
    );
    assert.ok(result.ok);
    assert.deepEqual(result.settings.k3s?.airgap, { ...airgap, images: {} });
  });

  it("names missing files and the arch a machine needs a binary for", () => {
    assert.deepEqual(
      problems(
        {
          ...withMachines(server, pi),
          k3s: {
            version: "v1.33.5+k3s1",
            airgap: {
              installScript: "airgap/install.sh",
              binaries: { amd64: "airgap/k3s.gz" },
              images: { amd64: "x.tar.zst" },
            },
          },
        },
        { isFile },
      ),
      [
        'k3s.airgap.binaries.amd64: no file at "airgap/k3s.gz" (paths are relative to the project directory)',
        'k3s.airgap.images.amd64: no file at "x.tar.zst" (paths are relative to the project directory)',
        "k3s.airgap.binaries.arm64: required: machines[1] (pi1) is arm64 (the k3s release asset k3s-arm64)",
      ],
    );
  });
});

describe("config: k3s.registries", () => {
  const registries = {
    mirrors: {
      "docker.io": { endpoint: ["http://192.168.1.10:5000"] },
      "192.168.1.10:5000": { endpoint: ["http://192.168.1.10:5000"] },
    },
    configs: {
      "192.168.1.10:5000": {
        auth: { username: "lab", password: "hunter2" },
        tls: { insecure_skip_verify: "true" },
      },
    },
  };
  const withRegistries = (r: unknown) => ({
    ...base,
    k3s: { version: "v1.33.5+k3s1", registries: r },
  });

  it("keeps k3s's own keys, shows credentials as [secret] in the settings", () => {
    const result = parseLab(configValues(withRegistries(registries)), {
      ...WITH_AGENT,
      isSecret: () => true,
    });
    assert.ok(result.ok);
    assert.deepEqual(result.settings.k3s?.registries, {
      mirrors: registries.mirrors,
      configs: {
        "192.168.1.10:5000": {
          auth: { username: "lab", password: "[secret]" },
          tls: { insecure_skip_verify: true },
        },
      },
    });
    assert.ok(!JSON.stringify(result.settings).includes("hunter2"));
  });

  it("wants credentials set as secrets, naming the path to set (never the value)", () => {
    const lines = problems(withRegistries(registries), { isSecret: () => false });
    assert.deepEqual(lines, [
      `k3s.registries.configs["192.168.1.10:5000"].auth.password: is stored in plaintext in the stack file: set it as a secret with pulumi config set --secret --path 'k3s.registries.configs["192.168.1.10:5000"].auth.password' <value>`,
    ]);
  });

  it("needs no secret without credentials", () => {
    const open = { mirrors: registries.mirrors };
    assert.ok(
      parseLab(configValues(withRegistries(open)), { ...WITH_AGENT, isSecret: () => false }).ok,
    );
  });

  it("names each malformed entry by the path pulumi config set --path takes", () => {
    assert.deepEqual(
      problems(
        withRegistries({
          mirrors: {
            "docker.io": { endpoint: ["192.168.1.10:5000"] },
            "bad host!": { endpoint: [] },
          },
          configs: { "ghcr.io": { auth: { user: "x" } } },
        }),
      ),
      [
        'k3s.registries.mirrors["docker.io"].endpoint[0]: expected an endpoint URL such as http://192.168.1.10:5000 (http:// for a registry without TLS), got "192.168.1.10:5000"',
        'k3s.registries.mirrors["bad host!"]: expected a registry such as docker.io or 192.168.1.10:5000, got "bad host!"',
        'k3s.registries.configs["ghcr.io"].auth.user: unknown key (docs/reference.md lists every key)',
      ],
    );
  });

  it("hands the k3s stage the credentials as a secret only when there are some", async () => {
    const isSecret = (o: pulumi.Output<unknown>) =>
      (o as unknown as { isSecret: Promise<boolean> }).isSecret;
    const full = registriesWithSecrets({ registries });
    assert.ok(full !== undefined);
    assert.equal(await isSecret(full), true);
    const open = registriesWithSecrets({ registries: { mirrors: registries.mirrors } });
    assert.ok(open !== undefined);
    assert.equal(await isSecret(open), false);
    assert.equal(registriesWithSecrets({}), undefined);
    assert.deepEqual(
      redactRegistries({ mirrors: {}, configs: { r: { auth: { auth: "dXNlcjpwdw==" } } } }),
      { mirrors: {}, configs: { r: { auth: { auth: "[secret]" } } } },
    );
  });
});

describe("config: addresses of machines with two interfaces", () => {
  const pi = { name: "clover1", host: "clover1.local", role: "agent", kind: "pi" };

  it("takes nodeIp, flannelIface and k3s.apiEndpoint", () => {
    const s = settings({
      ...withMachines(server, { ...pi, nodeIp: "192.168.1.31", flannelIface: "eth0" }),
      k3s: { version: "v1.33.5+k3s1", apiEndpoint: "k3s.lab.example" },
    });
    assert.equal(s.machines[1]?.nodeIp, "192.168.1.31");
    assert.equal(s.machines[1]?.flannelIface, "eth0");
    assert.equal(s.machines[0]?.nodeIp, undefined);
    assert.equal(s.k3s?.apiEndpoint, "k3s.lab.example");
    assert.equal(
      settings(withMachines({ ...server, nodeIp: "fd00::21" })).machines[0]?.nodeIp,
      "fd00::21",
    );
  });

  it("names a bad address, interface or endpoint, a reused nodeIp and a flag set twice", () => {
    assert.deepEqual(
      problems({
        ...withMachines(
          { ...server, nodeIp: "192.168.1.300" },
          { ...pi, nodeIp: "192.168.1.31", flannelIface: "wlan0; reboot" },
          { ...pi, name: "clover2", host: "clover2.local", nodeIp: "192.168.1.31" },
        ),
        k3s: {
          version: "v1.33.5+k3s1",
          apiEndpoint: "https://k3s.lab:6443",
          agentArgs: ["--node-ip=192.168.1.99"],
        },
      }),
      [
        'machines[0].nodeIp: expected this machine\'s IP address on the lab network, such as 192.168.1.31, got "192.168.1.300"',
        'machines[1].flannelIface: expected a network interface name such as eth0, got "wlan0; reboot"',
        'k3s.apiEndpoint: expected a DNS name or IP address such as k3s.lab.example or 192.168.1.20, got "https://k3s.lab:6443"',
        "machines[1].nodeIp: k3s.agentArgs sets --node-ip too, for every agent: keep only nodeIp on each machine",
        "machines[2].nodeIp: k3s.agentArgs sets --node-ip too, for every agent: keep only nodeIp on each machine",
        'machines[2].nodeIp: "192.168.1.31" is already used by machines[1]',
      ],
    );
  });
});

describe("config: k3s.serverArgs / agentArgs never override rosfleet's settings", () => {
  const pi = { name: "clover1", host: "clover1.local", role: "agent", kind: "pi" };
  const TOKEN = "K10abc::server:never-echo-this";
  const withArgs = (serverArgs: unknown[], agentArgs: unknown[] = []) => ({
    ...withMachines(server, pi),
    k3s: { version: "v1.33.5+k3s1", serverArgs, agentArgs },
  });

  it("refuses each flag rosfleet sets, naming what sets it, and token flags without their value", () => {
    const found = problems(
      withArgs(
        [
          "--disable=traefik",
          "--node-name=other",
          "--cluster-init",
          `--token=${TOKEN}`,
          "--write-kubeconfig-mode=0644",
          "--data-dir=/srv/k3s",
        ],
        [
          "--server=https://10.0.0.9:6443",
          "--token-file=/tmp/t",
          `--agent-token=${TOKEN}`,
          "--docker",
        ],
      ),
    );
    assert.deepEqual(
      found.map((p) => p.replace(/: .*/s, "")),
      [
        "k3s.serverArgs[1]",
        "k3s.serverArgs[2]",
        "k3s.serverArgs[3]",
        "k3s.serverArgs[4]",
        "k3s.serverArgs[5]",
        "k3s.agentArgs[0]",
        "k3s.agentArgs[1]",
        "k3s.agentArgs[2]",
        "k3s.agentArgs[3]",
      ],
    );
    assert.equal(
      found[0],
      "k3s.serverArgs[1]: --node-name is rosfleet's own setting: each node is named by machines[].name; remove it from k3s.serverArgs",
    );
    assert.match(
      found[5],
      /^k3s\.agentArgs\[0\]: --server is rosfleet's own setting: a joining machine joins the first server's host, or k3s\.apiEndpoint/,
    );
    assert.match(
      found[2],
      /^k3s\.serverArgs\[3\]: --token would put a secret in plaintext in the stack file, the state and config\.yaml: rosfleet reads the cluster's own token on the first server and hands it to each joining machine as a secret; remove it from k3s\.serverArgs/,
    );
    assert.match(found[8], /--docker is rosfleet's own setting: set docker: true on each machine/);
    for (const p of found) assert.ok(!p.includes("never-echo-this"), p);
  });

  it("checks --node-label and --node-taint as machines[].labels and .taints are checked", () => {
    assert.deepEqual(
      problems(withArgs([], ["--node-label=robot", "--node-taint=gpu=yes:Sometimes"])),
      [
        "k3s.agentArgs[0]: --node-label takes key=value (a label key such as robot or example.com/robot, a value of at most 63 letters, digits, '-', '_' or '.'), got \"robot\"",
        'k3s.agentArgs[1]: --node-taint takes key=value:Effect or key:Effect (NoSchedule, PreferNoSchedule, NoExecute), got "gpu=yes:Sometimes"',
      ],
    );
  });

  it("merges --node-label and --node-taint into the labels and taints of each machine of that role", () => {
    const lab = settings({
      ...withMachines(server, { ...pi, labels: { zone: "bench" }, taints: ["gpu=no:NoSchedule"] }),
      k3s: {
        version: "v1.33.5+k3s1",
        agentArgs: [
          "--node-label=zone=floor",
          "--node-label=robot=yes",
          "--node-taint=gpu=yes:NoSchedule",
          "--node-taint=wet:NoExecute",
        ],
      },
    });
    const [laptop, clover] = lab.machines;
    assert.deepEqual(laptop.labels, {});
    assert.deepEqual(laptop.taints, []);
    // The machine's own label and taint win for the same key (and effect).
    assert.deepEqual(clover.labels, { zone: "bench", robot: "yes" });
    assert.deepEqual(clover.taints, ["wet:NoExecute", "gpu=no:NoSchedule"]);
    assert.deepEqual(lab.nodes[1].labels, { zone: "bench", robot: "yes" });
  });
});

describe("config: the dashboard's admin never reaches a privileged namespace", () => {
  const lab = (discovery: string, access: string) => ({
    ...base,
    ros: { discovery },
    dashboard: { enabled: true, access },
  });

  it("refuses admin with host-network, naming the key and both ways out", () => {
    assert.deepEqual(problems(lab("host-network", "admin")), [
      "dashboard.access: admin may create pods in the rosfleet namespace, which ros.discovery host-network opens to host-network pods (Pod Security privileged): an admin token could start a privileged pod, root on a node. Use access view (read, logs; kubectl with the kubeconfig for changes), or a discovery mode whose pods pass Pod Security restricted (discovery-server, multus)",
    ]);
  });

  it("allows view with host-network, admin with discovery-server, and admin when the dashboard is off", () => {
    settings(lab("host-network", "view"));
    settings(lab("discovery-server", "admin"));
    settings({ ...lab("host-network", "admin"), dashboard: { enabled: false, access: "admin" } });
  });
});

describe("config: a change that would replace the cluster", () => {
  const installed = { previous: { servers: ["laptop"], installed: true, hosts: {} } };

  it("refuses cluster.kubeconfig on a stack that installed k3s, unless allowClusterReplacement", () => {
    const existing = {
      cluster: { kubeconfig: path.join(__dirname, "fixtures", "kubeconfig.yaml") },
      machines: [{ name: "laptop" }],
      image: base.image,
    };
    const env = installed;
    assert.deepEqual(problems(existing, env), [
      "cluster.kubeconfig: this stack installed k3s on its machines (servers laptop): with cluster.kubeconfig, pulumi up would uninstall k3s from every one of them, deleting /var/lib/rancher/k3s, even when this kubeconfig is that cluster's own. Remove cluster.kubeconfig to go on managing them, or set allowClusterReplacement: true to uninstall them and deploy onto the cluster it names",
    ]);
    assert.ok(
      parseLab(configValues({ ...existing, allowClusterReplacement: true }), {
        ...WITH_AGENT,
        ...env,
      }).ok,
    );
    // A stack that was on an existing cluster before may point at another one.
    assert.ok(
      parseLab(configValues(existing), {
        ...WITH_AGENT,
        previous: { ...env.previous, installed: false },
      }).ok,
    );
  });

  it("refuses a new only server of a one-server lab, naming both and the order that works", () => {
    const moved = withMachines({ ...server, name: "laptop2", host: "192.168.1.22" });
    assert.deepEqual(problems(moved, installed), [
      "machines: laptop is the lab's only server and holds its cluster: making laptop2 the server (or renaming it) builds a new, empty cluster there, and laptop's k3s — its cluster and everything in it — is uninstalled. Keep laptop as the server, or set allowClusterReplacement: true to do it: every Kubernetes object of the lab is then created anew on the new cluster, and the agents join it",
    ]);
    assert.ok(
      parseLab(configValues({ ...moved, allowClusterReplacement: true }), {
        ...WITH_AGENT,
        ...installed,
      }).ok,
    );
    settings(withMachines(server));
  });
});

describe("config: validation", () => {
  it("requires machines and k3s.version", () => {
    assert.deepEqual(problems({ image: base.image }), [
      "machines: required: list every machine of the lab (README: Describing a lab), or set cluster.kubeconfig to use an existing cluster",
      "k3s.version: required: a pinned k3s release tag such as v1.33.5+k3s1",
    ]);
  });

  it("rejects a lab with no machine", () => {
    assert.deepEqual(problems(withMachines()), [
      "machines: at least one machine is required (the k3s server)",
    ]);
  });

  it("rejects a lab with no server", () => {
    assert.deepEqual(problems(withMachines({ ...server, role: "agent" })), [
      'machines: no machine has role "server": a lab needs 1 server, or an odd number ≥ 3 for HA',
    ]);
  });

  it("rejects two servers: an even count is not a quorum", () => {
    assert.deepEqual(
      problems(withMachines(server, { name: "s2", host: "10.0.0.2", role: "server" })),
      [
        "machines: 2 servers cannot keep an etcd quorum: use 1 server, or an odd number ≥ 3 for HA (2 is allowed only on the way down from 3, one server per pulumi up)",
      ],
    );
  });

  describe("servers leaving an HA cluster (against the last update's servers)", () => {
    const s = (name: string, role = "server") => ({
      name,
      host: `10.0.0.${name.slice(1)}`,
      role,
    });
    const three = ["s1", "s2", "s3"];
    const changed = (
      machines: object[],
      servers: string[],
      down?: Readonly<Record<string, string>>,
    ) =>
      parseLab(configValues(withMachines(...machines)), {
        ...WITH_AGENT,
        previous: { servers, installed: true, hosts: {}, down },
      });

    it("lets one of three servers leave per up, 2 servers only on the way down, then 1", () => {
      assert.ok(changed([s("s1"), s("s2")], three).ok);
      assert.ok(changed([s("s1")], ["s1", "s2"]).ok);
      assert.ok(changed([s("s1"), s("s2"), s("s3"), s("s4"), s("s5")], three).ok);
      assert.ok(changed([s("s1"), s("s2"), s("s3")], ["s1", "s2", "s3", "s4", "s5"]).ok);
    });

    it("refuses a change that takes a majority away at once, with the steps to do it", () => {
      const result = changed([s("s1"), s("s2", "agent"), { ...s("a9"), role: "agent" }], three);
      assert.equal(result.ok, false);
      assert.deepEqual(
        (result as { problems: readonly Problem[] }).problems.map((p) => `${p.path}: ${p.message}`),
        [
          "machines: this change takes 2 of the cluster's 3 servers away at once (s2, s3; s1, s2, s3 before): etcd keeps quorum only while 2 of its 3 members stay, so at most 1 may leave per pulumi up. Do it in steps: first remove only s3 (or make it an agent), pulumi up, then the next — each up removes a server's etcd member and waits until etcd is healthy before uninstalling it",
        ],
      );
      const five = ["s1", "s2", "s3", "s4", "s5"];
      assert.equal(changed([s("s1"), s("s2")], five).ok, false);
    });

    it("keeps the first server first", () => {
      const result = changed([s("s2"), s("s1"), s("s3")], three);
      assert.equal(result.ok, false);
      assert.match(
        (result as { problems: readonly Problem[] }).problems[0].message,
        /^s1 is the first server of the HA cluster \(the others joined it; the cluster-wide steps run there\): keep it the first server in machines$/,
      );
      assert.match(
        (changed([s("s2"), s("s3")], three) as { problems: readonly Problem[] }).problems[0]
          .message,
        /it can leave only as the last server, after the others$/,
      );
    });

    it("refuses a server leaving while another is down, and lets the dead one leave", () => {
      const why = "not Ready (NodeStatusUnknown: Kubelet stopped posting node status.)";
      const result = changed([s("s1"), s("s3")], three, { s3: why });
      assert.deepEqual(
        (result as { problems: readonly Problem[] }).problems.map((p) => `${p.path}: ${p.message}`),
        [
          `machines: s2 cannot leave the cluster while s3 is ${why}: removing s2's etcd member would leave etcd s1, s3, with s3 dead — no quorum, and the cluster's API would go. Remove the dead server first: keep s2 in machines, delete s3 from them, pulumi up (the healthy members keep quorum); then remove s2. Or bring s3 back`,
        ],
      );
      assert.ok(changed([s("s1"), s("s2")], three, { s3: why }).ok);
      // Nothing leaves: a server that is down is the lab's own business.
      assert.ok(changed([s("s1"), s("s2"), s("s3")], three, { s3: why }).ok);
    });

    it("has nothing to say on a first up, a single server, or an existing cluster", () => {
      assert.ok(changed([s("s1")], []).ok);
      assert.ok(changed([s("s1"), s("s9", "agent")], ["s1"]).ok);
    });
  });

  it("rejects duplicate names and hosts, naming the first user", () => {
    assert.deepEqual(
      problems(withMachines(server, { name: "laptop", host: "192.168.1.21", role: "agent" })),
      [
        'machines[1].name: "laptop" is already used by machines[0]',
        'machines[1].host: "192.168.1.21" is already used by machines[0]',
      ],
    );
  });

  it("rejects names that are not DNS-1123 labels", () => {
    assert.deepEqual(problems(withMachines({ ...server, name: "Clover_1" })), [
      "machines[0].name: expected a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit), got \"Clover_1\"",
    ]);
  });

  it("rejects unknown role, kind, arch, discovery and distro", () => {
    assert.deepEqual(
      problems({
        ...withMachines({ ...server, role: "master", kind: "desktop", arch: "armv7" }),
        ros: { discovery: "zenoh", distro: "foxy" },
      }),
      [
        'machines[0].role: expected server | agent, got "master"',
        'machines[0].kind: expected laptop | pi | vm, got "desktop"',
        'machines[0].arch: expected amd64 | arm64, got "armv7"',
        'ros.distro: expected humble | jazzy, got "foxy"',
        'ros.discovery: expected discovery-server | host-network | multus | multicast, got "zenoh"',
        'machines: no machine has role "server": a lab needs 1 server, or an odd number ≥ 3 for HA',
      ],
    );
  });

  it("rejects a pi declared amd64", () => {
    assert.deepEqual(
      problems(
        withMachines(server, { name: "pi", host: "p", role: "agent", kind: "pi", arch: "amd64" }),
      ),
      ['machines[1].arch: a pi is arm64, got "amd64"'],
    );
  });

  it("rejects a k3s.version that is not a k3s release tag", () => {
    assert.deepEqual(problems({ ...base, k3s: { version: "1.33" } }), [
      'k3s.version: expected a k3s release tag such as v1.33.5+k3s1, got "1.33"',
    ]);
    assert.deepEqual(problems({ ...base, k3s: { version: "v1.33.5" } }), [
      'k3s.version: expected a k3s release tag such as v1.33.5+k3s1, got "v1.33.5"',
    ]);
  });

  it("rejects image.build true without image.repository", () => {
    assert.deepEqual(problems({ ...base, image: { build: true } }), [
      "image.repository: required for this lab: where to push the image so that every node pulls it, e.g. docker.io/<you>/ros_demo (only a lab of one machine, the one running pulumi, goes without one: Docker builds the image there and k3s imports it)",
    ]);
  });

  it("imports the image into k3s without image.repository only for one machine, the one running pulumi", () => {
    const local = {
      k3s: { version: "v1.33.5+k3s1" },
      machines: [{ name: "devbox", host: "localhost", role: "server" }],
    };
    assert.deepEqual(settings(local).image, {
      repository: "rosfleet.invalid/ros_demo",
      build: true,
      builder: undefined,
      cache: true,
      platforms: ["linux/amd64", "linux/arm64"],
      importInto: "devbox",
    });
    // A repository given: pushed there, as any lab.
    const pushed = { ...local, image: { repository: "localhost:5000/ros_demo" } };
    assert.equal(settings(pushed).image.importInto, undefined);
    // Not for a remote machine, a second machine, or an existing cluster: those pull.
    const needs =
      "image.repository: required for this lab: where to push the image so that every node pulls it, e.g. docker.io/<you>/ros_demo (only a lab of one machine, the one running pulumi, goes without one: Docker builds the image there and k3s imports it)";
    assert.deepEqual(problems({ ...base, image: {} }), [needs]);
    const withPi = {
      ...local,
      ssh: { user: "pi" },
      machines: [
        ...local.machines,
        { name: "pi1", host: "192.168.1.31", role: "agent", kind: "pi" },
      ],
    };
    assert.deepEqual(
      problems(withPi).filter((p) => p.startsWith("image.")),
      [needs],
    );
    assert.deepEqual(
      problems({
        cluster: { kubeconfig: "apiVersion: v1\nkind: Config\n" },
        machines: [{ name: "devbox", arch: "amd64" }],
      }).filter((p) => p.startsWith("image.")),
      [needs],
    );
    // k3s with Docker (cri-dockerd) would not see what was imported into its containerd.
    assert.deepEqual(problems({ ...local, machines: [{ ...local.machines[0], docker: true }] }), [
      "machines[0].docker: k3s would run the pods with Docker, but with no image.repository the image is imported into k3s's containerd: remove docker (the dev stack needs no Docker in k3s), or set image.repository to push the build to a registry",
    ]);
    // A builder is Docker's own here: naming a buildx one is a mistake worth saying.
    assert.deepEqual(problems({ ...local, image: { builder: "rosfleet" } }), [
      "image.builder: names a buildx builder, but with no image.repository the image is built by Docker's own builder (docker build) and imported into k3s: remove image.builder, or set image.repository to build with that builder and push",
    ]);
  });

  it("rejects image.build false without an image to deploy", () => {
    assert.deepEqual(problems({ ...base, image: { build: false } }), [
      "image.repository: required: the published image to deploy, e.g. docker.io/<you>/ros_demo",
    ]);
  });

  it("rejects an image reference that is not one, or a tag when rosfleet builds", () => {
    assert.deepEqual(problems({ ...base, image: { repository: "Docker.io/Lab/ROS" } }), [
      'image.repository: expected an image reference such as docker.io/<you>/ros_demo, got "Docker.io/Lab/ROS"',
    ]);
    assert.deepEqual(problems({ ...base, image: { repository: "docker.io/lab/ros_demo:v1" } }), [
      'image.repository: give the repository without a tag or digest when image.build is true (rosfleet tags the build with ros.distro and pins its digest), got "docker.io/lab/ros_demo:v1"',
    ]);
    const digest = `docker.io/lab/ros_demo@sha256:${"a".repeat(64)}`;
    assert.equal(
      settings({ ...base, image: { repository: digest, build: false } }).image.repository,
      digest,
    );
  });

  it("rejects a registry on localhost when other machines must pull from it", () => {
    const two = withMachines(server, { name: "pi", host: "p", role: "agent", kind: "pi" });
    const platforms = ["linux/amd64", "linux/arm64"];
    assert.deepEqual(
      problems({ ...two, image: { repository: "localhost:5000/ros_demo", platforms } }),
      [
        'image.repository: "localhost:5000/ros_demo" is on localhost, but the lab has 2 machines and each pulls from itself, so the agents would not find it: name the registry by an address every machine reaches (e.g. <laptop address>:5000/ros_demo)',
      ],
    );
    assert.deepEqual(
      problems({ ...two, image: { repository: "127.0.0.1:5000/lab/ros_demo", platforms } }).length,
      1,
    );
    // An existing cluster may serve a registry on every node (MicroK8s: localhost:32000).
    const microk8s = parseLab(
      configValues({
        ...readStackConfig("microk8s"),
        image: { repository: "localhost:32000/ros_demo", platforms },
      }),
      { isFile: () => true, readFile: () => "apiVersion: v1\nkind: Config\n" },
    );
    assert.ok(
      microk8s.ok || !microk8s.problems.some((p) => p.path === "image.repository"),
      "no image.repository problem",
    );
    // One machine (the dev stack) pulls from the registry it runs.
    assert.equal(
      settings({ ...base, image: { repository: "localhost:5000/ros_demo" } }).image.repository,
      "localhost:5000/ros_demo",
    );
  });

  it("rejects platforms that leave out a machine's arch", () => {
    assert.deepEqual(
      problems({
        ...withMachines(server, { name: "pi", host: "p", role: "agent", kind: "pi" }),
        image: { repository: "r/x", platforms: ["linux/amd64"] },
      }),
      ["image.platforms: lacks linux/arm64, which machines[1] (pi) runs"],
    );
  });

  it("rejects out-of-range numbers and malformed taints, labels and host keys", () => {
    assert.deepEqual(
      problems({
        ...withMachines({
          ...server,
          port: 70000,
          taints: ["gpu=true:Sometimes"],
          labels: { "bad key!": "x" },
          hostKey: "AAAA",
        }),
        ros: { domainId: 102 },
        deliveryCheck: { timeoutSeconds: 1.5 },
      }),
      [
        "machines[0].port: expected an integer from 1 to 65535",
        'machines[0].hostKey: expected an OpenSSH public key line such as "ssh-ed25519 AAAA...", got "AAAA"',
        'machines[0].labels["bad key!"]: expected a label key such as robot or example.com/robot, got "bad key!"',
        'machines[0].taints[0]: expected a taint such as key=value:NoSchedule, got "gpu=true:Sometimes"',
        "ros.domainId: expected an integer from 0 to 101",
        "deliveryCheck.timeoutSeconds: expected an integer from 10 to 3600",
      ],
    );
  });

  it("rejects unknown keys, so a typo is not silently ignored, and says which key was meant", () => {
    assert.deepEqual(
      problems({
        ...base,
        machine: [],
        ros: { domainID: 3, distor: "jazzy", colour: "blue" },
        machines: [{ ...server, hostkey: "x" }],
      }),
      [
        "machines[0].hostkey: unknown key: did you mean hostKey? (docs/reference.md lists every key)",
        "ros.domainID: unknown key: did you mean domainId? (docs/reference.md lists every key)",
        "ros.distor: unknown key: did you mean distro? (docs/reference.md lists every key)",
        "ros.colour: unknown key (docs/reference.md lists every key)",
        "machine: unknown key: did you mean machines? (docs/reference.md lists every key)",
      ],
    );
  });

  it("rejects a wrong shape with the type expected", () => {
    assert.deepEqual(problems({ ...base, machines: "laptop" }), [
      "machines: expected a list, got string",
    ]);
  });

  it("needs an SSH user for remote machines", () => {
    assert.deepEqual(problems({ ...base, ssh: undefined }), [
      "machines[0].user: no SSH user: set ssh.user for the lab or user on this machine",
    ]);
  });

  it("rejects localhost as the server address when other machines must join it", () => {
    assert.deepEqual(
      problems(
        withMachines({ ...server, host: "localhost" }, { name: "a", host: "a", role: "agent" }),
      ),
      [
        'machines[0].host: "localhost" is where other machines would join the server: use an address they can reach (the laptop\'s LAN address)',
      ],
    );
  });

  it("wants registry credentials in pairs and secrets stored encrypted", () => {
    assert.deepEqual(
      problems(
        { ...base, registryPassword: "hunter2", sshPrivateKey: "not a key" },
        { isSecret: () => false },
      ),
      [
        "registryUsername: registryUsername and registryPassword go together (set the password with pulumi config set --secret registryPassword)",
        "sshPrivateKey: expected a PEM or OpenSSH private key (pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519)",
        "sshPrivateKey: is stored in plaintext in the stack file: run pulumi config rm sshPrivateKey, then pulumi config set --secret sshPrivateKey",
        "registryPassword: is stored in plaintext in the stack file: run pulumi config rm registryPassword, then pulumi config set --secret registryPassword",
      ],
    );
  });

  it("never quotes a secret value in a message", () => {
    const lines = problems({ ...base, registryPassword: "hunter2", sshPrivateKey: "s3cr3t-key" });
    assert.ok(lines.every((l) => !l.includes("hunter2") && !l.includes("s3cr3t-key")));
  });

  it("reports every problem at once in one error message", () => {
    const result = parseLab(
      configValues({ machines: [{ name: "A", host: "h", role: "agent" }], image: {} }),
      WITH_AGENT,
    );
    assert.equal(result.ok, false);
    assert.equal(
      formatProblems((result as { problems: readonly Problem[] }).problems),
      [
        "invalid rosfleet stack configuration (5 problems):",
        `  machines[0].name: expected a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit), got "A"`,
        "  k3s.version: required: a pinned k3s release tag such as v1.33.5+k3s1",
        '  machines: no machine has role "server": a lab needs 1 server, or an odd number ≥ 3 for HA',
        "  machines[0].user: no SSH user: set ssh.user for the lab or user on this machine",
        "  image.repository: required for this lab: where to push the image so that every node pulls it, e.g. docker.io/<you>/ros_demo (only a lab of one machine, the one running pulumi, goes without one: Docker builds the image there and k3s imports it)",
      ].join("\n"),
    );
  });
});

describe("config: what the stages take from it", () => {
  it("pull credentials: the repository's registry, only with both username and password", () => {
    const image = { repository: "ghcr.io/lab/ros_demo" };
    assert.deepEqual(pullCredentials({ image, registryUsername: "me" }, "pw"), {
      registry: "ghcr.io",
      username: "me",
      password: "pw",
    });
    assert.equal(
      pullCredentials({ image: { repository: "lab/ros_demo" }, registryUsername: "me" }, "pw")
        ?.registry,
      "docker.io",
    );
    assert.equal(pullCredentials({ image, registryUsername: "me" }, undefined), undefined);
    assert.equal(pullCredentials({ image }, "pw"), undefined);
  });

  it("schedulable nodes: every node but the cordoned ones and those tainted against ROS pods, in order", () => {
    const nodes = [
      { name: "laptop", cordon: false },
      { name: "clover1", cordon: true },
      { name: "vm1", cordon: false },
      { name: "pi2", cordon: false },
      { name: "pi3", cordon: false },
    ];
    const machines = [
      { name: "vm1", taints: ["gpu=true:PreferNoSchedule"] },
      { name: "pi2", taints: ["robot=arm:NoSchedule", "zone:PreferNoSchedule"] },
      { name: "pi3", taints: ["x:NoExecute"] },
    ];
    assert.deepEqual(schedulableNodes({ nodes, machines }), ["laptop", "vm1"]);
    assert.deepEqual(taintedNodes({ machines }), {
      pi2: ["robot=arm:NoSchedule"],
      pi3: ["x:NoExecute"],
    });
  });
});
