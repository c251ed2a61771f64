// The cluster tier: rosfleet's program on the real Pulumi engine against real nodes (kubelet,
// containerd, runc, a pod network that carries unicast but not multicast between nodes,
// kube-proxy), real pods of the ros_demo image the image stage built from the project's
// Dockerfile on a base made from the Jazzy wheels (pulled by digest behind a login), real
// Fast DDS. What no other tier can show: ROS 2 messages crossing nodes (or not), the delivery
// check's verdict on real traffic, what running pods do to their volumes, signals and DNS. The
// dashboard is off: Headlamp's image cannot be had here. Run with `npm run test:cluster` (as root).
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Stack } from "@pulumi/pulumi/automation";
import { changeList, leftInCluster, stateObjects, withChanges } from "../helpers/automation";
import { REPO_ROOT } from "../helpers/stack";
import { waitFor } from "../engine/controlplane";
import { ClusterLab, NODES } from "./lab";
import { podGateway } from "./nodes";
import { DockerImport, docker } from "./imported";
import { materials } from "../image/world";
import type { DeliveryOutput } from "../../components/ros/check-spec";
import type { LabRosEnv } from "../../components/ros/lab-env";
import { parseReport, reportsOf } from "../../components/ros/delivery";
import { lossPercent } from "../../components/ros/verdict";
import { ROS_RESOURCES } from "../../components/ros/render";

const BIN = process.env.ROSFLEET_TOOLCHAIN_BIN ?? "";
const NS = "rosfleet";

