import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { DeliveryOutput } from "../components/ros/check-spec";
import { k3sCniBinDir } from "../components/ros/multus";
import { MULTUS_CRD_HINT, MULTUS_READY_SCRIPT } from "../components/ros/multus-stage";
import { pythonJob } from "../components/ros/render";
import { FakeApi, fakeApiForSuite, serviceAccountDir } from "./helpers/apiserver";
import { run } from "./helpers/run";
import { CHECK_WAIT, ProgramRun, fakeClusterIp, Registration, runProgram } from "./helpers/program";
import { NO_LOG_FILE } from "../components/ros/render";
import { notReady } from "../components/common/nodes";
import { notReadyFailure, pullFailure, pullState } from "../components/ros/pull";
import { readStackConfig } from "./helpers/stack";

const POD = "kubernetes:core/v1:Pod";
const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
const SERVICE = "kubernetes:core/v1:Service";
const DAEMONSET = "kubernetes:apps/v1:DaemonSet";
const JOB = "kubernetes:batch/v1:Job";
const REMOTE = "command:remote:Command";
const CONFIGMAP = "kubernetes:core/v1:ConfigMap";
const ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role";
const ROLEBINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding";
const SERVICEACCOUNT = "kubernetes:core/v1:ServiceAccount";

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

/** Every ROS container: its home and logs in the one writable directory. */
const SCRATCH_ENV = { HOME: "/tmp", ROS_LOG_DIR: "/tmp/ros-log" };

describe("ros: the pull probe", () => {
  const PROBE = "pulumi-nodejs:dynamic/ros:PullProbe";
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(clover());
  });

  it("pulls the image on every schedulable node before any ROS pod is declared", () => {
    const probe = run.get(PROBE, "ros-pull");
    assert.deepEqual(probe.inputs["nodes"], ["laptop", "clover1", "vm1"]);
    assert.equal(
      probe.inputs["image"],
      o(containers(run.get(DEPLOYMENT, "ros-ros-talker"))[0])["image"],
    );
    assert.ok(probe.secretInputs.includes("access"), "the API credentials are a secret");
    const rosPods = run.resources.filter(
      (x) => [DEPLOYMENT, POD, DAEMONSET, JOB].includes(x.type) && !x.name.startsWith("dashboard-"),
    );
    assert.ok(rosPods.length >= 5);
    for (const r of rosPods) assert.ok(run.dependsOn(r, probe), r.name);
  });

  it("comes first in every mode, also without discovery servers to wait for", async () => {
    const plain = await runProgram(withRos({ discovery: "multicast" }));
    const probe = plain.get(PROBE, "ros-pull");
    for (const w of ["ros-ros-talker", "ros-ros-listener"])
      assert.ok(plain.dependsOn(plain.get(DEPLOYMENT, w), probe), w);
  });

  it("probes with the ROS pods' account (the pull login) and their security", () => {
    const spec = o(run.get(PROBE, "ros-pull").inputs["podSpec"]);
    assert.equal(spec["serviceAccountName"], "rosfleet-ros");
    assert.equal(spec["automountServiceAccountToken"], false);
    assert.equal(o(spec["securityContext"])["runAsNonRoot"], true);
    const [pull] = spec["containers"] as Obj[];
    assert.deepEqual(pull["args"], ["true"]);
    assert.deepEqual(o(pull["securityContext"])["capabilities"], { drop: ["ALL"] });
  });

  it("tells a node that cannot run pods (not Ready, not there) and says so for each, with the ways out", () => {
    const ready = (status: string, reason?: string, message?: string) => ({
      status: { conditions: [{ type: "Ready", status, reason, message }] },
    });
    assert.equal(notReady(ready("True")), undefined);
    assert.equal(
      notReady(ready("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")),
      "not Ready (NodeStatusUnknown: Kubelet stopped posting node status.)",
    );
    assert.equal(notReady({ status: {} }), "not Ready (no Ready condition yet)");
    assert.equal(notReady(undefined), "not in the cluster");
    const text = notReadyFailure({ clover1: "not in the cluster" });
    assert.match(text, /^ {2}- clover1: not in the cluster$/m);
    assert.match(text, /set cordon: true on it in machines/);
  });

  it("reads a probe pod's state as the kubelet reports it, and names every node that failed", () => {
    const at = (state: Record<string, unknown>) => ({ status: { containerStatuses: [{ state }] } });
    assert.deepEqual(pullState(at({ running: {} })), { pulled: true });
    assert.deepEqual(pullState(at({ terminated: { exitCode: 0 } })), { pulled: true });
    assert.equal(pullState(at({ waiting: { reason: "ContainerCreating" } })), undefined);
    assert.equal(pullState({ status: {} }), undefined);
    assert.deepEqual(pullState(at({ waiting: { reason: "ErrImagePull", message: "not found" } })), {
      failed: "ErrImagePull: not found",
    });
    assert.equal(
      pullFailure("r/ros_demo@sha256:00", { clover1: "ErrImagePull: not found" }).split("\n")[1],
      "  - clover1: ErrImagePull: not found",
    );
    assert.match(
      pullFailure("r/ros_demo@sha256:00", { clover1: "ErrImagePull: not found" }),
      /\nFix image\.repository/,
    );
    // The dev stack's imported image: no registry to fix, the import to run again.
    const imported = pullFailure(`rosfleet.invalid/ros_demo@sha256:${"0".repeat(64)}`, {
      devbox: "ErrImagePull: dial tcp: lookup rosfleet.invalid: no such host",
    });
    assert.match(imported, /\nThe image was built on this machine and imported into its k3s/);
    assert.match(imported, /pulumi up --replace with the URN of the ros-demo-import step/);
    assert.doesNotMatch(imported, /Fix image\.repository/);
  });
});

