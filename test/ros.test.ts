import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { checkScript } from "../components/ros/check";
import { k3sCniBinDir } from "../components/ros/multus";
import {
  deliveryPairs,
  evaluateDelivery,
  expectedTalkers,
  parseReports,
} from "../components/ros/delivery";
import { ProgramRun, Registration, runProgram } from "./helpers/program";
import { readStackConfig } from "./helpers/stack";

const POD = "kubernetes:core/v1:Pod";
const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
const SERVICE = "kubernetes:core/v1:Service";
const DAEMONSET = "kubernetes:apps/v1:DaemonSet";
const JOB = "kubernetes:batch/v1:Job";
const REMOTE = "command:remote:Command";

type Obj = Record<string, unknown>;
const o = (v: unknown): Obj => v as Obj;
/** The pod spec of a Pod, Deployment, DaemonSet or Job registration. */
function podSpec(r: Registration): Obj {
  const spec = o(r.inputs["spec"]);
  return r.type === POD ? spec : o(o(spec["template"])["spec"]);
}
const containers = (r: Registration): Obj[] => podSpec(r)["containers"] as Obj[];
const env = (c: Obj): Record<string, string> =>
  Object.fromEntries(
    (c["env"] as Obj[])
      .filter((e) => "value" in e)
      .map((e) => [String(e["name"]), String(e["value"])]),
  );

function clover(change: (c: Obj) => void = () => undefined): Obj {
  const config = structuredClone(readStackConfig("clover"));
  change(config);
  return config;
}
const withRos = (ros: Obj) => clover((c) => (c["ros"] = { ...o(c["ros"]), ...ros }));

describe("ros: default workloads on the lab-notes stack", () => {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(clover());
  });

  it("declares the lab notes' pods and the guide's Deployments in the rosfleet namespace", () => {
    // Registration order follows the image digest's resolution: compare as sets.
    assert.deepEqual(run.names(POD).sort(), [
      "ros-demo-listener",
      "ros-demo-talker",
      "ros-demo-talkerlistener",
    ]);
    assert.deepEqual(
      run.names(DEPLOYMENT).filter((n) => /ros-(talker|listener)$/.test(n)),
      ["ros-ros-talker", "ros-ros-listener"],
    );
    for (const r of run.resources.filter(
      (x) => (x.type === POD || x.type === DEPLOYMENT) && x.name.startsWith("ros-"),
    ))
      assert.equal(o(r.inputs["metadata"])["namespace"], "rosfleet", r.name);
    assert.equal(o(run.get(DEPLOYMENT, "ros-ros-talker").inputs["spec"])["replicas"], 1);
  });

  it("pins talkerlistener to arm64 and leaves the others to the scheduler", () => {
    assert.deepEqual(podSpec(run.get(POD, "ros-demo-talkerlistener"))["nodeSelector"], {
      "kubernetes.io/arch": "arm64",
    });
    assert.equal(podSpec(run.get(POD, "ros-demo-listener"))["nodeSelector"], undefined);
  });

  it("runs one ROS node per container with args (entrypoint kept) and Pi-sized resources", () => {
    assert.deepEqual(
      containers(run.get(POD, "ros-demo-talkerlistener")).map((c) => [
        c["name"],
        c["args"],
        c["command"],
      ]),
      [
        ["listener", ["ros2", "run", "demo_nodes_cpp", "listener"], undefined],
        ["talker", ["ros2", "run", "demo_nodes_cpp", "talker"], undefined],
        ["toolbox", ["sleep", "infinity"], undefined],
      ],
    );
    assert.deepEqual(containers(run.get(POD, "ros-demo-talker"))[0]["resources"], {
      requests: { cpu: "50m", memory: "64Mi" },
      limits: { cpu: "500m", memory: "256Mi" },
    });
  });

  it("gives every ROS container the image by digest", () => {
    const image = String(run.outputs["image"]);
    assert.match(image, /@sha256:[0-9a-f]{64}$/);
    const ros = run.resources.filter(
      (r) => [POD, DEPLOYMENT, DAEMONSET, JOB].includes(r.type) && r.name !== "dashboard-headlamp",
    );
    assert.ok(ros.length >= 9);
    for (const r of ros)
      for (const c of containers(r))
        assert.equal(c["image"], image, `${r.name}/${String(c["name"])}`);
  });

  it("uses the discovery server: env on every container, super client for the CLI only", () => {
    for (const r of run.resources.filter((x) => x.type === POD))
      for (const c of containers(r))
        assert.deepEqual(env(c), {
          ROS_DOMAIN_ID: "0",
          ROS_DISCOVERY_SERVER: "ros-discovery.rosfleet.svc.cluster.local:11811",
          FASTDDS_BUILTIN_TRANSPORTS: "UDPv4",
          ...(c["name"] === "toolbox" ? { ROS_SUPER_CLIENT: "TRUE" } : {}),
        });
  });

  it("creates the discovery server and its UDP Service before any workload", () => {
    const service = run.get(SERVICE, "ros-discovery");
    assert.deepEqual(o(service.inputs["spec"])["ports"], [
      { name: "discovery", port: 11811, targetPort: 11811, protocol: "UDP" },
    ]);
    const server = run.get(DEPLOYMENT, "ros-discovery-server");
    assert.deepEqual(containers(server)[0]["args"], [
      "fastdds",
      "discovery",
      "-i",
      "0",
      "-l",
      "0.0.0.0",
      "-p",
      "11811",
    ]);
    for (const name of ["ros-demo-listener", "ros-demo-talker"]) {
      assert.ok(run.dependsOn(run.get(POD, name), service), name);
      assert.ok(run.dependsOn(run.get(POD, name), server), name);
    }
  });
});

