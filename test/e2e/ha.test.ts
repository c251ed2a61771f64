// The lab tier's HA half: three k3s servers on three machines whose stand-ins run a real
// three-member etcd cluster (test/e2e/standins/k3s), with rosfleet's own install, join, node and
// removal scripts sent over SSH as the program's steps send them. Quorum is etcd's own here: a
// member is removed through etcd's API when its server's Node is deleted (k3s's finalizer), and
// etcd refuses a removal that would leave it without quorum. Scenarios of issue 26: a healthy
// server may not leave while another is down (refused before anything changes), the dead one
// may, and servers go 3 → 2 → 1 one at a time with etcd healthy after each.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { airgapPlan } from "../../components/k3s/airgap";
import { AGENT_TOKEN, renderK3sConfig, SERVER_TOKEN } from "../../components/k3s/render";
import {
  installScript,
  joinProgram,
  nodeScript,
  removeNodeScript,
  uninstallScript,
} from "../../components/k3s/scripts";
import { Airgap, Machine } from "../../components/config";
import { StepScripts, bundleLine, programLine, scriptBundle } from "../../components/shell";
import { machine } from "../helpers/machine";
import {
  LAB_K3S_VERSION as VERSION,
  LAB_USER,
  Lab,
  LabHost,
  missingPrerequisite,
  waitUntil,
} from "./lab";

const BIN = process.env.ROSFLEET_TOOLCHAIN_BIN ?? "";
const SERVERS = [
  { name: "e2e-s1", arch: "amd64", role: "server", kind: "vm" },
  { name: "e2e-s2", arch: "amd64", role: "server", kind: "vm" },
  { name: "e2e-s3", arch: "amd64", role: "server", kind: "vm" },
] as const;

