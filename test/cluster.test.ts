import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { formatProblems, parseLab } from "../components/config";
import { commandStart, providerCopies, pulumiCommand } from "../components/cluster/tempfiles";
import { FakeApi, kubeconfigFor, startFakeApi } from "./helpers/apiserver";
import { writeKubeconfig } from "./helpers/kubeconfig";
import { runProgram } from "./helpers/program";
import { configValues, readStackConfig } from "./helpers/stack";

type Obj = Record<string, unknown>;
const FIXTURE = path.join(__dirname, "fixtures", "kubeconfig.yaml");
const KUBECONFIG_TEXT = fs.readFileSync(FIXTURE, "utf8");
const minimal = {
  cluster: { kubeconfig: FIXTURE },
  image: { repository: "docker.io/lab/ros_demo" },
};

function problems(config: Obj, env: Parameters<typeof parseLab>[1] = {}): string[] {
  const result = parseLab(configValues(config), { sshAgent: () => "running", ...env });
  return result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
}

describe("cluster: configuration of an existing cluster", () => {
  it("needs only cluster.kubeconfig and image", () => {
    const result = parseLab(configValues(minimal));
    if (!result.ok) assert.fail(formatProblems(result.problems));
    assert.deepEqual(result.settings.cluster, {
      kubeconfigPath: FIXTURE,
      context: undefined,
      server: "https://10.0.0.5:16443",
    });
    assert.equal(result.settings.k3s, undefined);
    assert.deepEqual(result.settings.machines, []);
    assert.equal(result.settings.ros.multus.install, false);
  });

  it("validates Pulumi.microk8s.yaml (its kubeconfig read from ~/.kube)", () => {
    const read: string[] = [];
    const result = parseLab(configValues(readStackConfig("microk8s")), {
      readFile: (f) => (read.push(f), KUBECONFIG_TEXT),
    });
    if (!result.ok) assert.fail(formatProblems(result.problems));
    assert.deepEqual(
      read,
      [path.join(os.homedir(), ".kube", "microk8s.yaml")].concat(read.slice(1)),
    );
    assert.deepEqual(
      result.settings.nodes.map((n) => [n.name, n.arch]),
      [
        ["k8s-main", "amd64"],
        ["k8s-pi1", "arm64"],
        ["k8s-pi2", "arm64"],
      ],
    );
    assert.equal(result.settings.ros.discovery, "multus");
  });

  it("names every key that would install something over SSH, and why", () => {
    assert.deepEqual(
      problems({
        ...minimal,
        ssh: { user: "ubuntu" },
        k3s: { version: "v1.33.5+k3s1" },
        machines: [{ name: "n1", host: "10.0.0.5", role: "server", docker: true }],
        ros: { discovery: "multus", multus: { range: "192.168.1.200/28", install: true } },
      }),
      [
        "ssh: not used: rosfleet installs nothing over SSH on an existing cluster (cluster.kubeconfig); remove it",
        "k3s: not used: rosfleet installs nothing over SSH on an existing cluster (cluster.kubeconfig); remove it",
        "machines[0].host: not used: rosfleet installs nothing over SSH on an existing cluster (cluster.kubeconfig); machines describe its nodes (name, arch and labels are checked against them)",
        "machines[0].role: not used: rosfleet installs nothing over SSH on an existing cluster (cluster.kubeconfig); machines describe its nodes (name, arch and labels are checked against them)",
        "machines[0].docker: not used: rosfleet installs nothing over SSH on an existing cluster (cluster.kubeconfig); machines describe its nodes (name, arch and labels are checked against them)",
        "ros.multus.install: rosfleet installs Multus only on a k3s it installed: add Multus to the cluster (MicroK8s: microk8s enable multus) and remove this key",
      ],
    );
  });

  it("takes the kubeconfig itself only as a secret, and never quotes it", () => {
    const inline = { ...minimal, cluster: { kubeconfig: KUBECONFIG_TEXT } };
    const plain = problems(inline, { isSecret: () => false });
    assert.equal(plain.length, 1);
    assert.match(
      plain[0],
      /^cluster\.kubeconfig: holds a kubeconfig in plaintext in the stack file/,
    );
    assert.ok(!plain[0].includes("Q0VSVA=="));
    const result = parseLab(configValues(inline), { isSecret: (k) => k === "cluster" });
    assert.ok(result.ok);
    assert.equal(result.settings.cluster?.kubeconfigPath, undefined);
  });

  it("says when the kubeconfig is missing, not one, or lacks the context", () => {
    assert.deepEqual(problems({ ...minimal, cluster: { kubeconfig: "nowhere.yaml" } }), [
      'cluster.kubeconfig: no file at "nowhere.yaml" (a path relative to the project directory or ~/…, or the kubeconfig itself as a secret)',
    ]);
    assert.deepEqual(problems(minimal, { readFile: () => "just: text\n" }), [
      "cluster.kubeconfig: is not a kubeconfig: it lists no clusters or no contexts (expected YAML with clusters and contexts, as kubectl config view --raw, microk8s config or /etc/rancher/k3s/k3s.yaml print)",
    ]);
    // kubectl's own reader says which entry is broken.
    const noServer = KUBECONFIG_TEXT.replace(/^\s*server: .*$/m, "");
    assert.deepEqual(problems(minimal, { readFile: () => noServer }), [
      "cluster.kubeconfig: is not a kubeconfig: clusters[0].cluster.server is missing (expected YAML with clusters and contexts, as kubectl config view --raw, microk8s config or /etc/rancher/k3s/k3s.yaml print)",
    ]);
    assert.deepEqual(problems({ ...minimal, cluster: { kubeconfig: FIXTURE, context: "lab" } }), [
      'cluster.context: the kubeconfig has no context "lab" (it has "microk8s")',
    ]);
  });

  it("still needs host, role and k3s.version when rosfleet installs k3s", () => {
    assert.deepEqual(
      problems({ image: minimal.image, ssh: { user: "u" }, machines: [{ name: "a" }] }),
      [
        "machines[0].host: required: the machine's SSH address",
        "machines[0].role: required: server or agent",
        "k3s.version: required: a pinned k3s release tag such as v1.33.5+k3s1",
        'machines: no machine has role "server": a lab needs 1 server, or an odd number ≥ 3 for HA',
      ],
    );
  });
});

