import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { parse } from "yaml";
import { filesDigest, hashFiles, remoteName } from "../components/k3s/airgap";
import {
  flagsToConfig,
  renderK3sConfig,
  rewriteKubeconfig,
  serverUrl,
} from "../components/k3s/render";
import {
  FAKE_AGENT_TOKEN,
  FAKE_K3S_YAML,
  FAKE_TOKEN,
  ProgramRun,
  Registration,
  runProgram,
  stateOf,
} from "./helpers/program";
import { continuity, labFromState, providerIdentity } from "../components/config/last-update";
import { readStackConfig } from "./helpers/stack";
import { machine } from "./helpers/machine";

const REMOTE = "command:remote:Command";
const LOCAL = "command:local:Command";

/** Steps of the machine and k3s stages (the delivery check's step is tested in ros.test.ts). */
/** The machine and k3s stages' steps (not the image's import, nor the delivery check's). */
const k3sSteps = (run: ProgramRun, type: string): string[] =>
  run.names(type).filter((n) => !n.startsWith("delivery-") && !n.startsWith("ros-demo-"));

const create = (r: Registration): string => String(r.inputs["create"]);
/** What a step sends on stdin: its script bundle (or, for a join, the token). */
const script = (r: Registration): string => String(r.inputs["stdin"]);
const host = (r: Registration): string =>
  String((r.inputs["connection"] as Record<string, unknown>)["host"]);

/** The stack config of the lab notes, with `change` applied to it. */
function clover(change: (c: Record<string, unknown>) => void = () => undefined) {
  const config = structuredClone(readStackConfig("clover"));
  change(config);
  return config;
}

const HA = {
  ssh: { user: "ubuntu" },
  machines: [
    { name: "s1", host: "10.0.0.1", role: "server" },
    { name: "s2", host: "10.0.0.2", role: "server" },
    { name: "s3", host: "10.0.0.3", role: "server" },
    { name: "a1", host: "10.0.0.4", role: "agent", kind: "pi" },
    { name: "a2", host: "10.0.0.5", role: "agent" },
  ],
  k3s: { version: "v1.33.5+k3s1" },
  image: { repository: "r/ros_demo" },
};

describe("k3s: k3s.apiEndpoint, the address the cluster is reached at", () => {
  it("is where machines join, what every server's certificate names, and the kubeconfig's server", async () => {
    const run = await runProgram({
      ...HA,
      k3s: { ...HA.k3s, apiEndpoint: "k3s.lab.example" },
      machines: HA.machines.map((m) => (m.name === "a1" ? { ...m, nodeIp: "10.0.0.4" } : m)),
    });
    for (const m of ["s2", "s3", "a1", "a2"])
      assert.match(script(run.get(REMOTE, `${m}-install`)), /^JOIN_HOST='k3s\.lab\.example'$/m, m);
    for (const m of ["s1", "s2", "s3"])
      assert.match(
        script(run.get(REMOTE, `${m}-install`)),
        /tls-san:\n {2}- 10\.0\.0\.\d\n {2}- k3s\.lab\.example\n/,
        m,
      );
    assert.match(script(run.get(REMOTE, "a1-install")), /\nnode-ip: 10\.0\.0\.4\n/);
    assert.match(script(run.get(REMOTE, "a1-preflight")), /^NODE_IP='10\.0\.0\.4'$/m);
    const kubeconfig = parse(String(run.outputs["kubeconfig"])) as {
      clusters: { cluster: { server: string } }[];
    };
    assert.equal(kubeconfig.clusters[0]?.cluster.server, "https://k3s.lab.example:6443");
    assert.equal(run.outputs["serverUrl"], "https://k3s.lab.example:6443");
  });
});

describe("k3s: the dev stack (one local server)", () => {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(readStackConfig("dev"), { stack: "dev" });
  });

  it("runs every step locally, in order: preflight, install, tokens, kubeconfig, node", () => {
    assert.deepEqual(run.names(REMOTE), []);
    assert.deepEqual(k3sSteps(run, LOCAL), [
      "devbox-preflight",
      "devbox-install",
      "devbox-token",
      "devbox-agent-token",
      "devbox-kubeconfig",
      "devbox-node",
    ]);
    const install = run.get(LOCAL, "devbox-install");
    assert.ok(run.dependsOn(install, run.get(LOCAL, "devbox-preflight")));
    assert.ok(run.dependsOn(run.get(LOCAL, "devbox-token"), install));
    assert.ok(run.dependsOn(run.get(LOCAL, "devbox-kubeconfig"), install));
  });

  it("declares one component per machine, holding every step done to that machine", () => {
    assert.deepEqual(run.names("rosfleet:machine:Machine"), ["devbox"]);
    assert.deepEqual(run.names("rosfleet:k3s:Cluster"), ["k3s"]);
    for (const step of k3sSteps(run, LOCAL))
      assert.match(run.get(LOCAL, step).parent, /rosfleet:machine:Machine::devbox$/, step);
  });

  it("preflights as the user and installs as root with the pinned version", () => {
    const preflight = run.get(LOCAL, "devbox-preflight");
    assert.equal(create(preflight), "bash -s -- create");
    assert.match(script(preflight), /^EXPECTED_ARCH='amd64'$/m);
    const install = run.get(LOCAL, "devbox-install");
    assert.equal(create(install), "sudo -n bash -s -- create");
    assert.equal(install.inputs["delete"], "sudo -n bash -s -- delete");
    assert.match(
      script(install),
      /^rosfleet_create\(\) \{\n(.*\n)*K3S_VERSION='v1\.33\.5\+k3s1'\n/,
    );
    assert.match(script(install), /^rosfleet_delete\(\) \{\n(.*\n)*.*k3s-uninstall\.sh/m);
    assert.match(script(install), /\n"rosfleet_\$1" <\/dev\/null\n$/);
  });

  it("exports a secret kubeconfig for localhost, the server URL and the nodes", () => {
    assert.deepEqual(run.secretOutputs, ["kubeconfig", "dashboard"]);
    const kubeconfig = parse(String(run.outputs["kubeconfig"])) as {
      clusters: { cluster: { server: string } }[];
    };
    assert.equal(kubeconfig.clusters[0].cluster.server, "https://localhost:6443");
    assert.equal(run.outputs["serverUrl"], "https://localhost:6443");
    assert.deepEqual(run.outputs["nodes"], [{ name: "devbox", role: "server", arch: "amd64" }]);
  });
});