describe("lab: three servers on a real etcd cluster", function () {
  this.timeout(10 * 60_000);
  const lab = new Lab(SERVERS, BIN);
  const [s1, s2, s3] = lab.hosts as [LabHost, LabHost, LabHost];
  const m = (h: LabHost): Machine =>
    machine({
      ...(SERVERS.find((s) => s.name === h.name) ?? SERVERS[0]),
      host: h.ip,
      user: LAB_USER,
      labels: {},
      taints: [],
    });
  let airgap: Airgap;
  let token = "";
  let agentToken = "";

  /** A script step as the provider sends it; the run's result, whatever its status. */
  const run = (h: LabHost, scripts: StepScripts, action: "create" | "delete" = "create") =>
    lab.ssh(h, bundleLine(action, { asRoot: true, user: LAB_USER }), scriptBundle(scripts));
  const send = async (h: LabHost, scripts: StepScripts, action: "create" | "delete" = "create") => {
    const r = await run(h, scripts, action);
    assert.equal(r.status, 0, `${h.name}: ${r.stdout}${r.stderr}\n${lab.logs()}`);
    return r.stdout;
  };
  const installOf = (h: LabHost): StepScripts => {
    const joinHost = h === s1 ? undefined : s1.ip;
    const plan = airgapPlan(airgap, m(h));
    return {
      create: installScript({
        machine: m(h),
        version: VERSION,
        configYaml: renderK3sConfig({
          machine: m(h),
          joinHost,
          clusterInit: h === s1,
          extraArgs: [],
        }),
        joinHost,
        airgap: plan?.params,
      }),
      delete: uninstallScript(m(h), plan, false),
    };
  };
  /** The removal step of a leaving server, run on the first server (`<name>-node`'s undo). */
  const removal = (h: LabHost) => run(s1, { create: removeNodeScript(m(h)) });
  const kubectl = (args: string) => lab.kubectl(s1, args);
  /** etcd's members as the first server's member answers: their names, sorted. */
  const members = () =>
    [
      ...lab
        .root(s1, "curl -sf -X POST -d '{}' http://127.0.0.1:2379/v3/cluster/member/list")
        .stdout.matchAll(/"name":"([^"]+)"/g),
    ]
      .map((x) => x[1])
      .sort();
  const ready = (node: string) =>
    kubectl(`get node ${node} -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'`);
  const etcdHealthy = () => lab.root(s1, "k3s kubectl get --raw /readyz/etcd").stdout === "ok";

  before(async function () {
    const missing = missingPrerequisite(SERVERS);
    if (missing !== undefined) {
      if (process.env["CI"] === "true") throw new Error(`the lab cannot run: ${missing}`);
      console.log(`    HA lab tests skipped: ${missing}`);
      this.skip();
    }
    if (!fs.existsSync(`${BIN}/etcd`) || !fs.existsSync(`${BIN}/kube-apiserver`))
      throw new Error("the lab needs the toolchain: run `npm run test:lab` (it builds it)");
    await lab.start();
    airgap = { ...lab.airgapFiles(VERSION), images: {} };
    for (const h of lab.hosts)
      for (const f of airgapPlan(airgap, m(h))?.copies ?? []) {
        const r = await lab.ssh(h, `cat >${f.remote}`, fs.readFileSync(f.local, "utf8"));
        assert.equal(r.status, 0, r.stderr);
      }
  });
  after(async function () {
    if (this.currentTest?.state === "failed") console.error(lab.logs());
    await lab.stop();
  });

  /** A Pi's token, taken from its SD card, tried as a new server's: k3s refuses it, and the
   * server is not made an etcd member. */
  const agentTokenRefused = async (h: LabHost) => {
    const before = members();
    // Its output to a file: the bounded start it leaves behind must not hold the session open.
    const thief = await lab.ssh(
      h,
      `timeout 20 ${programLine(joinProgram(), { asRoot: true, user: LAB_USER })} >/tmp/thief.log 2>&1`,
      `${agentToken}\n${agentToken}\n`,
    );
    assert.notEqual(thief.status, 0, thief.stdout);
    assert.match(lab.root(h, "cat /var/log/k3s.log").stdout, /token rejected/);
    assert.deepEqual(members(), before);
  };

  it("installs the first server with cluster-init; two more join it as etcd members, not with an agent's token", async () => {
    assert.match(await send(s1, installOf(s1)), /node e2e-s1 is Ready/);
    const read = async (file: string) =>
      (
        await lab.ssh(s1, programLine(["cat", file], { asRoot: true, user: LAB_USER }))
      ).stdout.trim();
    agentToken = await read(AGENT_TOKEN);
    // What a joining server's step hands over: the server token, then the agent token.
    token = `${await read(SERVER_TOKEN)}\n${agentToken}\n`;
    for (const h of [s2, s3]) {
      await send(h, installOf(h));
      if (h === s3) await agentTokenRefused(h);
      const joined = await lab.ssh(
        h,
        programLine(joinProgram(), { asRoot: true, user: LAB_USER }),
        token,
      );
      assert.equal(joined.status, 0, `${joined.stdout}${joined.stderr}\n${lab.logs()}`);
      assert.match(
        joined.stdout,
        new RegExp(`k3s \\(server\\) on ${h.name} runs with the cluster token`),
      );
    }
    for (const h of lab.hosts) await send(s1, { create: nodeScript(m(h)) });
    assert.deepEqual(members(), ["e2e-s1", "e2e-s2", "e2e-s3"]);
    assert.deepEqual(
      kubectl("get nodes -l node-role.kubernetes.io/control-plane -o name").trim().split("\n"),
      ["node/e2e-s1", "node/e2e-s2", "node/e2e-s3"],
    );
    assert.ok(etcdHealthy());
  });

  it("refuses to remove a healthy server while another is down, before anything changes", async () => {
    lab.root(s3, "systemctl stop k3s");
    await waitUntil("e2e-s3's Node is still Ready", () => ready("e2e-s3") !== "True", 90);
    const r = await removal(s2);
    assert.equal(r.status, 1, r.stdout);
    assert.match(
      r.stderr,
      /^server e2e-s2 cannot leave while e2e-s3 is down: etcd would be left with a dead member among the rest and lose quorum/m,
    );
    assert.doesNotMatch(r.stdout, /drained|deleted/);
    assert.equal(ready("e2e-s2"), "True");
    assert.deepEqual(members(), ["e2e-s1", "e2e-s2", "e2e-s3"]);
    assert.ok(etcdHealthy());
  });

  it("etcd itself refuses what that guard spares the lab: removing e2e-s2's member now", () => {
    // What k3s's finalizer would do if e2e-s2's Node were deleted regardless.
    const list = lab.root(
      s1,
      "curl -sf -X POST -d '{}' http://127.0.0.1:2379/v3/cluster/member/list",
    );
    const id = /"ID":"(\d+)",\s*"name":"e2e-s2"/.exec(list.stdout)?.[1];
    assert.ok(id !== undefined, list.stdout);
    const refused = lab.root(
      s1,
      `curl -s -X POST -d '{"ID":"${id}"}' http://127.0.0.1:2379/v3/cluster/member/remove`,
    );
    // etcd's quorum protection: the removal would leave one active member of two.
    assert.match(refused.stdout, /"etcdserver: unhealthy cluster"/);
    assert.deepEqual(members(), ["e2e-s1", "e2e-s2", "e2e-s3"]);
  });

  it("removes the server that is down: its member goes, etcd healthy with the other two", async () => {
    const r = await removal(s3);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /node e2e-s3 is not Ready .*deleting it without a drain/);
    assert.match(
      r.stdout,
      /server e2e-s3 left the cluster: its etcd member is removed and etcd is healthy/,
    );
    assert.deepEqual(members(), ["e2e-s1", "e2e-s2"]);
    await send(s3, installOf(s3), "delete");
    assert.equal(lab.leftovers(s3), "");
    assert.ok(etcdHealthy());
  });

  it("then 2 → 1: the other joined server leaves while the first is up; the first stays alone", async () => {
    const r = await removal(s2);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(
      r.stdout,
      /server e2e-s2 left the cluster: its etcd member is removed and etcd is healthy/,
    );
    assert.deepEqual(members(), ["e2e-s1"]);
    await send(s2, installOf(s2), "delete");
    assert.equal(lab.leftovers(s2), "");
    assert.equal(kubectl("get nodes -o name").trim(), "node/e2e-s1");
    assert.ok(etcdHealthy());
    await send(s1, installOf(s1), "delete");
    assert.equal(lab.leftovers(s1), "");
  });
});