interface Pod {
  metadata: { name: string; deletionTimestamp?: string; creationTimestamp?: string };
  spec: { nodeName?: string };
  status: { phase?: string; conditions?: { type: string; status: string }[] };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ready = (p: Pod) =>
  p.metadata.deletionTimestamp === undefined &&
  (p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false);

/** The README's command for looking at /chatter from the toolbox, as a word list. */
function readmeEchoCommand(): string[] {
  const readme = fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8").replace(/\s+/g, " ");
  const m =
    /(kubectl -n rosfleet exec -it deploy\/demo-listener -c toolbox -- [^`]*?topic echo \/chatter)/.exec(
      readme,
    );
  if (m === null) throw new Error("README has no `kubectl ... exec ... topic echo /chatter` line");
  return m[1].split(" ");
}

describe("cluster: rosfleet on real nodes, real pods, real ROS 2", function () {
  this.timeout(20 * 60_000);
  const lab = new ClusterLab(BIN);
  let stack: Stack;

  const pods = async (app: string): Promise<Pod[]> =>
    (
      (await lab.cp?.api.get<{ items: Pod[] }>(
        `/api/v1/namespaces/${NS}/pods?labelSelector=app.kubernetes.io%2Fname%3D${app}`,
      )) ?? { items: [] }
    ).items;
  const logsOf = (pod: string, container: string) =>
    lab.kubectl(["-n", NS, "logs", pod, "-c", container]).stdout;
  /** Waits for `ok` (the components' logs are printed by `after` when a test fails). */
  const within = (what: string, seconds: number, ok: () => Promise<boolean>) =>
    waitFor(what, ok, seconds * 1000, () => "");
  const heardLines = (pod: string, container = "listener") =>
    logsOf(pod, container)
      .split("\n")
      .filter((l) => /I heard: [["]Hello World: \d+/.test(l));

  before(async function () {
    if (BIN === "")
      throw new Error("run the cluster tier with `npm run test:cluster` (it builds the toolchain)");
    console.log("    cluster: dashboard off (Headlamp's image cannot be had on this machine)");
    await lab.start();
    stack = lab.pulumi?.stack as Stack;
  });

  after(async function () {
    if (this.currentTest?.state === "failed") console.error(lab.logs());
    await lab.stop();
  });

  it("the nodes' own network carries multicast between nodes (what host-network pods use)", async () => {
    const [laptop, robot] = lab.nodes?.nodes ?? [];
    assert.equal(await lab.nodes?.multicastReaches(laptop, robot), true);
    assert.equal(await lab.nodes?.multicastReaches(robot, laptop), true);
  });

  it("discovery-server: up passes, every ordered pair measured (a node with itself too)", async () => {
    await stack.setAllConfig(lab.config("discovery-server"));
    const start = Date.now();
    const result = await stack.up({ color: "never" });
    console.log(`    up to the verdict: ${Math.round((Date.now() - start) / 1000)} s`);
    const delivery = result.outputs.delivery?.value as DeliveryOutput;
    const expected = NODES.flatMap((l) => NODES.map((t) => `${t}->${l}`));
    assert.deepEqual(
      delivery.pairs.map((d) => `${d.talker}->${d.listener}`).sort(),
      expected.sort(),
    );
    assert.deepEqual(
      delivery.pairs.filter((d) => !d.received || d.problems.length > 0),
      [],
    );
    // Real figures, from the real pods: heartbeats at the beacon's rate, round trips, the
    // large messages all there.
    for (const d of delivery.pairs) {
      const pair = `${d.talker}->${d.listener}`;
      assert.ok((d.ratePerSecond ?? 0) > 20, `${pair} rate ${d.ratePerSecond}`);
      assert.ok((d.lossPercent ?? 100) < 50, `${pair} loss ${d.lossPercent}`);
      assert.ok(d.rttP50Ms !== undefined && d.rttP50Ms > 0, `${pair} rtt ${d.rttP50Ms}`);
      assert.equal(d.largeMessages, "3/3", pair);
    }
    assert.deepEqual(delivery.measuredWith, {
      mode: "discovery-server",
      distro: "jazzy",
      rmw: "rmw_fastrtps_cpp",
      domainId: 0,
    });
    console.log(`    ${delivery.table.join("\n    ")}`);
    // Both Jobs of the check ran to completion: no beacon is left running.
    assert.deepEqual(
      (await pods("rosfleet-beacon")).filter((p) => p.status.phase === "Running"),
      [],
    );
  });

  it("every ROS pod runs the image the stage built, pulled from the lab registry by digest", async () => {
    const image = String((await stack.outputs()).image?.value);
    assert.match(image, new RegExp(`^${lab.world?.repository}:jazzy@sha256:[0-9a-f]{64}$`));
    const all = await lab.cp?.api.get<{
      items: {
        metadata: { name: string };
        spec: { containers: { image: string }[] };
        status: { containerStatuses?: { imageID: string }[] };
      }[];
    }>(`/api/v1/namespaces/${NS}/pods`);
    const pods = all?.items ?? [];
    assert.ok(pods.length >= 5, `the lab's pods (${pods.length})`);
    const digest = image.slice(image.indexOf("@"));
    for (const p of pods) {
      assert.deepEqual(
        [...new Set(p.spec.containers.map((c) => c.image))],
        [image],
        p.metadata.name,
      );
      // What containerd pulled (through the pull Secret's login) is that digest.
      for (const c of p.status.containerStatuses ?? [])
        assert.ok(c.imageID.endsWith(digest), `${p.metadata.name}: ${c.imageID}`);
    }
  });

  it("every ROS container's Fast DDS settings come from the profile, none from the variables Humble ignores", async () => {
    const all = await lab.cp?.api.get<{
      items: {
        metadata: { name: string; labels?: Record<string, string> };
        spec: { containers: { name: string; env?: { name: string; value?: string }[] }[] };
      }[];
    }>(`/api/v1/namespaces/${NS}/pods`);
    const ros = (all?.items ?? []).filter(
      (p) => !(p.metadata.labels?.["app.kubernetes.io/name"] ?? "").startsWith("ros-discovery"),
    );
    assert.ok(ros.length >= 4);
    for (const p of ros)
      for (const c of p.spec.containers) {
        const env = new Map((c.env ?? []).map((e) => [e.name, e.value]));
        const where = `${p.metadata.name}/${c.name}`;
        assert.equal(env.has("FASTDDS_BUILTIN_TRANSPORTS"), false, where);
        assert.equal(env.has("ROS_SUPER_CLIENT"), false, where);
        assert.match(
          env.get("FASTRTPS_DEFAULT_PROFILES_FILE") ?? "",
          // The CLI and the check's probes see the whole graph; the demo nodes are plain clients.
          ["toolbox", "check", "beacon"].includes(c.name) ? /super-client\.xml$/ : /\/client\.xml$/,
          where,
        );
      }
    // Same-node pairs and the toolbox's view of the graph (README's command, next) rest on it.
  });

  it("the demo listener logs the talker's messages, sent from another node", async () => {
    const [talker] = await pods("ros-talker");
    const [listener] = await pods("demo-listener");
    assert.equal(talker.spec.nodeName, "cluster-robot");
    assert.equal(listener.spec.nodeName, "cluster-laptop");
    await within(
      "demo-listener hears the talker",
      60,
      async () => heardLines("deploy/demo-listener").length > 0,
    );
    // The beacons have their own topic: the demo hears only the demo.
    assert.doesNotMatch(logsOf("deploy/demo-listener", "listener"), /beat cluster-/);
  });

  it("README's toolbox command shows /chatter (through the entrypoint that puts ros2 on PATH)", () => {
    const words = readmeEchoCommand();
    const at = words.indexOf("--");
    const [, ...kubectlArgs] = words.slice(0, at);
    const remote = words.slice(at + 1);
    const r = lab.kubectl(
      // -t needs a terminal the test has not got; the command must not rely on one.
      [...kubectlArgs.filter((a) => a !== "-it"), "-i", "--", "timeout", "15", ...remote],
      40_000,
    );
    assert.match(r.stdout, /^data: '?Hello World: \d+'?$/m, `${r.stdout}\n${r.stderr}`);
  });

  it("rosEnv: ros2 in a node's own network namespace (not a pod) with it hears the talker", async () => {
    const rosEnv = (await stack.outputs()).rosEnv?.value as LabRosEnv;
    assert.equal(rosEnv.mode, "discovery-server");
    const image = String((await stack.outputs()).image?.value);
    const digest = image.slice(image.indexOf("@") + 1);
    const [laptop] = lab.nodes?.nodes ?? [];
    // The image as the laptop's containerd has it (the kubelet pulled it), run with the
    // laptop's own network (--net-host: the namespace its containerd runs in), as a process
    // on that machine would be.
    const refs = lab.nodes?.ctr(laptop, ["-n", "k8s.io", "images", "ls", "-q"]).stdout ?? "";
    const ref = refs.split("\n").find((r) => r.includes(digest) || r.endsWith(digest)) ?? "";
    assert.notEqual(ref, "", refs);
    const env = Object.entries(rosEnv.env).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
    const r = lab.nodes?.ctr(laptop, [
      ...["-n", "k8s.io", "run", "--rm", "--net-host", ...env, ref, "rosfleet-rosenv"],
      ...["timeout", "20", "/ros_entrypoint.sh", "ros2", "topic", "echo", "/chatter"],
    ]);
    assert.match(r?.stdout ?? "", /^data: '?Hello World: \d+'?$/m, `${r?.stdout}\n${r?.stderr}`);
  });

  it("README's toolbox command leaves no ros2 behind when its kubectl is killed", async () => {
    const words = readmeEchoCommand();
    const at = words.indexOf("--");
    const [, ...kubectlArgs] = words.slice(0, at);
    const bound = Number(words[at + 2]);
    assert.equal(words[at + 1], "timeout", "the command is bounded inside the container");
    // kubectl killed (no terminal, a dropped connection): the process in the toolbox stays.
    const cut = lab.kubectlStarted([
      ...kubectlArgs.filter((a) => a !== "-it"),
      "-i",
      ...words.slice(at),
    ]);
    await new Promise((r) => setTimeout(r, 5000));
    cut.kill("SIGKILL");
    const echoes = () =>
      lab
        .kubectl([
          ...["-n", NS, "exec", "deploy/demo-listener", "-c", "toolbox", "--"],
          ...[
            "sh",
            "-c",
            'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " <"$f"; echo; done | grep -c "[t]opic echo" || true',
          ],
        ])
        .stdout.trim();
    // timeout, the entrypoint and ros2 itself each name "topic echo".
    assert.notEqual(echoes(), "0", "the cut-off command's ros2 still runs in the toolbox");
    await new Promise((r) => setTimeout(r, bound * 1000));
    assert.equal(echoes(), "0", `ros2 still runs ${bound} s later`);
  });

  it("no ROS node keeps the messages it hears in a log file on its 64 Mi scratch volume", () => {
    // Both containers share the pod's scratch volume, ROS_LOG_DIR included.
    const r = lab.kubectl([
      ...["-n", NS, "exec", "deploy/demo-listener", "-c", "listener", "--"],
      ...["sh", "-c", 'cat "$ROS_LOG_DIR"/* 2>/dev/null | grep -c "I heard" || true'],
    ]);
    assert.equal(r.stdout.trim(), "0", r.stderr);
  });

  it("a second up changes nothing", async () => {
    const { result, changes } = await withChanges((onEvent) => stack.up({ onEvent }));
    assert.equal(result.summary.result, "succeeded");
    assert.deepEqual(changeList(changes), []);
  });

  it("a ROS pod stops at once, and its replacement hears the talker within 30 s", async () => {
    const [old] = await pods("ros-listener");
    const start = Date.now();
    const r = lab.kubectl(["-n", NS, "delete", "pod", old.metadata.name, "--wait=true"], 60_000);
    const stopped = (Date.now() - start) / 1000;
    assert.equal(r.status, 0, r.stderr);
    // As PID 1, ros2 (or sleep) ignores SIGTERM and the kubelet waits out the 30 s grace period.
    assert.ok(stopped < 10, `deleting a ROS pod took ${stopped.toFixed(1)} s`);
    await within("the new ros-listener hears the talker", 30, async () => {
      const fresh = (await pods("ros-listener")).find(ready);
      return fresh !== undefined && heardLines(fresh.metadata.name).length > 0;
    });
    const heard = (Date.now() - start) / 1000;
    console.log(
      `    ros-listener pod deleted in ${stopped.toFixed(1)} s; its replacement heard the talker ${heard.toFixed(1)} s after the delete`,
    );
  });

  /** The numbers of the talker's messages the demo listener logged. */
  const heardNumbers = () =>
    heardLines("deploy/demo-listener").map((l) => Number(/Hello World: (\d+)/.exec(l)?.[1]));
  /** The talker publishes once a second: the numbers after `before` sent since `start` (but the
   * last two, maybe on their way) that the demo listener did not log. */
  const missedSince = (before: number, start: number) => {
    const heard = heardNumbers().filter((n) => n > before);
    const elapsed = Math.floor((Date.now() - start) / 1000);
    return Array.from({ length: elapsed - 2 }, (_, i) => before + 1 + i).filter(
      (n) => !heard.includes(n),
    );
  };
  /** Deletes the ros-listener pod: seconds until its replacement hears the talker. */
  const replacedListenerHears = async (seconds: number) => {
    const [old] = await pods("ros-listener");
    const deleted = Date.now();
    lab.kubectl(["-n", NS, "delete", "pod", old.metadata.name, "--wait=true"]);
    await within("a listener started now hears the talker", seconds, async () => {
      const fresh = (await pods("ros-listener")).find(ready);
      return fresh !== undefined && heardLines(fresh.metadata.name).length > 0;
    });
    return (Date.now() - deleted) / 1000;
  };

  it("a discovery server's pod deleted: running pods lose nothing, and new pods still find the talker", async () => {
    const [server] = await pods("ros-discovery");
    const before = heardNumbers().at(-1) ?? 0;
    const start = Date.now();
    lab.kubectl(["-n", NS, "delete", "pod", server.metadata.name, "--wait=true"]);
    await within("a new discovery server is ready", 60, async () =>
      (await pods("ros-discovery")).some(ready),
    );
    const replaced = (Date.now() - start) / 1000;
    await sleep(5_000);
    assert.deepEqual(missedSince(before, start), [], "messages the demo listener missed");
    // The new server does not know the participants that predate it (they keep its
    // predecessor's address); a listener that starts now finds the talker through the other.
    const heard = await replacedListenerHears(30);
    console.log(
      `    discovery server replaced in ${replaced.toFixed(1)} s, no message lost; a listener started after it heard the talker ${heard.toFixed(1)} s after its pod's delete`,
    );
  });

  it("both discovery servers' pods deleted at once: running pods lose nothing, and a rollout restart brings new pods together", async () => {
    const before = heardNumbers().at(-1) ?? 0;
    const servers = [...(await pods("ros-discovery")), ...(await pods("ros-discovery-1"))];
    assert.equal(servers.length, 2);
    const start = Date.now();
    lab.kubectl(["-n", NS, "delete", "pod", ...servers.map((p) => p.metadata.name), "--wait=true"]);
    await within(
      "both new discovery servers are ready",
      60,
      async () =>
        (await pods("ros-discovery")).some(ready) && (await pods("ros-discovery-1")).some(ready),
    );
    await sleep(5_000);
    // Matched pods talk to each other directly: none of the talker's messages is lost.
    assert.deepEqual(missedSince(before, start), [], "messages the demo listener missed");
    // Neither new server knows the running participants (they keep the old servers'
    // addresses): whether a listener that starts now finds the talker is measured and said;
    // the reference says what was seen.
    const heard = await replacedListenerHears(30).catch(() => undefined);
    console.log(
      `    both discovery servers replaced, no message lost; a listener started after them ${heard === undefined ? "heard nothing for 30 s" : `heard the talker ${heard.toFixed(1)} s after its pod's delete`}`,
    );
    // The remedy the reference gives: restart the workloads, and they all find each other.
    assert.equal(lab.kubectl(["-n", NS, "rollout", "restart", "deployment"]).status, 0);
    const restarted = Date.now();
    await within("after a rollout restart, the new listener hears the talker", 120, async () => {
      const fresh = (await pods("ros-listener")).filter(
        (p) => ready(p) && Date.parse(p.metadata.creationTimestamp ?? "") >= restarted - 1000,
      );
      return fresh.length > 0 && heardLines(fresh[0].metadata.name).length > 0;
    });
    console.log(
      `    after kubectl rollout restart deployment, a new listener heard the talker ${((Date.now() - restarted) / 1000).toFixed(1)} s later`,
    );
  });

  /** The Node's Ready condition status ("True", "False", "Unknown"). */
  const readyStatus = async (node: string) =>
    (
      await lab.cp?.api.get<{ status: { conditions: { type: string; status: string }[] } }>(
        `/api/v1/nodes/${node}`,
      )
    )?.status.conditions.find((c) => c.type === "Ready")?.status;

  it("a node that stopped being Ready fails up at once, naming it, before any check pod", async () => {
    const robot = "cluster-robot";
    lab.nodes?.signalKubelet(robot, "SIGSTOP");
    try {
      // The node controller's grace period (40 s by default) before it marks the node.
      await within(`${robot} is not Ready`, 120, async () => (await readyStatus(robot)) !== "True");
      // A changed check (its timeout) runs again: the gate asks first.
      await stack.setAllConfig(lab.config("discovery-server", 61));
      const start = Date.now();
      const err = await stack.up({ color: "never" }).then(
        () => assert.fail("up ran the check with a node that is not Ready"),
        (e: unknown) => e as Error,
      );
      const seconds = (Date.now() - start) / 1000;
      assert.match(err.message, /these machines' nodes cannot run pods now/);
      assert.match(err.message, new RegExp(`- ${robot}: not Ready \\(NodeStatusUnknown`));
      assert.doesNotMatch(err.message, /- cluster-(laptop|vm): /);
      assert.doesNotMatch(err.message, /delivery check failed/);
      assert.ok(seconds < 60, `up failed after ${seconds.toFixed(0)} s`);
      console.log(`    up failed at the gate after ${seconds.toFixed(0)} s`);
      // No check pod was started for it.
      const fresh = [...(await pods("delivery-check")), ...(await pods("rosfleet-beacon"))].filter(
        (p) => Date.parse(p.metadata.creationTimestamp ?? "") >= start - 1000,
      );
      assert.deepEqual(fresh, []);
    } finally {
      lab.nodes?.signalKubelet(robot, "SIGCONT");
    }
    // Ready, and the node controller's taints of its absence gone (it removes them after).
    await within(`${robot} is Ready again, untainted`, 120, async () => {
      const node = await lab.cp?.api.get<{ spec: { taints?: { key: string }[] } }>(
        `/api/v1/nodes/${robot}`,
      );
      return (await readyStatus(robot)) === "True" && (node?.spec.taints ?? []).length === 0;
    });
  });

  it("a node no check pod can be scheduled on: up fails once the others measured, with their figures and why", async () => {
    const robot = "cluster-robot";
    const taint = ["taint", "nodes", robot, "rosfleet-test=full:NoSchedule"];
    assert.equal(lab.kubectl(taint).status, 0);
    try {
      await stack.setAllConfig(lab.config("discovery-server", 30));
      const start = Date.now();
      const err = await stack.up({ color: "never" }).then(
        () => assert.fail("up passed with no check pod on the robot"),
        (e: unknown) => e as Error,
      );
      const seconds = (Date.now() - start) / 1000;
      // The others' timeout and the wait's own, not the Job's deadline (timeout + 300 s).
      assert.ok(seconds < 30 + 90, `up failed after ${seconds.toFixed(0)} s`);
      assert.match(
        err.message,
        new RegExp(
          `the check on ${robot} reported nothing: no check pod could be scheduled there: 0/3 nodes are available: .*untolerated taint`,
        ),
      );
      // The reports that arrived are read, and only the robot's pairs fail: the pod meant for
      // it, placed on another node once that node's had ended, measured nothing there.
      const verdict = verdictOf(err.message);
      console.log(`    after ${seconds.toFixed(0)} s:\n    ${verdict.join("\n    ")}`);
      const failing = verdict.filter((l) => / FAILED$/.test(l));
      assert.equal(failing.length, 5, verdict.join("\n"));
      for (const l of failing) assert.match(l, /cluster-robot/);
      const dup = (await pods("delivery-check")).filter((p) => p.spec.nodeName !== undefined);
      assert.ok(
        dup.some((p) => /already reported in this check/.test(logsOf(p.metadata.name, "check"))),
        "a second check pod on a node that reported left at once",
      );
    } finally {
      assert.equal(lab.kubectl(["taint", "nodes", robot, "rosfleet-test-"]).status, 0);
    }
  });

  /** `up` that must fail: its error's text, and how long it took. */
  const failingUp = async (why: string) => {
    const start = Date.now();
    const err = await stack.up({ color: "never" }).then(
      () => assert.fail(why),
      (e: unknown) => e as Error,
    );
    return { text: err.message, seconds: (Date.now() - start) / 1000 };
  };
  /** The verdict as `pulumi up` shows it (the engine repeats it in its summary): from its first
   * line to the end of its table. */
  const verdictOf = (text: string) => {
    const lines = text.slice(text.lastIndexOf("ROS 2 delivery check failed")).split("\n");
    // The engine indents the message's lines after its first: by as much as "The next …".
    const next = lines.find((l) => l.trimStart().startsWith("The next pulumi up")) ?? "";
    const indent = next.length - next.trimStart().length;
    const own = lines.map((l, i) => (i === 0 ? l : l.slice(indent)));
    const end = own.findIndex((l, i) => i > 0 && !/^( {2}|Hint|The )/.test(l));
    return end < 0 ? own : own.slice(0, end);
  };
  /** This run's figures, each listener's report as it wrote it. */
  const measured = async () => {
    const cm = await lab.cp?.api.get<{ data: Record<string, string> }>(
      `/api/v1/namespaces/${NS}/configmaps/rosfleet-delivery`,
    );
    return reportsOf(cm?.data);
  };
  const crosses = (t: string, l: string, node: string) => (t === node) !== (l === node);

  it("5 % loss on the robot's link: its pairs measure it, the others do not, a lower limit fails up naming them", async () => {
    const robot = "cluster-robot";
    lab.nodes?.impair(robot, { lossPercent: 5 });
    try {
      await stack.setAllConfig(
        lab.config("discovery-server", 60, { maxLossPercent: 1, largeMessageBytes: 0 }),
      );
      const { text, seconds } = await failingUp("up passed a lossy link with a 1 % limit");
      const verdict = verdictOf(text);
      console.log(`    after ${seconds.toFixed(0)} s:\n    ${verdict.join("\n    ")}`);
      const reports = await measured();
      const named = verdict.filter((l) => l.includes("% of messages lost"));
      for (const l of NODES)
        for (const t of NODES) {
          const f = reports.get(l)?.pairs.get(t);
          assert.ok(f?.heard === true, `${t} -> ${l} heard`);
          const loss = lossPercent(f) ?? -1;
          const line = `  - ${t} -> ${l}: ${loss} % of messages lost (limit 1 %)`;
          if (crosses(t, l, robot)) {
            assert.ok(loss > 1 && loss <= 12, `${t} -> ${l}: ${loss} % lost, 5 % injected`);
            assert.ok(named.includes(line), `${line} in\n${verdict.join("\n")}`);
          } else assert.ok(loss <= 1, `${t} -> ${l}: ${loss} % lost on a clean path`);
        }
      assert.equal(named.length, 4, verdict.join("\n"));
      assert.ok(verdict.some((l) => /^Hint \(loss\): .*Wi-Fi/.test(l)));
      assert.doesNotMatch(text, /no ROS 2 message from/);
    } finally {
      lab.nodes?.restore(robot);
    }
  });

  it("a slow link (512 kbit/s for UDP): the small messages pass, the 1 MiB ones do not, and up says which", async () => {
    const robot = "cluster-robot";
    lab.nodes?.impair(robot, { rate: "512kbit" });
    try {
      await stack.setAllConfig(lab.config("discovery-server", 40));
      const { text, seconds } = await failingUp("up passed 1 MiB messages over 512 kbit/s");
      const verdict = verdictOf(text);
      console.log(`    after ${seconds.toFixed(0)} s:\n    ${verdict.join("\n    ")}`);
      const problems = verdict.filter((l) => l.startsWith("  - "));
      const expected = NODES.flatMap((l) =>
        NODES.filter((t) => crosses(t, l, robot)).map((t) => `${t} -> ${l}`),
      );
      assert.deepEqual(
        problems
          .map(
            (l) =>
              /^ {2}- (\S+ -> \S+): [0-2] of 3 messages of 1 MiB arrived within the check$/.exec(
                l,
              )?.[1],
          )
          .sort(),
        expected.sort(),
        verdict.join("\n"),
      );
      assert.ok(verdict.some((l) => l.startsWith("Hint (large message): ")));
      // Every pair was heard: the small messages crossed the slow link.
      const reports = await measured();
      for (const l of NODES)
        for (const t of NODES)
          assert.equal(reports.get(l)?.pairs.get(t)?.heard, true, `${t} -> ${l}`);
    } finally {
      lab.nodes?.restore(robot);
    }
  });

  it("multicast: up fails naming exactly the cross-node pairs, while each node hears itself", async () => {
    await stack.setAllConfig(lab.config("multicast", 30));
    const err = await stack.up({ color: "never" }).then(
      () => assert.fail("up passed with multicast discovery across nodes"),
      (e: unknown) => e as Error,
    );
    const named = [...err.message.matchAll(/no ROS 2 message from (\S+) reached (\S+)/g)].map(
      (m) => `${m[1]}->${m[2]}`,
    );
    const cross = NODES.flatMap((l) => NODES.filter((t) => t !== l).map((t) => `${t}->${l}`));
    assert.deepEqual([...new Set(named)].sort(), cross.sort(), err.message);
    assert.doesNotMatch(err.message, /reported nothing/);
    // The verdict as `pulumi up` shows it (the engine repeats it in its summary).
    const verdict = err.message.slice(err.message.lastIndexOf("ROS 2 delivery check failed"));
    const end = verdict.indexOf("\n", verdict.indexOf("The next pulumi up"));
    console.log(`    ${verdict.slice(0, end).replace(/\n/g, "\n    ")}`);
    // The pods' side of a node does not pass multicast on to other nodes (nothing routes it).
    const [laptop, robot] = lab.nodes?.nodes ?? [];
    assert.equal(
      await lab.nodes?.multicastReaches({ netns: laptop.netns, ip: podGateway(laptop) }, robot),
      false,
    );
    // Within a node multicast works: every check heard its own node's beacon, and only it.
    const reports = await lab.cp?.api.get<{ data: Record<string, string> }>(
      `/api/v1/namespaces/${NS}/configmaps/rosfleet-delivery`,
    );
    for (const node of NODES) {
      const report = parseReport(reports?.data[node] ?? "");
      assert.ok(report !== undefined, `${node}: ${reports?.data[node]}`);
      const heard = [...report.pairs].filter(([, f]) => f.heard).map(([t]) => t);
      assert.deepEqual(heard, [node], node);
    }
    assert.doesNotMatch(err.message, new RegExp(`no ROS 2 message from (\\S+) reached \\1\\b`));
  });

  it("host-network: the nodes' shared segment carries multicast, so up passes", async () => {
    await stack.setAllConfig(lab.config("host-network"));
    const result = await stack.up({ color: "never" });
    const delivery = result.outputs.delivery?.value as DeliveryOutput;
    assert.equal(delivery.pairs.length, NODES.length ** 2);
    assert.deepEqual(
      delivery.pairs.filter((d) => !d.received || d.problems.length > 0),
      [],
    );
    assert.equal(delivery.measuredWith.mode, "host-network");
  });

  it("an image the nodes cannot pull fails up within a minute, with the node's own error and the key", async () => {
    // A digest the registry does not have: the laptop's manifest check cannot read it (a
    // warning), and each node's containerd is told "not found".
    const missing = `${lab.world?.repository ?? ""}@sha256:${"0".repeat(64)}`;
    const config = lab.config("discovery-server");
    config["rosfleet:image"] = {
      value: JSON.stringify({ build: false, repository: missing }),
    };
    await stack.setAllConfig(config);
    const started = Date.now();
    const err = await stack.up({ color: "never" }).then(
      () => assert.fail("up passed with an image no node can pull"),
      (e: unknown) => e as Error,
    );
    const seconds = (Date.now() - started) / 1000;
    assert.match(err.message, /the nodes cannot pull the ros_demo image /);
    for (const node of NODES)
      assert.match(
        err.message,
        new RegExp(`  - ${node}: (ErrImagePull|ImagePullBackOff): .*not found`),
        node,
      );
    assert.match(err.message, /Fix image\.repository/);
    assert.ok(seconds < 90, `failed after ${seconds.toFixed(0)} s`);
    console.log(`    a pull that cannot work failed up after ${seconds.toFixed(0)} s`);
    // Nothing of the probe is left, and the ROS pods were not touched.
    assert.deepEqual(await pods("rosfleet-pull"), []);
  });

  it("destroy leaves nothing of rosfleet in the cluster", async () => {
    const objects = await stateObjects(stack);
    assert.ok(objects.length > 10, `the lab's objects are in state (${objects.length})`);
    await stack.destroy();
    assert.deepEqual(await leftInCluster(objects, (url) => lab.cp?.api.request("GET", url)), []);
    assert.deepEqual(await pods("ros-talker"), []);
  });

  // Last: it starts dockerd, whose iptables rules the tests above need not live with.
  describe("the dev stack's image: built by Docker, imported into the node's containerd", () => {
    let imports: DockerImport;
    let ref = "";
    const POD = "imported-talker";

    before(async function () {
      const node = lab.nodes?.nodes.find((n) => n.name === "cluster-laptop");
      if (node === undefined || lab.world?.mirror === undefined)
        throw new Error("the cluster is not up");
      imports = new DockerImport(lab.dir, BIN, node);
      await imports.start(materials(), lab.world.mirror.address, "jazzy");
    });

    after(async function () {
      if (this.currentTest?.state === "failed") console.error(imports?.logs());
      lab.kubectl(["delete", "pod", POD, "--ignore-not-found", "--wait=false"]);
      await imports?.stop();
    });

    it("import.sh prints the digest name, which the node's containerd holds, pinned, beside the tag", () => {
      const first = imports.run("create", "jazzy");
      assert.equal(first.status, 0, first.stderr.slice(-3000));
      const lines = first.stdout.trim().split("\n");
      assert.equal(lines.length, 1, `one line on stdout: ${first.stdout}`);
      ref = lines[0];
      assert.match(ref, /^rosfleet\.invalid\/ros_demo@sha256:[0-9a-f]{64}$/);
      const images = imports.images();
      for (const name of [ref, "rosfleet.invalid/ros_demo:jazzy"])
        assert.match(images.get(name) ?? "(absent)", /io\.cri-containerd\.pinned=pinned/, name);
    });

    it("a pod by that reference starts from it without a pull, and runs the demo talker", async () => {
      assert.notEqual(ref, "", "the import ran");
      // With the ROS pods' resources: a pod without any (BestEffort) is killed at start on this
      // tier's nodes, whatever its image.
      const created = await lab.cp?.api.request("POST", "/api/v1/namespaces/default/pods", {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: POD },
        spec: {
          nodeName: "cluster-laptop",
          restartPolicy: "Never",
          containers: [
            {
              name: "talker",
              image: ref,
              args: ["ros2", "run", "demo_nodes_cpp", "talker"],
              resources: ROS_RESOURCES,
            },
          ],
        },
      });
      assert.equal(created?.status, 201, JSON.stringify(created));
      await within("the imported talker publishes", 120, () =>
        Promise.resolve(/Publishing: .Hello World: 1/.test(lab.kubectl(["logs", POD]).stdout)),
      );
      const events = lab.kubectl([
        "get",
        "events",
        "--field-selector",
        `involvedObject.name=${POD}`,
        "-o",
        'jsonpath={range .items[*]}{.reason}: {.message}{"\\n"}{end}',
      ]).stdout;
      assert.match(events, /Pulled: Container image ".*" already present on machine/, events);
      assert.doesNotMatch(events, /Pulling:/, events);
    });

    it("a second run imports the same digest and leaves one digest name; delete takes the names out of containerd and Docker", () => {
      const again = imports.run("create", "jazzy");
      assert.equal(again.status, 0, again.stderr.slice(-3000));
      assert.equal(again.stdout.trim(), ref);
      const ours = () =>
        [...imports.images().keys()].filter((n) => n.startsWith("rosfleet.invalid/")).sort();
      assert.deepEqual(ours(), [ref, "rosfleet.invalid/ros_demo:jazzy"].sort());
      const removed = imports.run("delete", "jazzy");
      assert.equal(removed.status, 0, removed.stderr);
      assert.deepEqual(ours(), []);
      assert.throws(() => docker(["image", "inspect", "rosfleet.invalid/ros_demo:jazzy"]));
      // Idempotent: nothing left to remove is no failure.
      assert.equal(imports.run("delete", "jazzy").status, 0);
    });
  });
});