describe("k3s: the lab-notes stack (laptop server, Pi and VM agents)", () => {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(clover(), { stack: "clover" });
  });

  it("runs each step on the right machine over SSH", () => {
    assert.deepEqual(run.names(LOCAL), []);
    const where = Object.fromEntries(
      run.resources
        .filter((r) => r.type === REMOTE && !r.name.startsWith("delivery-"))
        .map((r) => [r.name, host(r)]),
    );
    assert.deepEqual(where, {
      "laptop-preflight": "192.168.1.21",
      "clover1-preflight": "192.168.1.31",
      "vm1-preflight": "192.168.1.41",
      "laptop-install": "192.168.1.21",
      "laptop-token": "192.168.1.21",
      "laptop-agent-token": "192.168.1.21",
      "laptop-kubeconfig": "192.168.1.21",
      "laptop-node": "192.168.1.21",
      "clover1-install": "192.168.1.31",
      "clover1-join": "192.168.1.31",
      "vm1-install": "192.168.1.41",
      "vm1-join": "192.168.1.41",
      // Agents' nodes are managed through the API, from the server.
      "clover1-node": "192.168.1.21",
      "vm1-node": "192.168.1.21",
    });
  });

  it("installs nothing before every machine passed preflight", () => {
    const install = run.get(REMOTE, "laptop-install");
    for (const m of ["laptop", "clover1", "vm1"])
      assert.ok(run.dependsOn(install, run.get(REMOTE, `${m}-preflight`)), m);
  });

  it("joins agents after the server, in parallel: no agent depends on another", () => {
    const joins = ["clover1", "vm1"].map((m) => run.get(REMOTE, `${m}-join`));
    for (const m of ["clover1", "vm1"])
      assert.ok(run.dependsOn(run.get(REMOTE, `${m}-install`), run.get(REMOTE, "laptop-install")));
    for (const join of joins) assert.ok(run.dependsOn(join, run.get(REMOTE, "laptop-install")));
    assert.equal(run.dependsOn(joins[0], joins[1]), false);
    assert.equal(run.dependsOn(joins[1], joins[0]), false);
    assert.equal(run.dependsOn(joins[0], run.get(REMOTE, "vm1-node")), false);
  });

  it("joins agents with the agent token by stdin, as a secret, never on a command line", () => {
    for (const m of ["clover1", "vm1"]) {
      const join = run.get(REMOTE, `${m}-join`);
      assert.equal(join.inputs["stdin"], FAKE_AGENT_TOKEN);
      assert.ok(join.secretInputs.includes("stdin"));
      assert.equal(create(join), "sudo -n bash /etc/rancher/k3s/rosfleet-join.sh");
      assert.equal(join.inputs["delete"], undefined);
      assert.ok(run.dependsOn(join, run.get(REMOTE, `${m}-install`)));
      // The install step carries no secret: its script (and its diff) stays readable.
      const install = run.get(REMOTE, `${m}-install`);
      assert.ok(!install.secretInputs.includes("stdin"));
      assert.match(script(install), /^JOIN_HOST='192\.168\.1\.21'$/m);
    }
    for (const r of run.resources)
      for (const [key, value] of Object.entries(r.inputs))
        if (!r.secretInputs.includes(key))
          for (const secret of [FAKE_TOKEN, FAKE_AGENT_TOKEN])
            assert.ok(!JSON.stringify(value).includes(secret), `${r.name}.${key} shows a token`);
  });

  it("gives no agent's step the server token: it stays on the servers", () => {
    const agents = ["clover1", "vm1"];
    for (const r of run.resources.filter((x) => agents.some((a) => x.name.startsWith(`${a}-`))))
      assert.ok(!JSON.stringify(r.inputs).includes(FAKE_TOKEN), `${r.name} holds the server token`);
  });

  it("reads token and kubeconfig with logging off, as secrets", () => {
    for (const name of ["laptop-token", "laptop-kubeconfig"])
      assert.equal(run.get(REMOTE, name).inputs["logging"], "none");
    assert.deepEqual(run.secretOutputs, ["kubeconfig", "dashboard"]);
    assert.ok(!JSON.stringify(run.outputs["nodes"]).includes(FAKE_TOKEN));
  });

  it("renders the laptop's docker: true into its config.yaml", () => {
    assert.match(script(run.get(REMOTE, "laptop-install")), /\ndocker: true\n/);
    assert.doesNotMatch(script(run.get(REMOTE, "clover1-install")), /\ndocker: true\n/);
  });

  it("drains and deletes an agent's node on removal, then uninstalls it", () => {
    const node = run.get(REMOTE, "clover1-node");
    assert.equal(node.inputs["delete"], "sudo -n bash -s -- delete");
    assert.match(
      script(node),
      /rosfleet_delete\(\) \{\n(.*\n)*.*kubectl drain "\$NODE_NAME" --ignore-daemonsets --delete-emptydir-data/,
    );
    assert.ok(run.dependsOn(node, run.get(REMOTE, "clover1-join")));
    assert.match(
      script(run.get(REMOTE, "clover1-install")),
      /rosfleet_delete\(\) \{\n(.*\n)*.*k3s-agent-uninstall\.sh/,
    );
  });

  it("labels the Pi's node through the API", () => {
    assert.match(
      script(run.get(REMOTE, "clover1-node")),
      /^LABELS='rosfleet\.dev\/robot=clover1'$/m,
    );
  });

  it("uses the SSH agent when no key is configured, and a secret key when one is", async () => {
    const conn = run.get(REMOTE, "clover1-join").inputs["connection"] as Record<string, unknown>;
    assert.equal(conn["privateKey"], undefined);
    const key = fs.readFileSync(path.join(__dirname, "fixtures", "fake-ssh-key"), "utf8");
    const keyed = await runProgram(
      { ...clover(), sshPrivateKey: key },
      { secretKeys: ["sshPrivateKey"] },
    );
    for (const r of keyed.resources.filter((x) => x.type === REMOTE)) {
      assert.equal((r.inputs["connection"] as Record<string, unknown>)["privateKey"], key);
      assert.ok(r.secretInputs.includes("connection"), r.name);
    }
  });

  it("reads ssh.privateKeyFile once and logs in with its text, kept as a secret", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-key-"));
    const file = path.join(dir, "id_lab");
    const key = fs.readFileSync(path.join(__dirname, "fixtures", "fake-ssh-key"), "utf8");
    fs.writeFileSync(file, key, { mode: 0o600 });
    const keyed = await runProgram(
      clover((c) => {
        c["ssh"] = { ...(c["ssh"] as object), privateKeyFile: file };
      }),
    );
    fs.rmSync(dir, { recursive: true, force: true });
    const remote = keyed.resources.filter((x) => x.type === REMOTE);
    assert.ok(remote.length > 0);
    for (const r of remote) {
      assert.equal((r.inputs["connection"] as Record<string, unknown>)["privateKey"], key);
      assert.ok(r.secretInputs.includes("connection"), r.name);
    }
  });
});