describe("cluster: the program on an existing cluster", () => {
  it("declares no command resource when only cluster.kubeconfig and image are set", async () => {
    const run = await runProgram(minimal);
    assert.deepEqual(
      run.resources.filter((r) => r.type.startsWith("command:")).map((r) => r.name),
      [],
    );
    const provider = run.get("pulumi:providers:kubernetes", "cluster-provider");
    assert.equal(provider.inputs["kubeconfig"], FIXTURE, "the path, so no credentials in state");
    assert.equal(run.outputs["serverUrl"], "https://10.0.0.5:16443");
    assert.equal(run.outputs["kubeconfig"], undefined);
    assert.deepEqual(run.outputs["nodes"], []);
    // No nodes described: nothing to pin the check to (README says so; a warning says so).
    assert.deepEqual(run.names("kubernetes:batch/v1:Job"), []);
    assert.ok(run.names("kubernetes:apps/v1:Deployment").includes("ros-demo-listener"));
  });

  it("keeps an inline kubeconfig secret in the provider", async () => {
    const run = await runProgram(
      { ...minimal, cluster: { kubeconfig: KUBECONFIG_TEXT } },
      { secretKeys: ["cluster"] },
    );
    const provider = run.get("pulumi:providers:kubernetes", "cluster-provider");
    assert.ok(provider.secretInputs.includes("kubeconfig"));
    assert.equal(provider.inputs["kubeconfig"], KUBECONFIG_TEXT);
  });

  let api: FakeApi;
  let nodes: Record<string, Record<string, string>>;
  before(async () => {
    api = await startFakeApi();
    api.body = (req) =>
      req.url === "/api/v1/nodes"
        ? {
            kind: "NodeList",
            items: Object.entries(nodes).map(([name, labels]) => ({ metadata: { name, labels } })),
          }
        : undefined;
  });
  after(async () => api.close());
  beforeEach(() => {
    api.requests.length = 0;
    nodes = {
      "k8s-main": {
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/microk8s-controlplane": "microk8s-controlplane",
      },
      "k8s-pi1": { "kubernetes.io/arch": "arm64", robot: "pi1" },
      "k8s-other": { "kubernetes.io/arch": "amd64" },
    };
  });
  const described = () => ({
    ...minimal,
    cluster: { kubeconfig: kubeconfigFor(api) },
    machines: [
      { name: "k8s-main", kind: "vm" },
      { name: "k8s-pi1", kind: "pi", labels: { robot: "pi1" } },
    ],
  });

  it("checks the described nodes with one list call and runs the delivery check on them", async () => {
    const run = await runProgram(described());
    assert.deepEqual(
      api.requests.map((r) => [r.method, r.url, r.headers["authorization"]]),
      [["GET", "/api/v1/nodes", "Bearer admin-token-for-tests"]],
    );
    // No read per node: the state does not grow with the lab by them.
    assert.deepEqual(
      run.reads.filter((r) => r.type === "kubernetes:core/v1:Node"),
      [],
    );
    assert.deepEqual(run.outputs["nodes"], [
      { name: "k8s-main", role: "server", arch: "amd64" },
      { name: "k8s-pi1", role: "agent", arch: "arm64" },
    ]);
    assert.ok(!run.secretOutputs.includes("nodes"), "the nodes output is not a secret");
    assert.deepEqual(run.names("kubernetes:batch/v1:Job"), ["delivery-beacons", "delivery-job"]);
    assert.equal(run.outputErrors["delivery"], undefined);
    assert.deepEqual(
      run.resources.filter((r) => r.type.startsWith("command:")),
      [],
    );
  });

  it("stops before deploying when a node is missing or its arch or labels differ, naming each", async () => {
    nodes["k8s-pi1"] = { "kubernetes.io/arch": "amd64" };
    delete nodes["k8s-main"];
    const run = await runProgram(described());
    const error = run.outputErrors["nodes"];
    assert.ok(error instanceof Error);
    assert.equal(
      error.message.replace(/^(error serializing property "\w+": )+/, ""),
      [
        "the cluster's nodes differ from machines (3):",
        "  machines[0] (k8s-main): the cluster has no node of that name (kubectl get nodes lists the names; machines[].name must be one)",
        "  machines[1] (k8s-pi1).arch: the cluster's node is amd64, not arm64",
        "  machines[1] (k8s-pi1).labels.robot: the node has no such label; rosfleet does not label a cluster it did not install: kubectl label node k8s-pi1 --overwrite robot=pi1",
      ].join("\n"),
    );
    // The provider the stages deploy with waits on the check, so nothing was deployed.
    const workloads = run.resources.filter(
      (r) => r.type.startsWith("kubernetes:") && !r.type.startsWith("pulumi:"),
    );
    assert.deepEqual(
      workloads.map((r) => r.name),
      [],
    );
  });

  it("says why when the nodes cannot be listed", async () => {
    api.status = () => 403;
    try {
      const run = await runProgram(described());
      const error = run.outputErrors["nodes"];
      assert.ok(error instanceof Error);
      assert.match(
        error.message,
        /cannot list the cluster's nodes to check them against machines: GET \/api\/v1\/nodes: HTTP 403 \(the kubeconfig's user may not list nodes\)/,
      );
    } finally {
      api.status = () => 200;
    }
  });

  it("reads a kubeconfig as kubectl does: CA file relative to it, a token file, a server URL with a path", async () => {
    // Rancher serves each cluster's API under a path; kubeadm and minikube name files, not data.
    const dir = fs.mkdtempSync(path.join(api.dir, "forms-"));
    fs.writeFileSync(path.join(dir, "ca.pem"), api.ca);
    fs.writeFileSync(path.join(dir, "token"), "token-from-a-file\n");
    const file = writeKubeconfig(
      path.join(dir, "kubeconfig.yaml"),
      {
        server: `https://127.0.0.1:${api.port}/k8s/clusters/c-lab`,
        "certificate-authority": "ca.pem",
      },
      // Relative: read from the kubeconfig's folder, and only when a request needs it.
      { tokenFile: "token" },
    );
    const body = api.body;
    api.body = (req) =>
      req.url === "/k8s/clusters/c-lab/api/v1/nodes"
        ? {
            kind: "NodeList",
            items: [{ metadata: { name: "k8s-main", labels: nodes["k8s-main"] } }],
          }
        : undefined;
    try {
      const run = await runProgram({
        ...described(),
        cluster: { kubeconfig: file },
        machines: [{ name: "k8s-main", kind: "vm" }],
      });
      assert.deepEqual(
        api.requests.map((r) => [r.url, r.headers["authorization"]]),
        [["/k8s/clusters/c-lab/api/v1/nodes", "Bearer token-from-a-file"]],
      );
      assert.deepEqual(run.outputs["nodes"], [{ name: "k8s-main", role: "server", arch: "amd64" }]);
      assert.equal(run.outputs["serverUrl"], `https://127.0.0.1:${api.port}/k8s/clusters/c-lab`);
    } finally {
      api.body = body;
    }
  });
});