describe("ros: Pod Security of the lab's namespace", () => {
  const NAMESPACE = "kubernetes:core/v1:Namespace";
  const labels = (run: ProgramRun) =>
    o(o(run.get(NAMESPACE, "ros-namespace").inputs["metadata"])["labels"]);

  it("enforces restricted, the level every ROS pod of the default modes passes", async () => {
    for (const discovery of ["discovery-server", "multus", "multicast"]) {
      const run = await runProgram(
        withRos(
          discovery === "multus"
            ? { discovery, multus: { range: "192.168.1.192/27" } }
            : { discovery },
        ),
      );
      assert.deepEqual(
        labels(run),
        {
          "pod-security.kubernetes.io/enforce": "restricted",
          "pod-security.kubernetes.io/enforce-version": "latest",
          "pod-security.kubernetes.io/warn": "restricted",
          "pod-security.kubernetes.io/warn-version": "latest",
          "pod-security.kubernetes.io/audit": "restricted",
          "pod-security.kubernetes.io/audit-version": "latest",
        },
        discovery,
      );
    }
  });

  it("enforces privileged only for host-network, whose pods are beyond baseline", async () => {
    const run = await runProgram(withRos({ discovery: "host-network" }));
    assert.equal(labels(run)["pod-security.kubernetes.io/enforce"], "privileged");
    assert.ok(
      run.resources
        .filter((r) => r.type === DEPLOYMENT)
        .some((r) => podSpec(r)["hostNetwork"] === true),
    );
  });
});