describe("k3s: replacements and removals never undo what was just installed", () => {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(clover(), { stack: "clover" });
  });
  const triggers = (r: Registration) => r.inputs["triggers"] as unknown[];
  const id = (name: string) => `${name}-id`;

  it("uninstalls before reinstalling when an install step is replaced", () => {
    for (const m of ["laptop", "clover1", "vm1"]) {
      const install = run.get(REMOTE, `${m}-install`);
      assert.equal(install.deleteBeforeReplace, true, m);
      assert.equal(install.retainOnDelete, false, m);
    }
  });

  it("hands the token over again, and re-registers the node, after a reinstall", () => {
    assert.deepEqual(triggers(run.get(REMOTE, "clover1-join")), [id("clover1-install")]);
    const node = run.get(REMOTE, "clover1-node");
    // A re-flashed machine rejoins under its name only once its old Node (and node password)
    // is gone: the node step is deleted (drain + delete) before it is created again.
    assert.deepEqual(triggers(node), [
      id("clover1-install"),
      id("clover1-join"),
      id("laptop-install"),
    ]);
    assert.equal(node.deleteBeforeReplace, true);
    assert.deepEqual(triggers(run.get(REMOTE, "laptop-node")), [id("laptop-install")]);
  });

  it("reads the token and kubeconfig again after the first server is reinstalled", () => {
    for (const read of ["laptop-token", "laptop-kubeconfig"])
      assert.deepEqual(triggers(run.get(REMOTE, read)), [id("laptop-install")], read);
  });

  it("runs nothing on a machine marked skipUninstall when its steps are deleted", async () => {
    const dead = await runProgram(
      clover((c) => ((c["machines"] as Record<string, unknown>[])[1]["skipUninstall"] = true)),
      // The next `up`: the last run's delivery reports are there to read.
      { stack: "clover", lastReports: run.reports },
    );
    assert.equal(dead.get(REMOTE, "clover1-install").retainOnDelete, true);
    assert.equal(dead.get(REMOTE, "vm1-install").retainOnDelete, false);
    // Its node is still removed from the cluster, by the server.
    assert.equal(dead.get(REMOTE, "clover1-node").retainOnDelete, false);
    for (const r of dead.resources.filter(
      (x) => x.type === REMOTE && x.name.startsWith("clover1-"),
    ))
      if (host(r) === "192.168.1.31")
        assert.ok(r.retainOnDelete || r.inputs["delete"] === undefined, r.name);
    // Marking it changes no input: the `up` that records it runs nothing on the machine.
    assert.deepEqual(
      dead.resources
        .filter((r) => JSON.stringify(run.get(r.type, r.name).inputs) !== JSON.stringify(r.inputs))
        .map((r) => r.name),
      [],
    );
  });
});