describe("cluster: Multus on a cluster rosfleet did not install", () => {
  let api: FakeApi;
  let kubeconfig: string;
  before(async () => {
    api = await startFakeApi();
    kubeconfig = kubeconfigFor(api);
  });
  after(async () => api.close());
  beforeEach(() => (api.requests.length = 0));

  const multus = (file: string) => ({
    cluster: { kubeconfig: file },
    image: minimal.image,
    ros: { discovery: "multus", multus: { range: "192.168.1.200/28" } },
  });
  const NAD = "kubernetes:k8s.cni.cncf.io/v1:NetworkAttachmentDefinition";

  it("looks the CRD up with the kubeconfig's credentials and deploys when it is there", async () => {
    api.status = () => 200;
    const run = await runProgram(multus(kubeconfig));
    assert.deepEqual(
      api.requests.map((r) => [r.method, r.url, r.headers["authorization"]]),
      [
        [
          "GET",
          "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/network-attachment-definitions.k8s.cni.cncf.io",
          "Bearer admin-token-for-tests",
        ],
      ],
    );
    assert.deepEqual(run.names(NAD), ["ros-macvlan"]);
    assert.deepEqual(run.names("kubernetes:helm.cattle.io/v1:HelmChart"), []);
    assert.deepEqual(run.registrationErrors, []);
  });

  it("fails with the command that adds Multus when the cluster lacks it", async () => {
    api.status = () => 404;
    const run = await runProgram(multus(kubeconfig));
    assert.deepEqual(run.names(NAD), [], "no attachment declared");
    assert.deepEqual(run.names("kubernetes:core/v1:Pod"), [], "no pod that could never start");
    const error = run.registrationErrors[0];
    assert.ok(error instanceof Error, "the run fails");
    assert.match(error.message, /the cluster has no Multus/);
    assert.match(error.message, /microk8s enable multus/);
  });
});