describe("ros: discovery modes and scaling", () => {
  it("host-network: host networking, cluster DNS, UDPv4, no discovery server", async () => {
    const run = await runProgram(withRos({ discovery: "host-network", domainId: 42 }));
    const spec = podSpec(run.get(POD, "ros-demo-listener"));
    assert.equal(spec["hostNetwork"], true);
    assert.equal(spec["dnsPolicy"], "ClusterFirstWithHostNet");
    assert.deepEqual(env(containers(run.get(POD, "ros-demo-listener"))[0]), {
      ROS_DOMAIN_ID: "42",
      FASTDDS_BUILTIN_TRANSPORTS: "UDPv4",
    });
    assert.deepEqual(
      run.names(SERVICE).filter((n) => n.startsWith("ros-")),
      [],
    );
  });

  it("multicast: plain pods with only ROS_DOMAIN_ID (the negative control)", async () => {
    const run = await runProgram(withRos({ discovery: "multicast", domainId: 7 }));
    const spec = podSpec(run.get(POD, "ros-demo-talker"));
    assert.equal(spec["hostNetwork"], undefined);
    assert.deepEqual(env(containers(run.get(POD, "ros-demo-talker"))[0]), { ROS_DOMAIN_ID: "7" });
  });

  it("multus: installs Multus + whereabouts for k3s, attaches pods to a macvlan on the common NIC", async () => {
    const run = await runProgram(
      withRos({ discovery: "multus", multus: { interface: "eth0", range: "192.168.1.200/28" } }),
    );
    const CR = "kubernetes:helm.cattle.io/v1:HelmChart";
    const NAD = "kubernetes:k8s.cni.cncf.io/v1:NetworkAttachmentDefinition";
    const chart = run.get(CR, "ros-multus");
    const spec = o(chart.inputs["spec"]);
    assert.equal(spec["chart"], "rke2-multus");
    assert.equal(spec["version"], "v4.2.401");
    assert.match(String(spec["valuesContent"]), /binDir: \/var\/lib\/rancher\/k3s\/data\/cni\//);
    assert.match(
      String(spec["valuesContent"]),
      /rke2-whereabouts:\n {2}fullnameOverride: whereabouts\n {2}enabled: true/,
    );
    const nad = run.get(NAD, "ros-macvlan");
    assert.deepEqual(JSON.parse(String(o(nad.inputs["spec"])["config"])), {
      cniVersion: "0.3.1",
      type: "macvlan",
      master: "eth0",
      mode: "bridge",
      ipam: { type: "whereabouts", range: "192.168.1.200/28" },
    });
    assert.ok(run.dependsOn(nad, chart));
    const pod = run.get(POD, "ros-demo-listener");
    assert.deepEqual(o(pod.inputs["metadata"])["annotations"], {
      "k8s.v1.cni.cncf.io/networks": "ros-macvlan",
    });
    assert.ok(run.dependsOn(pod, nad));
    assert.match(
      String(run.get(REMOTE, "clover1-preflight").inputs["stdin"]),
      /^MULTUS_NIC='eth0'$/m,
    );
  });

  it("multus with install: false uses the cluster's Multus", async () => {
    const run = await runProgram(
      withRos({ discovery: "multus", multus: { range: "192.168.1.200/28", install: false } }),
    );
    assert.deepEqual(run.names("kubernetes:helm.cattle.io/v1:HelmChart"), []);
    assert.deepEqual(run.names("kubernetes:k8s.cni.cncf.io/v1:NetworkAttachmentDefinition"), [
      "ros-macvlan",
    ]);
  });

  it("scales a Deployment by its replicas and pins a workload to a node", async () => {
    const run = await runProgram(
      withRos({
        workloads: [
          { name: "talkers", kind: "deployment", replicas: 10, lang: "py", containers: ["talker"] },
          { name: "pi-listener", node: "clover1", containers: ["listener"] },
        ],
      }),
    );
    const talkers = run.get(DEPLOYMENT, "ros-talkers");
    assert.equal(o(talkers.inputs["spec"])["replicas"], 10);
    assert.deepEqual(containers(talkers)[0]["args"], ["ros2", "run", "demo_nodes_py", "talker"]);
    assert.deepEqual(podSpec(run.get(POD, "ros-pi-listener"))["nodeSelector"], {
      "kubernetes.io/hostname": "clover1",
    });
  });
});

describe("ros: the delivery check", () => {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(clover((c) => ((c["machines"] as Obj[])[2]["cordon"] = true)));
  });

  it("pins one check Job to each schedulable node, listening for the others' beacons", () => {
    assert.deepEqual(run.names(JOB), ["delivery-laptop", "delivery-clover1"]);
    const job = run.get(JOB, "delivery-clover1");
    assert.equal(o(job.inputs["metadata"])["name"], "delivery-check-clover1");
    assert.deepEqual(podSpec(job)["nodeSelector"], { "kubernetes.io/hostname": "clover1" });
    const script = String((containers(job)[0]["args"] as string[])[2]);
    assert.match(script, /EXPECTED='laptop'/);
    assert.equal(env(containers(job)[0])["ROS_SUPER_CLIENT"], "TRUE");
  });

  it("runs a beacon talker on each checked node, after the workloads", () => {
    const beacons = run.get(DAEMONSET, "delivery-beacons");
    const affinity = o(
      o(o(podSpec(beacons)["affinity"])["nodeAffinity"])[
        "requiredDuringSchedulingIgnoredDuringExecution"
      ],
    );
    assert.deepEqual(affinity["nodeSelectorTerms"], [
      {
        matchExpressions: [
          { key: "kubernetes.io/hostname", operator: "In", values: ["laptop", "clover1"] },
        ],
      },
    ]);
    assert.deepEqual((containers(beacons)[0]["args"] as string[]).slice(-1), [
      "{data: 'rosfleet-beacon from $(NODE_NAME)'}",
    ]);
    assert.ok(run.dependsOn(beacons, run.get(POD, "ros-demo-talkerlistener")));
    assert.ok(run.dependsOn(run.get(JOB, "delivery-laptop"), beacons));
  });

  it("reads the reports on the server after the Jobs and exports every pair", () => {
    const report = run.get(REMOTE, "delivery-report");
    assert.equal(String(o(report.inputs["connection"])["host"]), "192.168.1.21");
    assert.ok(run.dependsOn(report, run.get(JOB, "delivery-clover1")));
    assert.equal((report.inputs["triggers"] as unknown[]).length, 2);
    assert.deepEqual(run.outputs["delivery"], [
      { talker: "clover1", listener: "laptop", received: true },
      { talker: "laptop", listener: "clover1", received: true },
    ]);
  });

  it("fails the update naming the pairs that did not hear each other and the mode", async () => {
    const failed = await runProgram(withRos({ discovery: "multicast" }), {
      deafPairs: ["laptop->clover1", "vm1->clover1"],
    });
    const error = failed.outputErrors["delivery"];
    assert.ok(error instanceof Error);
    // The SDK prefixes errors raised while exporting an output with the property it was in.
    assert.equal(
      error.message.replace(/^error serializing property "\w+": /, ""),
      [
        "ROS 2 delivery check failed with ros.discovery = multicast: 2 of 6 node pairs did not hear each other:",
        "  - no /chatter from laptop reached clover1",
        "  - no /chatter from vm1 reached clover1",
        "Hint: multicast is the negative control: flannel does not carry multicast between nodes; use discovery-server.",
      ].join("\n"),
    );
  });

  it("checks a one-node lab within the node", async () => {
    const dev = await runProgram(readStackConfig("dev"));
    assert.deepEqual(dev.names(JOB), ["delivery-devbox"]);
    assert.deepEqual(dev.outputs["delivery"], [
      { talker: "devbox", listener: "devbox", received: true },
    ]);
  });

  it("is left out when deliveryCheck.enabled is false", async () => {
    const off = await runProgram({ ...clover(), deliveryCheck: { enabled: false } });
    assert.deepEqual(off.names(JOB), []);
    assert.equal(off.outputs["delivery"], undefined);
  });
});