describe("ros: default workloads on the lab-notes stack", () => {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(clover());
  });

  it("declares the lab notes' pods and the guide's Deployments in the rosfleet namespace", () => {
    // Registration order follows the image digest's resolution: compare as sets.
    // The lab notes' three pods are one-replica Deployments: a drain or an eviction cannot lose
    // them for good (a bare Pod is not recreated, and up does not refresh to see it gone).
    assert.deepEqual(run.names(POD), []);
    assert.deepEqual(
      run
        .names(DEPLOYMENT)
        .filter((n) => /^ros-(demo|ros)-/.test(n))
        .sort(),
      [
        "ros-demo-listener",
        "ros-demo-talker",
        "ros-demo-talkerlistener",
        "ros-ros-listener",
        "ros-ros-talker",
      ],
    );
    for (const name of ["ros-demo-listener", "ros-demo-talker", "ros-demo-talkerlistener"])
      assert.equal(o(run.get(DEPLOYMENT, name).inputs["spec"])["replicas"], 1, name);
    for (const r of run.resources.filter(
      (x) => (x.type === POD || x.type === DEPLOYMENT) && x.name.startsWith("ros-"),
    ))
      assert.equal(o(r.inputs["metadata"])["namespace"], "rosfleet", r.name);
    assert.equal(o(run.get(DEPLOYMENT, "ros-ros-talker").inputs["spec"])["replicas"], 1);
  });

  it("pins talkerlistener to arm64 and leaves the others to the scheduler", () => {
    assert.deepEqual(podSpec(run.get(DEPLOYMENT, "ros-demo-talkerlistener"))["nodeSelector"], {
      "kubernetes.io/arch": "arm64",
    });
    assert.equal(podSpec(run.get(DEPLOYMENT, "ros-demo-listener"))["nodeSelector"], undefined);
  });

  it("runs one ROS node per container with args (entrypoint kept) and Pi-sized resources", () => {
    assert.deepEqual(
      containers(run.get(DEPLOYMENT, "ros-demo-talkerlistener")).map((c) => [
        c["name"],
        c["args"],
        c["command"],
      ]),
      [
        ["listener", ["ros2", "run", "demo_nodes_cpp", "listener", ...NO_LOG_FILE], undefined],
        ["talker", ["ros2", "run", "demo_nodes_cpp", "talker", ...NO_LOG_FILE], undefined],
        ["toolbox", ["sleep", "infinity"], undefined],
      ],
    );
    assert.deepEqual(containers(run.get(DEPLOYMENT, "ros-demo-talker"))[0]["resources"], {
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

  it("uses the discovery server: env and a profile on every container, super client for the CLI only", () => {
    const demos = run.resources.filter(
      (x) => x.type === DEPLOYMENT && x.name.startsWith("ros-demo-"),
    );
    assert.equal(demos.length, 3);
    const profile = (file: string) => ({
      FASTRTPS_DEFAULT_PROFILES_FILE: `/etc/rosfleet/fastdds/${file}`,
      FASTDDS_DEFAULT_PROFILES_FILE: `/etc/rosfleet/fastdds/${file}`,
    });
    for (const r of demos) {
      assert.deepEqual(podSpec(r)["volumes"], [
        { name: "scratch", emptyDir: { sizeLimit: "64Mi" } },
        { name: "fastdds", configMap: { name: "rosfleet-fastdds" } },
      ]);
      for (const c of containers(r)) {
        // No FASTDDS_BUILTIN_TRANSPORTS, no ROS_SUPER_CLIENT: Humble's Fast DDS reads neither.
        assert.deepEqual(
          env(c),
          c["name"] === "toolbox"
            ? { ...SCRATCH_ENV, ROS_DOMAIN_ID: "0", ...profile("super-client.xml") }
            : {
                ...SCRATCH_ENV,
                ROS_DOMAIN_ID: "0",
                // By the Service's address: no DNS lookup, which Fast DDS makes once only.
                // Both servers, server 0 first.
                ROS_DISCOVERY_SERVER: `${fakeClusterIp("ros-discovery")}:11811;${fakeClusterIp("ros-discovery-1")}:11811`,
                ...profile("client.xml"),
              },
        );
        assert.deepEqual(c["volumeMounts"], [
          { name: "scratch", mountPath: "/tmp" },
          { name: "fastdds", mountPath: "/etc/rosfleet/fastdds", readOnly: true },
        ]);
      }
    }
  });

  it("gives the profiles UDPv4 as the only transport, and the super client both servers", () => {
    const cm = run.get(CONFIGMAP, "ros-fastdds");
    assert.equal(o(cm.inputs["metadata"])["name"], "rosfleet-fastdds");
    const data = cm.inputs["data"] as Record<string, string>;
    assert.deepEqual(Object.keys(data).sort(), ["client.xml", "super-client.xml"]);
    for (const xml of Object.values(data)) {
      assert.match(xml, /<type>UDPv4<\/type>/);
      assert.match(xml, /<useBuiltinTransports>false<\/useBuiltinTransports>/);
      assert.match(xml, /<participant profile_name="rosfleet" is_default_profile="true">/);
      // Well-formed: every element it opens it closes, in order.
      const stack: string[] = [];
      for (const [, close, name, self] of xml.matchAll(/<(\/?)([A-Za-z_]+)[^>]*?(\/?)>/g)) {
        if (self === "/") continue;
        if (close === "/") assert.equal(stack.pop(), name);
        else stack.push(name);
      }
      assert.deepEqual(stack, []);
    }
    assert.doesNotMatch(data["client.xml"], /SUPER_CLIENT/);
    assert.match(data["super-client.xml"], /<discoveryProtocol>SUPER_CLIENT<\/discoveryProtocol>/);
    // Server 0 and 1 by the GUID prefix `fast-discovery-server -i <id>` takes, at its address.
    for (const [id, app] of [
      ["00", "ros-discovery"],
      ["01", "ros-discovery-1"],
    ])
      assert.match(
        data["super-client.xml"],
        new RegExp(
          `<RemoteServer prefix="44\\.53\\.${id}\\.5f\\.45\\.50\\.52\\.4f\\.53\\.49\\.4d\\.41">\\s*<metatrafficUnicastLocatorList>\\s*<locator><udpv4><address>${fakeClusterIp(app).replace(/\./g, "\\.")}</address><port>11811</port>`,
        ),
      );
    // Before any ROS pod: they mount it.
    assert.ok(run.dependsOn(run.get(DEPLOYMENT, "ros-demo-listener"), cm));
  });

  it("creates two discovery servers and their UDP Services, on different nodes, before any workload", () => {
    const servers = [
      { id: "0", app: "ros-discovery", suffix: "" },
      { id: "1", app: "ros-discovery-1", suffix: "-1" },
    ];
    for (const { id, app, suffix } of servers) {
      const service = run.get(SERVICE, `ros-discovery${suffix}`);
      assert.equal(o(service.inputs["metadata"])["name"], app);
      assert.deepEqual(o(service.inputs["spec"])["ports"], [
        { name: "discovery", port: 11811, targetPort: 11811, protocol: "UDP" },
      ]);
      const server = run.get(DEPLOYMENT, `ros-discovery-server${suffix}`);
      // The server binary itself, which leaves orderly on SIGTERM (see the cluster tier).
      assert.deepEqual(containers(server)[0]["args"], [
        "fast-discovery-server",
        "-i",
        id,
        "-l",
        "0.0.0.0",
        "-p",
        "11811",
      ]);
      const anti = JSON.stringify(podSpec(server)["affinity"]);
      const other = servers.find((x) => x.app !== app)?.app ?? "";
      assert.ok(anti.includes(`"values":["${other}"]`), `${app} keeps away from ${other}`);
      for (const name of ["ros-demo-listener", "ros-demo-talker"]) {
        assert.ok(run.dependsOn(run.get(DEPLOYMENT, name), service), name);
        assert.ok(run.dependsOn(run.get(DEPLOYMENT, name), server), name);
      }
    }
  });
});

describe("ros: discovery modes and scaling", () => {
  it("host-network: host networking, cluster DNS, UDPv4, no discovery server", async () => {
    const run = await runProgram(withRos({ discovery: "host-network", domainId: 42 }));
    const spec = podSpec(run.get(DEPLOYMENT, "ros-demo-listener"));
    assert.equal(spec["hostNetwork"], true);
    assert.equal(spec["dnsPolicy"], "ClusterFirstWithHostNet");
    assert.deepEqual(env(containers(run.get(DEPLOYMENT, "ros-demo-listener"))[0]), {
      ...SCRATCH_ENV,
      ROS_DOMAIN_ID: "42",
      FASTRTPS_DEFAULT_PROFILES_FILE: "/etc/rosfleet/fastdds/client.xml",
      FASTDDS_DEFAULT_PROFILES_FILE: "/etc/rosfleet/fastdds/client.xml",
    });
    const profiles = run.get(CONFIGMAP, "ros-fastdds").inputs["data"] as Record<string, string>;
    assert.deepEqual(Object.keys(profiles), ["client.xml"]);
    assert.deepEqual(
      run.names(SERVICE).filter((n) => n.startsWith("ros-")),
      [],
    );
  });

  it("multicast: plain pods with only ROS_DOMAIN_ID (the negative control)", async () => {
    const run = await runProgram(withRos({ discovery: "multicast", domainId: 7 }));
    const spec = podSpec(run.get(DEPLOYMENT, "ros-demo-talker"));
    assert.equal(spec["hostNetwork"], undefined);
    assert.deepEqual(env(containers(run.get(DEPLOYMENT, "ros-demo-talker"))[0]), {
      ...SCRATCH_ENV,
      ROS_DOMAIN_ID: "7",
    });
  });

  it("multus: installs Multus + whereabouts for k3s, attaches pods to a macvlan on the common NIC", async () => {
    const run = await runProgram(
      {
        ...withRos({
          discovery: "multus",
          multus: { interface: "eth0", range: "192.168.1.192/27" },
        }),
        // A private image: every pod, the CRD wait's too, pulls with the login.
        registryUsername: "lab",
        registryPassword: "pw",
      },
      { secretKeys: ["registryPassword"] },
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
      ipam: { type: "whereabouts", range: "192.168.1.192/27" },
    });
    assert.ok(run.dependsOn(nad, chart));
    // The attachment waits for the chart's CRD: a Job that may read exactly that CRD.
    const crd = run.get(JOB, "ros-multus-crd");
    assert.ok(run.dependsOn(nad, crd) && run.dependsOn(crd, chart));
    const [waiter] = containers(crd);
    assert.deepEqual(
      (waiter["args"] as string[]).filter((_, i) => i !== 2),
      ["python3", "-c", "network-attachment-definitions.k8s.cni.cncf.io", "600", MULTUS_CRD_HINT],
    );
    assert.match(MULTUS_CRD_HINT, /kubectl -n kube-system logs job\/helm-install-multus/);
    assert.equal(podSpec(crd)["serviceAccountName"], "rosfleet-multus-crd");
    assert.deepEqual(
      run.get("kubernetes:core/v1:ServiceAccount", "ros-multus-crd-account").inputs[
        "imagePullSecrets"
      ],
      [{ name: "rosfleet-registry" }],
      "pulls the image as the ROS pods do",
    );
    assert.deepEqual(
      run.get("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "ros-multus-crd-role").inputs[
        "rules"
      ],
      [
        {
          apiGroups: ["apiextensions.k8s.io"],
          resources: ["customresourcedefinitions"],
          resourceNames: ["network-attachment-definitions.k8s.cni.cncf.io"],
          verbs: ["get"],
        },
      ],
    );
    const pod = run.get(DEPLOYMENT, "ros-demo-listener");
    assert.deepEqual(o(o(o(pod.inputs["spec"])["template"])["metadata"])["annotations"], {
      "k8s.v1.cni.cncf.io/networks": "ros-macvlan",
    });
    assert.ok(run.dependsOn(pod, nad));
    // Multus must be ready on every schedulable node before any workload: one Job per node
    // that needs the attachment, and every workload and check waits for all of them.
    const ready = run.resources.filter(
      (r) => r.type === JOB && r.name.startsWith("ros-multus-ready-"),
    );
    const lab = (readStackConfig("clover")["machines"] as Obj[]).filter(
      (m) => m["cordon"] !== true,
    );
    assert.deepEqual(
      ready.map((r) => String(o(podSpec(r)["nodeSelector"])["kubernetes.io/hostname"])).sort(),
      lab.map((m) => String(m["name"])).sort(),
    );
    for (const job of ready) {
      assert.deepEqual(o(o(o(job.inputs["spec"])["template"])["metadata"])["annotations"], {
        "k8s.v1.cni.cncf.io/networks": "ros-macvlan",
      });
      assert.equal(podSpec(job)["restartPolicy"], "Never", "a failed try gets a new pod");
      assert.ok(run.dependsOn(job, nad), job.name);
      for (const r of run.resources.filter((x) => [POD, DEPLOYMENT, DAEMONSET].includes(x.type)))
        if (r.name !== "dashboard-headlamp")
          assert.ok(run.dependsOn(r, job), `${r.name} after ${job.name}`);
    }
    assert.match(
      String(run.get(REMOTE, "clover1-preflight").inputs["stdin"]),
      /^MULTUS_NIC='eth0'$/m,
    );
  });

  it("multus with install: false uses the cluster's Multus", async () => {
    const run = await runProgram(
      withRos({ discovery: "multus", multus: { range: "192.168.1.192/27", install: false } }),
    );
    assert.deepEqual(run.names("kubernetes:helm.cattle.io/v1:HelmChart"), []);
    assert.deepEqual(run.names("kubernetes:k8s.cni.cncf.io/v1:NetworkAttachmentDefinition"), [
      "ros-macvlan",
    ]);
    assert.ok(!run.names(JOB).includes("ros-multus-crd"), "no chart, no CRD to wait for");
  });

  it("scales a Deployment by its replicas and pins a workload to a node; a listed workload is a Deployment unless it says pod", async () => {
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
    assert.deepEqual(containers(talkers)[0]["args"], [
      "ros2",
      "run",
      "demo_nodes_py",
      "talker",
      ...NO_LOG_FILE,
    ]);
    // No kind given: a Deployment, which a drain does not lose.
    assert.deepEqual(podSpec(run.get(DEPLOYMENT, "ros-pi-listener"))["nodeSelector"], {
      "kubernetes.io/hostname": "clover1",
    });
    assert.deepEqual(run.names(POD), []);
  });
});

describe("ros: the delivery check", () => {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(clover((c) => ((c["machines"] as Obj[])[2]["cordon"] = true)));
  });

  it("tolerates no taint, as the ROS pods do not: a node tainted against them is left out", async () => {
    for (const r of [run.get(JOB, "delivery-job"), run.get(JOB, "delivery-beacons")])
      assert.equal(podSpec(r)["tolerations"], undefined, r.name);
    const tainted = await runProgram(
      clover((c) => ((c["machines"] as Obj[])[1]["taints"] = ["robot=arm:NoSchedule"])),
    );
    const spec = o(tainted.get(JOB, "delivery-job").inputs["spec"]);
    assert.equal(spec["completions"], 2);
    assert.doesNotMatch(JSON.stringify(podSpec(tainted.get(JOB, "delivery-job"))), /clover1/);
    // PreferNoSchedule keeps no pod off.
    const preferred = await runProgram(
      clover((c) => ((c["machines"] as Obj[])[1]["taints"] = ["robot=arm:PreferNoSchedule"])),
    );
    assert.equal(o(preferred.get(JOB, "delivery-job").inputs["spec"])["completions"], 3);
  });

  it("runs one listeners' Job with a pod on each schedulable node, each measuring every node", () => {
    assert.deepEqual(run.names(JOB), ["delivery-beacons", "delivery-job"]);
    const job = run.get(JOB, "delivery-job");
    assert.equal(o(job.inputs["metadata"])["name"], "delivery-check");
    const spec = o(job.inputs["spec"]);
    assert.equal(spec["completions"], 2);
    assert.equal(spec["parallelism"], 2);
    const affinity = o(podSpec(job)["affinity"]);
    assert.deepEqual(
      o(o(affinity["nodeAffinity"])["requiredDuringSchedulingIgnoredDuringExecution"])[
        "nodeSelectorTerms"
      ],
      [
        {
          matchExpressions: [
            { key: "kubernetes.io/hostname", operator: "In", values: ["laptop", "clover1"] },
          ],
        },
      ],
    );
    // Never two of this run's check pods on one node.
    const [term] = o(affinity["podAntiAffinity"])[
      "requiredDuringSchedulingIgnoredDuringExecution"
    ] as Obj[];
    assert.equal(term["topologyKey"], "kubernetes.io/hostname");
    const runLabel = o(o(term["labelSelector"])["matchLabels"])["rosfleet.dev/check-run"];
    assert.equal(
      o(o(o(spec["template"])["metadata"])["labels"])["rosfleet.dev/check-run"],
      runLabel,
    );
    assert.equal(runLabel, env(containers(job)[0])["ROSFLEET_CHECK_RUN"]);
    assert.equal(env(containers(job)[0])["ROSFLEET_NODES"], "laptop,clover1");
    assert.equal(env(containers(job)[0])["ROSFLEET_TIMEOUT"], "120");
    assert.equal(env(containers(job)[0])["ROSFLEET_LARGE_BYTES"], String(1 << 20));
    const script = String((containers(job)[0]["args"] as string[])[2]);
    assert.match(script, /python3 -c "\$PROBE_PY" listener/);
    const vars = containers(job)[0]["env"] as Obj[];
    assert.deepEqual(vars.find((v) => v["name"] === "NODE_NAME")?.["valueFrom"], {
      fieldRef: { fieldPath: "spec.nodeName" },
    });
    assert.equal(
      env(containers(job)[0])["FASTRTPS_DEFAULT_PROFILES_FILE"],
      "/etc/rosfleet/fastdds/super-client.xml",
    );
    assert.deepEqual(o(podSpec(job)["volumes"] as Obj[])[1], {
      name: "fastdds",
      configMap: { name: "rosfleet-fastdds" },
    });
  });

  it("tells each check pod its Job's uid by both the current and the pre-1.27 label", () => {
    const vars = containers(run.get(JOB, "delivery-job"))[0]["env"] as Obj[];
    const fieldOf = (name: string) =>
      o(o(vars.find((v) => v["name"] === name)?.["valueFrom"])["fieldRef"])["fieldPath"];
    assert.equal(
      fieldOf("ROSFLEET_JOB_UID"),
      "metadata.labels['batch.kubernetes.io/controller-uid']",
    );
    assert.equal(fieldOf("ROSFLEET_JOB_UID_LEGACY"), "metadata.labels['controller-uid']");
  });

  it("runs a beacon talker on each checked node, after the workloads and beside the listeners", () => {
    const beacons = run.get(JOB, "delivery-beacons");
    assert.equal(o(beacons.inputs["metadata"])["name"], "rosfleet-beacon");
    const spec = o(beacons.inputs["spec"]);
    assert.equal(spec["completions"], 2);
    // Ends with the measuring: nothing of the check stays running on the nodes.
    assert.equal(podSpec(beacons)["restartPolicy"], "Never");
    assert.deepEqual(run.names(DAEMONSET), []);
    // Anti-affinity among this run's beacons only (not against the listeners).
    const [term] = o(o(podSpec(beacons)["affinity"])["podAntiAffinity"])[
      "requiredDuringSchedulingIgnoredDuringExecution"
    ] as Obj[];
    assert.equal(
      o(o(term["labelSelector"])["matchLabels"])["app.kubernetes.io/name"],
      "rosfleet-beacon",
    );
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
    const args = containers(beacons)[0]["args"] as string[];
    assert.deepEqual([args[0], args[1], args[3]], ["python3", "-c", "beacon"]);
    assert.equal(env(containers(beacons)[0])["ROSFLEET_NODES"], "laptop,clover1");
    assert.ok(run.dependsOn(beacons, run.get(DEPLOYMENT, "ros-demo-talkerlistener")));
    // At the same time: each waits for the other.
    assert.ok(!run.dependsOn(run.get(JOB, "delivery-job"), beacons));
    assert.ok(!run.dependsOn(beacons, run.get(JOB, "delivery-job")));
  });

  it("reads the reports through the API once the listeners ended, not over SSH, and exports every pair", () => {
    assert.deepEqual(
      run.resources.filter((r) => r.type.startsWith("command:") && r.name.startsWith("delivery")),
      [],
    );
    // The last run's reports, before the Jobs (their run key); this run's come from the wait.
    const reads = run.reads.filter((r) => r.type === CONFIGMAP);
    assert.deepEqual(
      reads.map((r) => [r.name, r.id]),
      [["delivery-last", "delivery-reports-id"]],
    );
    const wait = run.get(CHECK_WAIT, "delivery-wait");
    for (const job of run.names(JOB)) assert.ok(run.dependsOn(wait, run.get(JOB, job)), job);
    assert.deepEqual(
      [wait.inputs["job"], wait.inputs["beacons"], wait.inputs["reportsConfigMap"]],
      ["delivery-check", "rosfleet-beacon", "rosfleet-delivery"],
    );
    // The Job's own uid (its reports carry it), as the API server gave it.
    assert.match(String(wait.inputs["jobUid"]), /^job-uid-[0-9a-f]{12}$/);
    assert.equal(wait.inputs["waitSeconds"], 120 + 300);
    assert.deepEqual(wait.secretInputs, ["access"]);
    const delivery = run.outputs["delivery"] as DeliveryOutput;
    assert.deepEqual(delivery.measuredWith, {
      mode: "discovery-server",
      distro: "jazzy",
      rmw: "rmw_fastrtps_cpp",
      domainId: 0,
    });
    assert.deepEqual(
      delivery.pairs.map((p) => `${p.talker}->${p.listener}`),
      ["laptop->laptop", "clover1->laptop", "laptop->clover1", "clover1->clover1"],
    );
    assert.deepEqual(delivery.pairs[1], {
      talker: "clover1",
      listener: "laptop",
      received: true,
      lossPercent: 0,
      rttP50Ms: 0.8,
      rttP99Ms: 1.6,
      ratePerSecond: 50,
      largeMessages: "3/3",
      largeMiBps: 95.2,
      problems: [],
    });
    assert.deepEqual(delivery.table.slice(0, 2), [
      "talker -> listener  received  loss  rtt p50  rtt p99  rate  1 MiB x3        verdict",
      "laptop -> laptop    yes       0 %   0.8 ms   1.6 ms   50/s  3/3 95.2 MiB/s  ok",
    ]);
  });

  it("gates the Jobs on every node taking a pod, and leaves their waiting to the check's own wait", () => {
    const gate = run.get("pulumi-nodejs:dynamic/ros:CheckGate", "delivery-gate");
    assert.deepEqual(gate.inputs["nodes"], ["laptop", "clover1"]);
    assert.equal(
      gate.inputs["run"],
      env(containers(run.get(JOB, "delivery-job"))[0])["ROSFLEET_CHECK_RUN"],
    );
    assert.deepEqual(gate.secretInputs, ["access"]);
    assert.ok(run.dependsOn(gate, run.get(DEPLOYMENT, "ros-demo-talkerlistener")));
    for (const job of run.names(JOB)) {
      const r = run.get(JOB, job);
      assert.ok(run.dependsOn(r, gate), job);
      // The provider's await ends once the Job exists; its delete is still awaited (skipAwait
      // would skip that too, and a replaced Job's successor of the same name would collide).
      assert.deepEqual(o(r.inputs["metadata"])["annotations"], {
        "pulumi.com/waitFor": "jsonpath={.metadata.uid}",
      });
      assert.equal(o(r.inputs["spec"])["activeDeadlineSeconds"], 120 + 300, job);
    }
  });

  it("shows the reports that arrived when a listener never ran, and why it did not", async () => {
    const stalled = await runProgram(
      clover((c) => ((c["machines"] as Obj[])[2]["cordon"] = true)),
      {
        silentChecks: ["clover1"],
        checkEnd: {
          outcome: "stalled: every pod of it that could run had ended, the others could not run",
          notes: {
            clover1:
              "no check pod could be scheduled there: 0/2 nodes are available: 1 node(s) had untolerated taint {lab: full}.",
          },
        },
      },
    );
    const error = stalled.outputErrors["delivery"];
    assert.ok(error instanceof Error);
    const lines = error.message.replace(/^error serializing property "\w+": /, "").split("\n");
    assert.ok(
      lines.includes(
        "  (the check on clover1 reported nothing: no check pod could be scheduled there: 0/2 nodes are available: 1 node(s) had untolerated taint {lab: full}.)",
      ),
      error.message,
    );
    assert.ok(
      lines.includes(
        "The check's Job stalled: every pod of it that could run had ended, the others could not run.",
      ),
      error.message,
    );
    // The laptop's report arrived: its figures are in the table.
    assert.ok(
      lines.some((l) => /^ {2}clover1 -> laptop +yes +0 % +0\.8 ms/.test(l)),
      error.message,
    );
  });

  it("lets the Jobs read and patch exactly the reports ConfigMap, and nothing else", () => {
    const role = run.get(ROLE, "delivery-role");
    assert.deepEqual(role.inputs["rules"], [
      {
        apiGroups: [""],
        resources: ["configmaps"],
        resourceNames: ["rosfleet-delivery"],
        verbs: ["get", "patch"],
      },
    ]);
    assert.equal(
      o(run.get(CONFIGMAP, "delivery-reports").inputs["metadata"])["name"],
      "rosfleet-delivery",
    );
    assert.equal(run.get(CONFIGMAP, "delivery-reports").inputs["data"], undefined);
    const binding = run.get(ROLEBINDING, "delivery-binding");
    assert.deepEqual(binding.inputs["roleRef"], {
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Role",
      name: "rosfleet-delivery-check",
    });
    assert.deepEqual(binding.inputs["subjects"], [
      { kind: "ServiceAccount", name: "rosfleet-delivery-check", namespace: "rosfleet" },
    ]);
    assert.equal(
      run.get(SERVICEACCOUNT, "delivery-account").inputs["automountServiceAccountToken"],
      false,
    );
    const spec = podSpec(run.get(JOB, "delivery-job"));
    assert.equal(spec["serviceAccountName"], "rosfleet-delivery-check");
    assert.equal(spec["automountServiceAccountToken"], true);
    // The beacons talk ROS only: no API token in their pods.
    const beacons = podSpec(run.get(JOB, "delivery-beacons"));
    assert.equal(beacons["automountServiceAccountToken"], false);
    assert.equal(beacons["serviceAccountName"], "rosfleet-ros");
  });

  it("keeps a passing check's Job on the next up, so it changes nothing", async () => {
    const next = await runProgram(
      clover((c) => ((c["machines"] as Obj[])[2]["cordon"] = true)),
      { lastReports: run.reports },
    );
    for (const job of run.names(JOB))
      assert.deepEqual(next.get(JOB, job).inputs, run.get(JOB, job).inputs, job);
    assert.deepEqual(next.outputs["delivery"], run.outputs["delivery"]);
  });

  it("runs the check again on the up after a failure (new run key, so new Jobs)", async () => {
    const config = withRos({ discovery: "multicast" });
    const failed = await runProgram(config, { deafPairs: ["laptop->clover1"] });
    assert.ok(failed.outputErrors["delivery"] instanceof Error);
    const retry = await runProgram(config, { lastReports: failed.reports });
    const runKey = (r: ProgramRun, job: string) =>
      env(containers(r.get(JOB, job))[0])["ROSFLEET_CHECK_RUN"];
    for (const job of failed.names(JOB))
      assert.notEqual(runKey(retry, job), runKey(failed, job), job);
    assert.equal(retry.outputErrors["delivery"], undefined);
    // And once it passed, the key stays.
    const after = await runProgram(config, { lastReports: retry.reports });
    for (const job of retry.names(JOB)) assert.equal(runKey(after, job), runKey(retry, job), job);
  });

  it("trusts no report of an earlier Job: a check that wrote nothing is named", async () => {
    // clover1's report in the ConfigMap is of this run's key but another Job (one deleted and
    // made anew by hand, say); this Job's pod on clover1 wrote none.
    const stale = {
      ...run.reports,
      clover1: run.reports["clover1"].replace(/"job":"[^"]*"/, '"job":"job-uid-of-an-earlier-job"'),
    };
    assert.notEqual(stale.clover1, run.reports["clover1"]);
    const silent = await runProgram(
      clover((c) => ((c["machines"] as Obj[])[2]["cordon"] = true)),
      { lastReports: stale, silentChecks: ["clover1"] },
    );
    const error = silent.outputErrors["delivery"];
    assert.ok(error instanceof Error);
    assert.match(error.message, /no ROS 2 message from laptop reached clover1/);
    assert.match(
      error.message,
      /the check on clover1 reported nothing; its log: kubectl -n rosfleet logs \$\(kubectl -n rosfleet get pods -l app\.kubernetes\.io\/name=delivery-check --field-selector spec\.nodeName=clover1 -o name\)/,
    );
  });

  it("fails the update naming the pairs that did not hear each other and the mode", async () => {
    const failed = await runProgram(withRos({ discovery: "multicast" }), {
      deafPairs: ["laptop->clover1", "vm1->clover1"],
    });
    const error = failed.outputErrors["delivery"];
    assert.ok(error instanceof Error);
    // The SDK prefixes errors raised while exporting an output with the property it was in.
    const lines = error.message.replace(/^error serializing property "\w+": /, "").split("\n");
    assert.deepEqual(lines.slice(0, 5), [
      "ROS 2 delivery check failed with ros.discovery = multicast: 2 of 9 node pairs failed:",
      "  - no ROS 2 message from laptop reached clover1",
      "  - no ROS 2 message from vm1 reached clover1",
      "Hint: multicast is the negative control: flannel does not carry multicast between nodes; use discovery-server.",
      "The next pulumi up runs the check again (a new check Job); nothing else needs to change.",
    ]);
    // Then the table, every pair in it.
    assert.equal(lines.length, 5 + 1 + 9);
    assert.match(lines[5], /^ {2}talker -> listener +received +loss/);
    assert.ok(lines.some((l) => /^ {2}laptop -> clover1 +no +- .*FAILED$/.test(l)));
  });

  it("fails a pair over a limit naming the pair, the figure, the limit and the likely cause", async () => {
    const failed = await runProgram(
      clover((c) => {
        (c["machines"] as Obj[])[2]["cordon"] = true;
        c["deliveryCheck"] = { maxLossPercent: 2, maxLatencyMs: 20 };
      }),
      { pairFigures: { "clover1->laptop": [1, 380, 400, 47.5, 41.2, 48.3, 1, 0.2] } },
    );
    const error = failed.outputErrors["delivery"];
    assert.ok(error instanceof Error);
    const lines = error.message.replace(/^error serializing property "\w+": /, "").split("\n");
    assert.deepEqual(lines.slice(0, 4), [
      "ROS 2 delivery check failed with ros.discovery = discovery-server: 1 of 4 node pairs failed:",
      "  - clover1 -> laptop: 5 % of messages lost (limit 2 %)",
      "  - clover1 -> laptop: round trip p99 48.3 ms (limit 20 ms)",
      "  - clover1 -> laptop: 1 of 3 messages of 1 MiB arrived within the check",
    ]);
    assert.match(lines[4], /^Hint \(loss\): .*Wi-Fi/);
    assert.match(lines[5], /^Hint \(latency\): /);
    assert.match(lines[6], /^Hint \(large message\): .*MTU/);
    // The limits are part of what the check ran with: a changed limit runs it again.
    const strict = (r: ProgramRun) =>
      env(containers(r.get(JOB, "delivery-job"))[0])["ROSFLEET_CHECK_RUN"];
    assert.notEqual(strict(failed).split("-")[0], strict(run).split("-")[0]);
  });

  it("checks a one-node lab within the node", async () => {
    const dev = await runProgram(readStackConfig("dev"));
    assert.deepEqual(dev.names(JOB), ["delivery-beacons", "delivery-job"]);
    const delivery = dev.outputs["delivery"] as DeliveryOutput;
    assert.deepEqual(
      delivery.pairs.map((p) => [p.talker, p.listener, p.received]),
      [["devbox", "devbox", true]],
    );
  });

  it("is left out when deliveryCheck.enabled is false", async () => {
    const off = await runProgram({ ...clover(), deliveryCheck: { enabled: false } });
    assert.deepEqual(off.names(JOB), []);
    assert.equal(off.outputs["delivery"], undefined);
  });
});