describe("cluster: the kubernetes provider's kubeconfig copies in $TMPDIR", () => {
  const kubeconfig = (server: string, context = "rosfleet-dev") =>
    `apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: QUJD\n    server: ${server}\n  name: lab\ncontexts:\n- context:\n    cluster: lab\n    user: lab\n  name: ${context}\ncurrent-context: ${context}\nkind: Config\n`;
  const LAB = "https://192.168.1.21:6443";

  it("removes only this command's copies of the lab's kubeconfig: its server, its context, written since the command started", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-copies-"));
    try {
      const write = (name: string, text: string, ageSeconds = 0) => {
        const file = path.join(dir, name);
        fs.writeFileSync(file, text);
        const when = new Date(Date.now() - ageSeconds * 1000);
        fs.utimesSync(file, when, when);
      };
      write("kubeconfig1234567", kubeconfig(LAB));
      write("kubeconfig7654321", kubeconfig("https://other.lab:6443"));
      // Another program's kubeconfig of the same cluster (another context), and one the user kept.
      write("kubeconfig2222", kubeconfig(LAB, "admin@lab"));
      write("kubeconfig3333", kubeconfig(LAB), 3600);
      write("kubeconfig-mine", kubeconfig(LAB));
      write("notes", kubeconfig(LAB));
      const since = Date.now() - 60_000;
      assert.deepEqual(
        providerCopies(dir, { servers: [LAB], context: "rosfleet-dev" }, since).map((f) =>
          path.basename(f),
        ),
        ["kubeconfig1234567"],
      );
      // On an existing cluster (no context of rosfleet's), the server and the time decide.
      assert.deepEqual(
        providerCopies(dir, { servers: [LAB] }, since)
          .map((f) => path.basename(f))
          .sort(),
        ["kubeconfig1234567", "kubeconfig2222"],
      );
      // A server that is only a prefix of another is not it.
      write("kubeconfig5", kubeconfig("https://192.168.1.21:64430"));
      assert.deepEqual(
        providerCopies(dir, { servers: ["https://192.168.1.21:6443"] }, since).length,
        2,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("finds the pulumi command a process runs under, and when it started", () => {
    // Under mocha no pulumi runs this process: the process's own start is the bound.
    const own = Date.now() - process.uptime() * 1000;
    assert.equal(pulumiCommand(), undefined);
    assert.ok(Math.abs(commandStart(undefined) - own) < 1000);
    // A process's start as /proc has it (here this one's parent, started before it).
    assert.ok(commandStart(process.ppid) <= own + 1000);
  });
});