describe("k3s: changes are updates of exactly the steps they concern", () => {
  const diff = (a: ProgramRun, b: ProgramRun) =>
    a.resources
      .filter((r) => {
        const other = b.resources.find((x) => x.type === r.type && x.name === r.name);
        return JSON.stringify(other?.inputs) !== JSON.stringify(r.inputs);
      })
      .map((r) => r.name);

  it("a k3s.version change alters exactly the install steps", async () => {
    const before = await runProgram(clover());
    const after = await runProgram(
      clover((c) => ((c["k3s"] as Record<string, unknown>)["version"] = "v1.34.1+k3s1")),
      { lastReports: before.reports },
    );
    assert.deepEqual(diff(before, after), ["laptop-install", "clover1-install", "vm1-install"]);
  });

  it("a label change alters only that machine's node step", async () => {
    const before = await runProgram(clover());
    const after = await runProgram(
      clover((c) => ((c["machines"] as Record<string, unknown>[])[2]["labels"] = { zone: "b" })),
      { lastReports: before.reports },
    );
    assert.deepEqual(diff(before, after), ["vm1-node"]);
  });
});

describe("k3s: HA with three servers", () => {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(HA);
  });

  it("renders cluster-init on the first server only", () => {
    const inits = ["s1", "s2", "s3"].filter((s) =>
      script(run.get(REMOTE, `${s}-install`)).includes("cluster-init: true"),
    );
    assert.deepEqual(inits, ["s1"]);
  });

  it("joins the other servers to the first with the server token (and the agents' token)", () => {
    for (const s of ["s2", "s3"]) {
      assert.match(script(run.get(REMOTE, `${s}-install`)), /server: https:\/\/10\.0\.0\.1:6443/);
      const join = run.get(REMOTE, `${s}-join`);
      assert.equal(join.inputs["stdin"], `${FAKE_TOKEN}\n${FAKE_AGENT_TOKEN}\n`);
      assert.ok(join.secretInputs.includes("stdin"));
    }
    for (const a of ["a1", "a2"])
      assert.equal(run.get(REMOTE, `${a}-join`).inputs["stdin"], FAKE_AGENT_TOKEN);
    assert.deepEqual(
      k3sSteps(run, REMOTE).filter((n) => n.endsWith("-join")),
      ["s2-join", "s3-join", "a1-join", "a2-join"],
    );
  });

  it("installs (and upgrades) servers one at a time, then the agents", () => {
    const [s1, s2, s3] = ["s1", "s2", "s3"].map((s) => run.get(REMOTE, `${s}-install`));
    // Each server after the previous one is running Ready (a joiner is so after its join).
    assert.ok(run.dependsOn(s2, s1));
    assert.ok(run.dependsOn(s3, run.get(REMOTE, "s2-join")));
    for (const a of ["a1", "a2"])
      assert.ok(run.dependsOn(run.get(REMOTE, `${a}-install`), run.get(REMOTE, "s3-join")));
    const [a1, a2] = ["a1", "a2"].map((a) => run.get(REMOTE, `${a}-join`));
    assert.equal(run.dependsOn(a1, a2) || run.dependsOn(a2, a1), false);
  });

  it("lets servers leave one at a time: each joined server's Node goes (etcd member) before its uninstall", () => {
    // Deletes run in reverse dependency order: s3 is gone before s2's Node is deleted.
    assert.ok(run.dependsOn(run.get(REMOTE, "s3-install"), run.get(REMOTE, "s2-node")));
    assert.ok(run.dependsOn(run.get(REMOTE, "s2-install"), run.get(REMOTE, "s1-node")));
    for (const s of ["s2", "s3"]) {
      const node = run.get(REMOTE, `${s}-node`);
      assert.ok(run.dependsOn(node, run.get(REMOTE, `${s}-join`)));
      assert.equal(host(node), "10.0.0.1", "removed through the first server");
      assert.match(script(node), /^rosfleet_delete\(\) \{$/m);
      assert.match(script(node), /^ROLE='server'$/m);
      assert.ok(node.deleteBeforeReplace, "a reinstall removes the member first");
    }
    // The first server has no one to remove it through.
    assert.doesNotMatch(script(run.get(REMOTE, "s1-node")), /rosfleet_delete/);
  });

  it("reads the last update's lab from the stack's state: servers (first first), roles, hosts", () => {
    const lab = labFromState(stateOf(run));
    assert.deepEqual(lab.servers, ["s1", "s2", "s3"]);
    assert.equal(lab.installed, true);
    assert.deepEqual(lab.hosts, {
      s1: "10.0.0.1",
      s2: "10.0.0.2",
      s3: "10.0.0.3",
      a1: "10.0.0.4",
      a2: "10.0.0.5",
    });
    // The first server is the one the token is read from, whatever its name sorts as.
    const renamed = {
      ...HA,
      machines: [{ ...HA.machines[0], name: "z1" }, ...HA.machines.slice(1)],
    };
    return runProgram(renamed).then((r) => {
      assert.deepEqual(labFromState(stateOf(r)).servers, ["z1", "s2", "s3"]);
    });
  });

  it("refuses, before declaring any step, a change that takes a majority of servers away", async () => {
    const previousState = stateOf(run);
    const one = { ...HA, machines: HA.machines.filter((m) => !["s2", "s3"].includes(m.name)) };
    await assert.rejects(
      runProgram(one, { previousState }),
      /takes 2 of the cluster's 3 servers away at once/,
    );
    const two = { ...HA, machines: HA.machines.filter((m) => m.name !== "s3") };
    const stepped = await runProgram(two, { previousState });
    assert.deepEqual(
      k3sSteps(stepped, REMOTE).filter((n) => /^s\d-install$/.test(n)),
      ["s1-install", "s2-install"],
    );
    // A removal that failed on its machine leaves s3's steps in the state: s3 still counts.
    const failedRemoval = stateOf(stepped);
    for (const r of run.resources.filter((x) => x.name.startsWith("s3-")))
      failedRemoval[r.urn] = { type: r.type, outputs: r.inputs };
    await assert.rejects(
      runProgram(one, { previousState: failedRemoval }),
      /takes 2 of the cluster's 3 servers away at once/,
    );
    // Once it succeeded, the state has s1 and s2 only: s2 may go (2 → 1).
    assert.ok(
      (await runProgram(one, { previousState: stateOf(stepped) })).names(REMOTE).length > 0,
    );
  });

  it("refuses a joined server renamed on the same machine, naming both and the two ups", async () => {
    const renamed = {
      ...HA,
      machines: HA.machines.map((m) => (m.name === "s3" ? { ...m, name: "s3b" } : m)),
    };
    await assert.rejects(
      runProgram(renamed, { previousState: stateOf(run) }),
      /machines\[2\]\.name: s3b is a new name for 10\.0\.0\.3, the machine of server s3, which leaves in this change: .* Rename a server in two ups: remove s3 \(pulumi up: its etcd member goes, then k3s is uninstalled\), then add the machine as s3b \(pulumi up\)/,
    );
    // A new server on a machine of its own is no rename.
    const added = {
      ...HA,
      machines: [
        ...HA.machines.slice(0, 3),
        { name: "s4", host: "10.0.0.9", role: "server" },
        { name: "s5", host: "10.0.0.8", role: "server" },
        ...HA.machines.slice(3),
      ],
    };
    assert.ok(
      (await runProgram(added, { previousState: stateOf(run) }))
        .names(REMOTE)
        .includes("s4-install"),
    );
  });

  it("refuses, before any step, a new only server (a new, empty cluster); an existing cluster's nodes are not its servers", async () => {
    const single = { ...HA, machines: HA.machines.filter((m) => !["s2", "s3"].includes(m.name)) };
    const installed = stateOf(await runProgram(single));
    const one = { ...HA, machines: HA.machines.filter((m) => !["s1", "s2"].includes(m.name)) };
    await assert.rejects(
      runProgram(one, { previousState: installed }),
      /machines: s1 is the lab's only server and holds its cluster: making s3 the server \(or renaming it\) builds a new, empty cluster there/,
    );
    // A stack that was on an existing cluster: its machines were never rosfleet's servers.
    const existing = stateOf(
      await runProgram({
        cluster: { kubeconfig: path.join(__dirname, "fixtures", "kubeconfig.yaml") },
        machines: [{ name: "s1" }],
        image: HA.image,
      }),
    );
    const moved = await runProgram(one, { previousState: existing });
    assert.ok(moved.names(REMOTE).includes("s3-install"));
  });

  it("gives each agent's install its cluster (the first server's install), and no server's", () => {
    for (const a of ["a1", "a2"])
      assert.match(script(run.get(REMOTE, `${a}-install`)), /^CLUSTER='s1-install-id'$/m);
    for (const s of ["s1", "s2", "s3"])
      assert.doesNotMatch(script(run.get(REMOTE, `${s}-install`)), /^CLUSTER=/m);
  });

  it("keeps the provider's identity for the same cluster, and gives a new cluster a new one", async () => {
    const PROVIDER = "pulumi:providers:kubernetes";
    const identity = (r: ProgramRun) => r.get(PROVIDER, "k3s-provider").inputs["clusterIdentifier"];
    // A stack of an earlier rosfleet (identity: the cluster's name) replaces nothing.
    assert.equal(identity(await runProgram(HA, { previousState: stateOf(run) })), "rosfleet-test");
    const single = { ...HA, machines: HA.machines.filter((m) => !["s2", "s3"].includes(m.name)) };
    const moved = {
      ...HA,
      machines: HA.machines.filter((m) => !["s1", "s2"].includes(m.name)),
      allowClusterReplacement: true,
    };
    const onNew = await runProgram(moved, { previousState: stateOf(await runProgram(single)) });
    // A new provider identity: the provider, and every object it manages, is replaced.
    assert.equal(identity(onNew), "rosfleet-test@s3");
    assert.equal(
      identity(await runProgram(moved, { previousState: stateOf(onNew) })),
      "rosfleet-test@s3",
    );
    // k3s → an existing cluster (allowed), and back: a new identity each time.
    const toExisting = continuity(labFromState(stateOf(run)), { existing: true });
    assert.equal(providerIdentity(toExisting, "rosfleet-test"), "rosfleet-test@existing");
    const wasExisting = {
      servers: [],
      installed: false,
      hosts: {},
      existing: true,
      identity: "rosfleet-test@existing",
    };
    assert.equal(
      providerIdentity(continuity(wasExisting, { existing: false, first: "s1" }), "rosfleet-test"),
      "rosfleet-test@s1",
    );
    assert.equal(
      providerIdentity(continuity(wasExisting, { existing: true }), "rosfleet-test"),
      "rosfleet-test@existing",
    );
  });

  it("reads the tokens and kubeconfig from the first server only", () => {
    assert.deepEqual(
      k3sSteps(run, REMOTE).filter((n) => /-(token|kubeconfig)$/.test(n)),
      ["s1-token", "s1-agent-token", "s1-kubeconfig"],
    );
    for (const name of ["s1-token", "s1-agent-token"])
      assert.equal(run.get(REMOTE, name).inputs["logging"], "none");
  });
});