describe("ros: the Multus readiness probe (bash, real ip, in network namespaces)", () => {
  const ns = `rosfleet-multus-${process.pid}`;
  before(function () {
    if (process.getuid?.() !== 0) throw new Error("needs root for ip netns (CI runs as root)");
    execFileSync("ip", ["netns", "add", ns]);
  });
  after(() => {
    spawnSync("ip", ["netns", "del", ns]);
  });
  const probe = () =>
    spawnSync("ip", ["netns", "exec", ns, "bash", "-c", MULTUS_READY_SCRIPT], {
      env: { ...process.env, NODE_NAME: "clover1" },
      encoding: "utf8",
    });

  it("fails, saying why, while the pod has no net1", () => {
    const res = probe();
    assert.equal(res.status, 1);
    assert.equal(res.stderr, "clover1: no net1 yet: Multus has not configured this node\n");
  });

  it("passes once net1 is there", () => {
    // A veth end stands for the macvlan interface Multus would add (this kernel has no dummy).
    execFileSync("ip", ["-n", ns, "link", "add", "net1", "type", "veth", "peer", "name", "peer1"]);
    const res = probe();
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stdout, "clover1: net1 attached, Multus is ready\n");
  });
});

describe("ros: how every rosfleet pod runs", () => {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(clover());
  });
  const rosPods = (r: ProgramRun) =>
    r.resources.filter(
      (x) => [POD, DEPLOYMENT, DAEMONSET, JOB].includes(x.type) && x.name !== "dashboard-headlamp",
    );

  it("as a non-root user, without privilege or capabilities, on a read-only root filesystem", () => {
    const pods = rosPods(run);
    assert.ok(pods.length >= 9);
    for (const r of pods) {
      const spec = podSpec(r);
      assert.deepEqual(
        spec["securityContext"],
        {
          runAsNonRoot: true,
          runAsUser: 1000,
          runAsGroup: 1000,
          seccompProfile: { type: "RuntimeDefault" },
        },
        r.name,
      );
      // The scratch volume, and where the mode loads one, the profiles (read-only).
      assert.deepEqual(
        (spec["volumes"] as Obj[])[0],
        { name: "scratch", emptyDir: { sizeLimit: "64Mi" } },
        r.name,
      );
      for (const c of containers(r)) {
        assert.deepEqual(c["securityContext"], {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ["ALL"] },
        });
        assert.deepEqual((c["volumeMounts"] as Obj[])[0], { name: "scratch", mountPath: "/tmp" });
        for (const m of (c["volumeMounts"] as Obj[]).slice(1)) assert.equal(m["readOnly"], true);
        assert.equal(env(c)["HOME"], "/tmp", `${r.name}/${String(c["name"])}`);
      }
    }
  });

  it("as rosfleet-ros, with no API token; only the check Jobs get one, to write their report", () => {
    for (const r of rosPods(run)) {
      const spec = podSpec(r);
      // The listeners; the beacons (a Job too) talk ROS only.
      const isCheck = r.type === JOB && r.name === "delivery-job";
      assert.equal(
        spec["serviceAccountName"],
        isCheck ? "rosfleet-delivery-check" : "rosfleet-ros",
        r.name,
      );
      assert.equal(spec["automountServiceAccountToken"], isCheck, r.name);
    }
    const account = run.get(SERVICEACCOUNT, "ros-account");
    assert.equal(account.inputs["automountServiceAccountToken"], false);
    assert.deepEqual(account.inputs["imagePullSecrets"], []);
    for (const r of rosPods(run).filter((x) => x.type !== JOB))
      assert.ok(run.dependsOn(r, account), `${r.name} waits for its ServiceAccount`);
  });

  /** The lab-notes stack with `repository` and a registry login. */
  const withLogin = (repository: string) =>
    runProgram(
      clover((c) => {
        c["image"] = { repository };
        c["registryUsername"] = "clover";
        c["registryPassword"] = "hunter2";
      }),
      { secretKeys: ["registryPassword"] },
    );

  it("pulls a private image.repository with the registry login, kept secret", async () => {
    const priv = await withLogin("registry.lab.example:5000/clover/ros_demo");
    const secret = priv.get("kubernetes:core/v1:Secret", "ros-registry");
    assert.equal(secret.inputs["type"], "kubernetes.io/dockerconfigjson");
    assert.ok(secret.secretInputs.includes("stringData"), "the login is a secret in state");
    const config = JSON.parse(String(o(secret.inputs["stringData"])[".dockerconfigjson"])) as Obj;
    assert.deepEqual(config, {
      auths: {
        "registry.lab.example:5000": {
          username: "clover",
          password: "hunter2",
          auth: Buffer.from("clover:hunter2").toString("base64"),
        },
      },
    });
    // Both ServiceAccounts whose pods run the image list it; pods get it from them.
    for (const name of ["ros-account", "delivery-account"])
      assert.deepEqual(priv.get(SERVICEACCOUNT, name).inputs["imagePullSecrets"], [
        { name: "rosfleet-registry" },
      ]);
    const docker = await withLogin("clover/ros_demo");
    const hub = docker.get("kubernetes:core/v1:Secret", "ros-registry");
    const auths = o(JSON.parse(String(o(hub.inputs["stringData"])[".dockerconfigjson"])))["auths"];
    assert.deepEqual(Object.keys(o(auths)), ["https://index.docker.io/v1/"]);
  });

  it("keeps one check object however many nodes: a Job, not one per node naming all others", async () => {
    const machines = Array.from({ length: 40 }, (_, i) => ({
      name: `n${i}`,
      host: `10.0.0.${i + 1}`,
      role: i === 0 ? "server" : "agent",
    }));
    const big = await runProgram({ ...clover(), machines });
    assert.deepEqual(big.names(JOB), ["delivery-beacons", "delivery-job"]);
    for (const job of big.names(JOB))
      assert.equal(o(big.get(JOB, job).inputs["spec"])["completions"], 40, job);
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

describe("ros: the Multus CRD wait (python3 against a TLS API)", () => {
  const CRD = "network-attachment-definitions.k8s.cni.cncf.io";
  const fakeApi = fakeApiForSuite();
  let api: FakeApi;
  beforeEach(() => (api = fakeApi()));

  function wait(seconds: number) {
    const sa = serviceAccountDir(api, "crd-token-for-tests");
    return run("python3", ["-c", pythonJob("crd_wait.py"), CRD, String(seconds), "look there"], {
      PATH: process.env["PATH"] ?? "",
      KUBERNETES_SERVICE_HOST: "127.0.0.1",
      KUBERNETES_SERVICE_PORT: String(api.port),
      ROSFLEET_SA_DIR: sa,
      ROSFLEET_POLL_SECONDS: "0.1",
    });
  }
  const established = (ok: boolean) => ({
    status: { conditions: [{ type: "Established", status: ok ? "True" : "False" }] },
  });

  it("waits while the CRD is missing or not established, and succeeds once it is", async () => {
    let n = 0;
    api.status = () => (++n <= 2 ? 404 : 200);
    api.body = (_, status) => (status === 200 ? established(n >= 4) : undefined);
    const r = await wait(30);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `rosfleet: ${CRD} is established\n`);
    assert.equal(api.requests.length, 4);
    assert.equal(
      api.requests[0].url,
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD}`,
    );
    assert.equal(api.requests[0].headers["authorization"], "Bearer crd-token-for-tests");
  });

  it("gives up after its bound, saying how far it got and where to look", async () => {
    api.status = () => 200;
    api.body = () => established(false);
    const r = await wait(1);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      `rosfleet: the CustomResourceDefinition ${CRD} is there but not established yet after 1 s: look there\n`,
    );
  });

  it("stops at once when its account may not read the CRD", async () => {
    api.status = () => 403;
    const r = await wait(30);
    assert.equal(r.status, 1);
    assert.equal(api.requests.length, 1);
    assert.match(r.stderr, /^rosfleet: cannot read customresourcedefinition .* HTTP 403/);
  });
});