describe("ros: k3s's CNI plugin directory", () => {
  it("is the fixed data/cni from the October 2024 releases on, else the release bundle", () => {
    for (const v of [
      "v1.33.5+k3s1",
      "v1.31.2+k3s1",
      "v1.30.6+k3s1",
      "v1.29.10+k3s1",
      "v1.28.15+k3s1",
    ])
      assert.equal(k3sCniBinDir(v), "/var/lib/rancher/k3s/data/cni/", v);
    for (const v of ["v1.31.1+k3s1", "v1.30.5+k3s1", "v1.28.14+k3s1", "v1.27.16+k3s1"])
      assert.equal(k3sCniBinDir(v), "/var/lib/rancher/k3s/data/current/bin/", v);
  });
});

describe("ros: the delivery decision", () => {
  it("pairs every node with every other, or a lone node with itself", () => {
    assert.deepEqual(deliveryPairs(["a", "b", "c"]), [
      { talker: "b", listener: "a" },
      { talker: "c", listener: "a" },
      { talker: "a", listener: "b" },
      { talker: "c", listener: "b" },
      { talker: "a", listener: "c" },
      { talker: "b", listener: "c" },
    ]);
    assert.deepEqual(deliveryPairs(["solo"]), [{ talker: "solo", listener: "solo" }]);
    assert.deepEqual(expectedTalkers(deliveryPairs(["a", "b", "c"]), "b"), ["a", "c"]);
  });

  it("parses report lines and ignores everything else", () => {
    const reports = parseReports(
      "ROSFLEET_DELIVERY listener=a heard=b,c\nnoise\nno report from delivery-check-c\nROSFLEET_DELIVERY listener=b heard=\n",
    );
    assert.deepEqual(
      [...reports.entries()].map(([k, v]) => [k, [...v]]),
      [
        ["a", ["b", "c"]],
        ["b", []],
      ],
    );
  });

  it("passes when every pair arrived, and says so", () => {
    const verdict = evaluateDelivery(
      ["a", "b"],
      parseReports("ROSFLEET_DELIVERY listener=a heard=b\nROSFLEET_DELIVERY listener=b heard=a"),
      "discovery-server",
    );
    assert.equal(verdict.ok, true);
    assert.equal(
      verdict.message,
      "/chatter crossed nodes in all 2 directions with ros.discovery = discovery-server",
    );
  });

  it("says a one-node lab was checked within its node only", () => {
    const verdict = evaluateDelivery(
      ["solo"],
      parseReports("ROSFLEET_DELIVERY listener=solo heard=solo"),
      "host-network",
    );
    assert.equal(verdict.ok, true);
    assert.equal(
      verdict.message,
      "one-node lab: /chatter checked within solo only (no other node to cross to), ros.discovery = host-network",
    );
  });

  it("fails a pair whose listener heard only its own node, and names a silent check", () => {
    const verdict = evaluateDelivery(
      ["a", "b", "c"],
      parseReports(
        "ROSFLEET_DELIVERY listener=a heard=a,b,c\nROSFLEET_DELIVERY listener=b heard=b",
      ),
      "discovery-server",
    );
    assert.equal(verdict.ok, false);
    assert.deepEqual(
      verdict.results.filter((r) => !r.received).map((r) => `${r.talker}->${r.listener}`),
      ["a->b", "c->b", "a->c", "b->c"],
    );
    assert.equal(
      verdict.message,
      [
        "ROS 2 delivery check failed with ros.discovery = discovery-server: 4 of 6 node pairs did not hear each other:",
        "  - no /chatter from a reached b",
        "  - no /chatter from c reached b",
        "  - no /chatter from a reached c",
        "  - no /chatter from b reached c",
        "  (the check on c reported nothing: kubectl -n rosfleet logs job/delivery-check-c)",
        "Hint: check the discovery server (kubectl -n rosfleet logs deploy/ros-discovery) and that flannel's 8472/udp is open between the nodes.",
      ].join("\n"),
    );
  });
});