describe("k3s: k3s.registries", () => {
  const PASSWORD = "registry-password-never-shown";
  const registries = {
    mirrors: { "docker.io": { endpoint: ["http://10.0.0.9:5000"] } },
    configs: { "10.0.0.9:5000": { auth: { username: "lab", password: PASSWORD } } },
  };
  let run: ProgramRun;
  before(async () => {
    run = await runProgram({ ...HA, k3s: { ...HA.k3s, registries } }, { secretKeys: ["k3s"] });
  });
  const machines = ["s1", "s2", "s3", "a1", "a2"];

  it("writes registries.yaml on every machine before its install, servers one at a time", () => {
    for (const m of machines) {
      const step = run.get(REMOTE, `${m}-registries`);
      assert.ok(run.dependsOn(run.get(REMOTE, `${m}-install`), step), m);
      assert.equal(create(step), "sudo -n bash -s -- create");
      assert.match(String(step.inputs["delete"]), /-- delete$/);
    }
    assert.ok(run.dependsOn(run.get(REMOTE, "s2-registries"), run.get(REMOTE, "s1-install")));
    assert.ok(run.dependsOn(run.get(REMOTE, "s3-registries"), run.get(REMOTE, "s2-join")));
    assert.ok(run.dependsOn(run.get(REMOTE, "a1-registries"), run.get(REMOTE, "s3-join")));
  });

  it("removes it from servers one at a time when k3s.registries goes (each restart in turn)", () => {
    // The engine orders deletes by direct dependencies only: a chain through steps that stay
    // (the previous server's node step) would let every server restart at once.
    for (const [s, previous] of [
      ["s2", "s1"],
      ["s3", "s2"],
    ])
      assert.ok(
        run
          .directDependencies(run.get(REMOTE, `${s}-registries`))
          .includes(run.get(REMOTE, `${previous}-registries`)),
        s,
      );
  });

  it("sends the credentials only in the registries step's stdin, a secret", () => {
    for (const m of machines) {
      const step = run.get(REMOTE, `${m}-registries`);
      assert.ok(step.secretInputs.includes("stdin"), m);
      assert.ok(script(step).includes(PASSWORD));
      // The install shows the file with [secret]: a change of a mirror is in its preview diff.
      const install = run.get(REMOTE, `${m}-install`);
      assert.ok(!install.secretInputs.includes("stdin"));
      assert.match(script(install), /^REGISTRIES='mirrors:\n {2}docker\.io:\n/m);
      assert.match(script(install), /password: "\[secret\]"/);
      assert.match(script(install), /^KEEP_REGISTRIES='true'$/m);
    }
    for (const r of run.resources)
      for (const [key, value] of Object.entries(r.inputs))
        if (!r.secretInputs.includes(key))
          assert.ok(!JSON.stringify(value).includes(PASSWORD), `${r.name}.${key} shows it`);
  });

  it("without k3s.registries: no such step, nothing kept by the uninstall", async () => {
    const plain = await runProgram(HA);
    assert.deepEqual(
      k3sSteps(plain, REMOTE).filter((n) => n.endsWith("-registries")),
      [],
    );
    assert.match(script(plain.get(REMOTE, "s1-install")), /^REGISTRIES=''$/m);
    assert.match(script(plain.get(REMOTE, "s1-install")), /^KEEP_REGISTRIES='false'$/m);
  });
});

describe("k3s: rendering", () => {
  it("renders a first server's config.yaml", () => {
    assert.equal(
      renderK3sConfig({
        machine: machine({ docker: true }),
        joinHost: undefined,
        clusterInit: false,
        extraArgs: ["--disable=traefik"],
      }),
      [
        "node-name: laptop",
        "tls-san:",
        "  - 192.168.1.21",
        'write-kubeconfig-mode: "0600"',
        "agent-token-file: /etc/rancher/k3s/agent-token",
        "docker: true",
        "disable: traefik",
        "",
      ].join("\n"),
    );
  });

  it("renders an agent's config.yaml with the server and the token file, no token", () => {
    assert.equal(
      renderK3sConfig({
        machine: machine({ name: "clover1", role: "agent", labels: { a: "b" } }),
        joinHost: "192.168.1.21",
        clusterInit: false,
        extraArgs: [],
      }),
      [
        "node-name: clover1",
        "server: https://192.168.1.21:6443",
        "token-file: /etc/rancher/k3s/token",
        "",
      ].join("\n"),
    );
  });

  it("names k3s.apiEndpoint in a server's certificate, and the addresses of a two-NIC Pi", () => {
    assert.equal(
      renderK3sConfig({
        machine: machine({ nodeIp: "192.168.1.21", flannelIface: "enp3s0" }),
        joinHost: undefined,
        clusterInit: true,
        extraArgs: [],
        apiEndpoint: "k3s.lab.example",
      }),
      [
        "node-name: laptop",
        "tls-san:",
        "  - 192.168.1.21",
        "  - k3s.lab.example",
        'write-kubeconfig-mode: "0600"',
        "agent-token-file: /etc/rancher/k3s/agent-token",
        "cluster-init: true",
        "node-ip: 192.168.1.21",
        "flannel-iface: enp3s0",
        "",
      ].join("\n"),
    );
    const pi = renderK3sConfig({
      machine: machine({
        name: "clover1",
        role: "agent",
        nodeIp: "fd00::31",
        flannelIface: "eth0",
      }),
      joinHost: "k3s.lab.example",
      clusterInit: false,
      extraArgs: [],
      apiEndpoint: "k3s.lab.example",
    });
    assert.equal(
      pi,
      [
        "node-name: clover1",
        "server: https://k3s.lab.example:6443",
        "token-file: /etc/rancher/k3s/token",
        "node-ip: fd00::31",
        "flannel-iface: eth0",
        "",
      ].join("\n"),
    );
    assert.doesNotMatch(pi, /tls-san/);
  });

  it("adds a --tls-san of k3s.serverArgs to rosfleet's names instead of replacing them", () => {
    const yaml = renderK3sConfig({
      machine: machine(),
      joinHost: undefined,
      clusterInit: false,
      extraArgs: ["--tls-san=laptop.lab.example", "--tls-san=192.168.1.21"],
      apiEndpoint: "k3s.lab.example",
    });
    assert.deepEqual((parse(yaml) as Record<string, unknown>)["tls-san"], [
      "192.168.1.21",
      "k3s.lab.example",
      "laptop.lab.example",
    ]);
  });

  it("leaves --node-label and --node-taint out of config.yaml (the node step applies them)", () => {
    const yaml = renderK3sConfig({
      machine: machine(),
      joinHost: undefined,
      clusterInit: false,
      extraArgs: ["--node-label=robot=yes", "--node-taint=wet:NoExecute", "--disable=traefik"],
    });
    assert.doesNotMatch(yaml, /node-label|node-taint/);
    assert.match(yaml, /^disable: traefik$/m);
  });

  it("turns repeated and bare flags into lists and booleans", () => {
    assert.deepEqual(
      flagsToConfig([
        "--disable=traefik",
        "--disable=servicelb",
        "--secrets-encryption",
        "--node-ip=10.0.0.1",
      ]),
      {
        disable: ["traefik", "servicelb"],
        "secrets-encryption": true,
        "node-ip": "10.0.0.1",
      },
    );
  });

  it("brackets IPv6 server addresses", () => {
    assert.equal(serverUrl("fd00::1"), "https://[fd00::1]:6443");
    assert.equal(serverUrl("clover-laptop.local"), "https://clover-laptop.local:6443");
  });

  it("rewrites the kubeconfig's 127.0.0.1 to the server host and names it after the lab", () => {
    const out = parse(
      rewriteKubeconfig(FAKE_K3S_YAML, "192.168.1.21", "rosfleet-clover"),
    ) as Record<string, unknown>;
    assert.deepEqual(out["clusters"], [
      {
        cluster: {
          "certificate-authority-data": "Q0EtREFUQQ==",
          server: "https://192.168.1.21:6443",
        },
        name: "rosfleet-clover",
      },
    ]);
    assert.deepEqual(out["contexts"], [
      { context: { cluster: "rosfleet-clover", user: "rosfleet-clover" }, name: "rosfleet-clover" },
    ]);
    assert.equal(out["current-context"], "rosfleet-clover");
    assert.deepEqual(out["users"], [
      {
        name: "rosfleet-clover",
        user: { "client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ" },
      },
    ]);
  });

  it("refuses a file that is not a kubeconfig", () => {
    assert.throws(() => rewriteKubeconfig("hello", "h", "n"), /not a kubeconfig/);
  });
});

describe("k3s: bad configuration stops the program before any resource", () => {
  it("throws one error naming every problem", async () => {
    await assert.rejects(
      runProgram({
        machines: [{ name: "x", host: "h", role: "server", arch: "armv7" }],
        k3s: { version: "1.33" },
      }),
      (err: Error) => {
        assert.equal(
          err.message,
          [
            "invalid rosfleet stack configuration (4 problems):",
            '  machines[0].arch: expected amd64 | arm64, got "armv7"',
            '  k3s.version: expected a k3s release tag such as v1.33.5+k3s1, got "1.33"',
            "  machines[0].user: no SSH user: set ssh.user for the lab or user on this machine",
            "  image.repository: required for this lab: where to push the image so that every node pulls it, e.g. docker.io/<you>/ros_demo (only a lab of one machine, the one running pulumi, goes without one: Docker builds the image there and k3s imports it)",
          ].join("\n"),
        );
        return true;
      },
    );
  });
});

describe("k3s: air-gap file names and digests", () => {
  it("names a copy rosfleet-<basename>, with anything a shell could read replaced", () => {
    assert.equal(
      remoteName("/a/k3s-airgap-images-arm64.tar.zst"),
      "rosfleet-k3s-airgap-images-arm64.tar.zst",
    );
    assert.equal(remoteName("/a/my images $(x);*.tar"), "rosfleet-my_images___x___.tar");
  });

  it("reads a file list once per run, in chunks, and again when a file changes", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-digest-"));
    const big = path.join(dir, "images.tar");
    // Over one read chunk, so the chunked read is what is checked against the whole file.
    const content = Buffer.alloc(3 * (1 << 20) + 17, 7);
    fs.writeFileSync(big, content);
    let reads = 0;
    const whole = createHash("sha256").update(content).update("x").digest("hex");
    const small = path.join(dir, "k3s");
    fs.writeFileSync(small, "x");
    const hashOf = (files: readonly string[]) => {
      reads += 1;
      return hashFiles(files);
    };
    assert.equal(filesDigest([big, small], hashOf), whole);
    assert.equal(filesDigest([big, small], hashOf), whole);
    assert.equal(reads, 1, "the second machine of the arch reuses the digest");
    fs.appendFileSync(small, "y");
    assert.notEqual(filesDigest([big, small], hashOf), whole);
    assert.equal(reads, 2);
  });
});