describe("ros: the check script (run by bash, ros2 faked)", () => {
  // test/fakes/ros2 stands for `ros2 topic echo`: it prints the messages of $FAKE_STATE/chatter.
  function check(messages: string[], expected: string[]): { stdout: string; calls: string[] } {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-check-"));
    fs.writeFileSync(path.join(state, "chatter"), messages.map((m) => `${m}\n`).join(""));
    fs.writeFileSync(path.join(state, "calls.log"), "");
    const r = spawnSync("bash", ["-c", checkScript("laptop", expected, 30)], {
      encoding: "utf8",
      env: {
        PATH: `${path.join(__dirname, "fakes")}:${process.env["PATH"] ?? ""}`,
        FAKE_STATE: state,
        FAKE_LOG: path.join(state, "calls.log"),
        HOME: state,
      },
    });
    assert.equal(r.status, 0, r.stderr);
    return {
      stdout: r.stdout,
      calls: fs.readFileSync(path.join(state, "calls.log"), "utf8").split("\n").filter(Boolean),
    };
  }

  it("reports the beacons it heard, ignoring the demo talkers' chatter", () => {
    const { stdout, calls } = check(
      [
        "Hello World: 1",
        "rosfleet-beacon from clover1",
        "rosfleet-beacon from clover1",
        "rosfleet-beacon from vm1",
      ],
      ["clover1", "vm1"],
    );
    assert.equal(stdout, "ROSFLEET_DELIVERY listener=laptop heard=clover1,vm1\n");
    assert.ok(calls.includes("ros2 topic echo /chatter std_msgs/msg/String"));
    // Humble's echo has no --timeout: the machine's own timeout bounds it.
    assert.match(
      checkScript("laptop", ["vm1"], 30),
      /timeout "\$TIMEOUT_SECONDS" ros2 topic echo /,
    );
  });

  it("stops listening once every expected talker was heard", () => {
    const { stdout } = check(
      ["rosfleet-beacon from clover1", "rosfleet-beacon from vm1"],
      ["clover1"],
    );
    assert.equal(stdout, "ROSFLEET_DELIVERY listener=laptop heard=clover1\n");
  });

  it("reports what it heard when the timeout strikes first, and still exits 0", () => {
    const { stdout } = check(["Hello World: 1"], ["clover1"]);
    assert.equal(stdout, "ROSFLEET_DELIVERY listener=laptop heard=\n");
  });
});