describe("k3s: air-gapped install (k3s.airgap)", () => {
  const COPY = "command:remote:CopyToRemote";
  // Files as a lab keeps them on the laptop (the content stands in for the real assets).
  const laptop = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-airgap-"));
  const file = (name: string, content: string) => {
    fs.writeFileSync(path.join(laptop, name), content);
    return path.join(laptop, name);
  };
  const airgap = {
    installScript: file("install.sh", "#!/bin/sh\n"),
    binaries: { amd64: file("k3s", "amd64"), arm64: file("k3s-arm64", "arm64") },
    images: { arm64: file("k3s-airgap-images-arm64.tar.zst", "images") },
  };
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(
      clover((c) => ((c["k3s"] as Record<string, unknown>)["airgap"] = airgap)),
    );
  });

  it("copies the installer and the machine's arch binary (and images) to each machine", () => {
    const copies = run.resources
      .filter((r) => r.type === COPY)
      .map((r) => [r.name, host(r), r.inputs["remotePath"]]);
    assert.deepEqual(copies, [
      ["laptop-airgap-installer", "192.168.1.21", "rosfleet-k3s-install.sh"],
      ["laptop-airgap-binary", "192.168.1.21", "rosfleet-k3s"],
      ["clover1-airgap-installer", "192.168.1.31", "rosfleet-k3s-install.sh"],
      ["clover1-airgap-binary", "192.168.1.31", "rosfleet-k3s"],
      ["clover1-airgap-images", "192.168.1.31", "rosfleet-k3s-airgap-images-arm64.tar.zst"],
      ["vm1-airgap-installer", "192.168.1.41", "rosfleet-k3s-install.sh"],
      ["vm1-airgap-binary", "192.168.1.41", "rosfleet-k3s"],
    ]);
  });

  it("installs from the copies, after them and after every preflight", () => {
    const join = run.get(REMOTE, "clover1-install");
    assert.match(script(join), /^AIRGAP_BINARY='rosfleet-k3s'$/m);
    assert.match(script(join), /^AIRGAP_IMAGES='rosfleet-k3s-airgap-images-arm64\.tar\.zst'$/m);
    assert.ok(run.dependsOn(join, run.get(COPY, "clover1-airgap-binary")));
    assert.ok(
      run.dependsOn(run.get(COPY, "laptop-airgap-binary"), run.get(REMOTE, "clover1-preflight")),
    );
    assert.match(
      script(join),
      /^AIRGAP_FILES='rosfleet-k3s-install\.sh rosfleet-k3s rosfleet-k3s-airgap-images-arm64\.tar\.zst'$/m,
    );
    assert.match(script(run.get(REMOTE, "vm1-preflight")), /^NEED_CURL='false'$/m);
  });

  it("makes a new binary a visible change of the install that uses it", async () => {
    // (Its copy changes too: the engine compares the file asset's hash, which mocks do not see.)
    fs.writeFileSync(airgap.binaries.arm64, "arm64, rebuilt");
    const after = await runProgram(
      clover((c) => ((c["k3s"] as Record<string, unknown>)["airgap"] = airgap)),
      { lastReports: run.reports },
    );
    const changed = after.resources
      .filter(
        (r) =>
          JSON.stringify(
            run.resources.find((x) => x.type === r.type && x.name === r.name)?.inputs,
          ) !== JSON.stringify(r.inputs),
      )
      .map((r) => r.name);
    assert.deepEqual(changed, ["clover1-install"]);
  });

  it("reads the files in place on a local machine", async () => {
    const dev = await runProgram({
      ...readStackConfig("dev"),
      k3s: { version: "v1.33.5+k3s1", airgap },
    });
    assert.deepEqual(dev.names(COPY), []);
    assert.match(
      script(dev.get(LOCAL, "devbox-install")),
      new RegExp(`^AIRGAP_BINARY='${airgap.binaries.amd64}'$`, "m"),
    );
  });
});
