// The engine tier: rosfleet's program run by the real Pulumi CLI and kubernetes provider
// (scripts/toolchain.sh) through the Automation API, against a real kube-apiserver whose nodes
// kwok simulates, on the existing-cluster mode (cluster.kubeconfig). What mocks cannot show:
// the engine's diffs and replacements, the provider's awaits, secrets in the real state, the
// delete order of `destroy`. Run with `npm run test:engine`.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigMap, PreviewResult, Stack } from "@pulumi/pulumi/automation";
import { ControlPlane, startControlPlane, waitFor } from "./controlplane";
import { providerCopies } from "../../components/cluster/tempfiles";
import { serversDown } from "../../components/config/previous";
import {
  AutomationStack,
  automationStack,
  changeList,
  leftInCluster,
  rosfleetConfig,
  stateObjects,
  stateText,
  withChanges,
} from "../helpers/automation";

const BIN = process.env.ROSFLEET_TOOLCHAIN_BIN ?? "";
const STACK = "engine";
/** The lab: one amd64 laptop, one arm64 Pi (kwok nodes of these names and arches). */
const MACHINES = [
  { name: "engine-laptop", arch: "amd64", kind: "laptop" },
  { name: "engine-pi", arch: "arm64", kind: "pi" },
] as const;
/** Pinned by digest so the image stage declares nothing (no docker-build plugin here). */
const IMAGE = `registry.invalid/rosfleet/ros_demo@sha256:${"a".repeat(64)}`;
const REGISTRY_PASSWORD = "engine-registry-password-3f9a";
const WORKLOADS = [
  { name: "ros-talker", kind: "deployment", replicas: 1, containers: ["talker"] },
  { name: "ros-listener", kind: "deployment", arch: "arm64", containers: ["listener"] },
  { name: "demo-listener", kind: "pod", containers: ["listener", "toolbox"] },
];

/** `verb resource [in namespace]`: the resource as `resource[.group][/subresource]`, e.g.
 * "create pods/exec", "patch deployments.apps". */
type Ask = readonly [verb: string, resource: string, namespace?: string];

describe("engine: the program under the real Pulumi engine and kube-apiserver", function () {
  this.timeout(15 * 60_000);
  let cp: ControlPlane | undefined;
  let stack: Stack;
  let pulumi: AutomationStack | undefined;
  const config = (overrides: Record<string, unknown> = {}): ConfigMap =>
    rosfleetConfig(
      {
        cluster: { kubeconfig: cp?.kubeconfig },
        machines: MACHINES,
        image: { build: false, repository: IMAGE },
        ros: { domainId: 3, workloads: WORKLOADS },
        dashboard: { enabled: true, access: "view", tokenHours: 2 },
        deliveryCheck: { enabled: false },
        ...overrides,
        // A private registry: the nodes pull with this login.
        registryUsername: "lab",
      },
      { registryPassword: REGISTRY_PASSWORD },
    );

  /** The dashboard output's login token. */
  async function dashboardToken(): Promise<string> {
    const info = (await stack.outputs())["dashboard"]?.value as { token?: string } | undefined;
    return info?.token ?? "";
  }

  /** GET `urlPath` with `token` as the only credential. */
  function asBearer(token: string, urlPath: string): Promise<{ status: number }> {
    const url = new URL(cp?.server ?? "");
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: url.hostname,
          port: url.port,
          path: urlPath,
          ca: fs.readFileSync(path.join(cp?.dir ?? "", "ca.crt")),
          headers: { Authorization: `Bearer ${token}` },
          timeout: 10_000,
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode ?? 0 }));
        },
      );
      req.on("error", reject);
      req.end();
    });
  }

  /** What the API server's RBAC lets the dashboard login of `access` do, per question. */
  async function dashboardMay(access: string, asks: readonly Ask[]): Promise<string[]> {
    const allowed: string[] = [];
    for (const [verb, what, namespace] of asks) {
      const [plural, subresource] = what.split("/");
      const dot = plural.indexOf(".");
      const [resource, group] =
        dot < 0 ? [plural, ""] : [plural.slice(0, dot), plural.slice(dot + 1)];
      const r = await cp?.api.request(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SubjectAccessReview",
          spec: {
            user: `system:serviceaccount:headlamp:dashboard-${access}`,
            groups: [
              "system:serviceaccounts",
              "system:serviceaccounts:headlamp",
              "system:authenticated",
            ],
            resourceAttributes: { verb, group, resource, subresource, namespace },
          },
        },
      );
      const status = (JSON.parse(r?.body ?? "{}") as { status?: { allowed?: boolean } }).status;
      if (status?.allowed === true) allowed.push([verb, what, namespace ?? "*"].join(" "));
    }
    return allowed;
  }
  /** Questions a dashboard login's reach is judged by. */
  const ASKS: readonly Ask[] = [
    ["list", "pods", "kube-system"],
    ["get", "pods/log", "rosfleet"],
    ["list", "nodes"],
    ["patch", "nodes"],
    ["delete", "nodes"],
    ["create", "pods", "rosfleet"],
    ["create", "pods/exec", "rosfleet"],
    ["get", "secrets", "rosfleet"],
    ["patch", "deployments.apps", "rosfleet"],
    ["create", "pods", "kube-system"],
    ["get", "secrets", "kube-system"],
    ["impersonate", "serviceaccounts", "kube-system"],
    ["create", "clusterrolebindings.rbac.authorization.k8s.io"],
  ];

  before(async function () {
    if (BIN === "" || !fs.existsSync(path.join(BIN, "pulumi")))
      throw new Error(
        "the engine tier needs the toolchain: run `npm run test:engine` (it builds it with scripts/toolchain.sh)",
      );
    cp = await startControlPlane(BIN);
    for (const m of MACHINES) await cp.addNode(m.name, { "kubernetes.io/arch": m.arch });
    // The provider built by the toolchain is found on PATH (an ambient plugin).
    pulumi = await automationStack(BIN, STACK, [BIN]);
    stack = pulumi.stack;
  });

  after(async function () {
    if (cp === undefined) return;
    if (this.currentTest?.state === "failed") console.error(cp.logs());
    await cp.stop();
    pulumi?.cleanup();
  });

  it("fails the delivery check naming every pair when no ROS container runs (kwok)", async () => {
    await stack.setAllConfig(config({ deliveryCheck: { enabled: true, timeoutSeconds: 10 } }));
    const err = await stack.up({ color: "never" }).then(
      () => assert.fail("up passed a delivery check no container ran"),
      (e: unknown) => e as Error,
    );
    const text = err.message;
    // Every ordered pair, a node with itself included.
    assert.match(text, /ROS 2 delivery check failed with ros.discovery = discovery-server: 4 of 4/);
    for (const talker of MACHINES)
      for (const listener of MACHINES)
        assert.ok(
          text.includes(`no ROS 2 message from ${talker.name} reached ${listener.name}`),
          `names ${talker.name} → ${listener.name}`,
        );
    for (const listener of MACHINES)
      assert.ok(
        text.includes(`the check on ${listener.name} reported nothing`),
        `names the silent ${listener.name}`,
      );
  });

  it("up converges the lab and reports the cluster's nodes", async () => {
    await stack.setAllConfig(config());
    const { result } = await withChanges((onEvent) => stack.up({ onEvent }));
    assert.equal(result.summary.result, "succeeded");
    const nodes = result.outputs.nodes?.value as { name: string; arch: string }[];
    assert.deepEqual(
      nodes.map((n) => [n.name, n.arch]).sort(),
      MACHINES.map((m) => [m.name, m.arch]).sort(),
    );
    const talker = await cp?.api.get<{ status: { readyReplicas?: number } }>(
      "/apis/apps/v1/namespaces/rosfleet/deployments/ros-talker",
    );
    assert.equal(talker?.status.readyReplicas, 1);
    // Pods get the registry login from their ServiceAccount (the API server's admission).
    const pods = await cp?.api.get<{
      items: { spec: { imagePullSecrets?: { name: string }[] } }[];
    }>("/api/v1/namespaces/rosfleet/pods?labelSelector=app.kubernetes.io%2Fname%3Dros-talker");
    assert.equal(pods?.items.length, 1);
    assert.deepEqual(pods?.items[0]?.spec.imagePullSecrets, [{ name: "rosfleet-registry" }]);
    const secret = await cp?.api.get<{ type: string; data: Record<string, string> }>(
      "/api/v1/namespaces/rosfleet/secrets/rosfleet-registry",
    );
    assert.equal(secret?.type, "kubernetes.io/dockerconfigjson");
    const login = JSON.parse(
      Buffer.from(secret?.data[".dockerconfigjson"] ?? "", "base64").toString("utf8"),
    ) as { auths: Record<string, { username: string; password: string }> };
    assert.deepEqual(Object.keys(login.auths), ["registry.invalid"]);
    assert.equal(login.auths["registry.invalid"]?.password, REGISTRY_PASSWORD);
  });

  /**
   * Runs `command` (a CLI command through the Automation API) and returns the kubeconfig copies
   * of the lab's cluster that appeared in $TMPDIR while it ran (the providers' plaintext copies,
   * with the client key), and those of them still there a moment after it ended.
   */
  async function copiesOf(
    command: () => Promise<unknown>,
  ): Promise<{ made: string[]; left: string[] }> {
    const made = new Set<string>();
    const watcher = fs.watch(os.tmpdir(), (_event, name) => {
      if (typeof name === "string" && /^kubeconfig\d+$/.test(name)) made.add(name);
    });
    const started = Date.now();
    try {
      await command();
    } finally {
      watcher.close();
    }
    const ours = () =>
      providerCopies(os.tmpdir(), { servers: [cp?.server ?? ""] }, started).map((f) =>
        path.basename(f),
      );
    // An inline program's command ends before the program notices (it polls for it).
    for (let i = 0; i < 20 && ours().length > 0; i += 1)
      await new Promise((r) => setTimeout(r, 250));
    return { made: [...made], left: ours() };
  }

  /** A copy of the lab's kubeconfig written before this command (another program's, or kept). */
  function plantedCopy(): string {
    const file = path.join(os.tmpdir(), `kubeconfig${Date.now()}`);
    fs.writeFileSync(
      file,
      `apiVersion: v1\nclusters:\n- cluster:\n    server: ${cp?.server}\n  name: kept\n`,
      { mode: 0o600 },
    );
    const old = new Date(Date.now() - 600_000);
    fs.utimesSync(file, old, old);
    return file;
  }

  it("a second preview shows no changes, and leaves none of its providers' kubeconfig copies, nor removes others", async () => {
    const kept = plantedCopy();
    let preview: { result: PreviewResult; changes: Map<string, unknown> } | undefined;
    const copies = await copiesOf(async () => {
      preview = await withChanges((onEvent) => stack.preview({ expectNoChanges: true, onEvent }));
    });
    if (preview === undefined) throw new Error("no preview");
    const { result, changes } = preview;
    assert.deepEqual([...changes], []);
    // Not even a read: the last update's lab comes from the state by an invoke.
    assert.deepEqual(Object.keys(result.changeSummary), ["same"]);
    assert.ok(copies.made.length > 0, "the provider writes its copy (if not, this sweep can go)");
    assert.deepEqual(copies.left, [], "this command's copies are gone");
    assert.ok(fs.existsSync(kept), "a copy from before the command is not touched");
    fs.rmSync(kept);
  });

  it("refresh (and its preview) leaves none of its providers' kubeconfig copies, nor removes others", async () => {
    const kept = plantedCopy();
    for (const command of [() => stack.previewRefresh(), () => stack.refresh()]) {
      const copies = await copiesOf(command);
      assert.ok(copies.made.length > 0, "the providers write their copies in refresh too");
      assert.deepEqual(copies.left, []);
    }
    assert.ok(fs.existsSync(kept), "a copy from before the command is not touched");
    fs.rmSync(kept);
  });

  it("a change of domain id and replicas updates only the workloads", async () => {
    const workloads = WORKLOADS.map((w) => (w.name === "ros-talker" ? { ...w, replicas: 2 } : w));
    await stack.setAllConfig(config({ ros: { domainId: 7, workloads } }));
    const { changes } = await withChanges((onEvent) => stack.up({ onEvent }));
    const changed = changeList(changes);
    // A pod's env cannot be updated in place: the pod is replaced; Deployments are updated.
    assert.deepEqual(changed, [
      "ros-demo-listener:replace",
      "ros-ros-listener:update",
      "ros-ros-talker:update",
    ]);
    const talker = await cp?.api.get<{
      spec: {
        replicas: number;
        template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } };
      };
    }>("/apis/apps/v1/namespaces/rosfleet/deployments/ros-talker");
    assert.equal(talker?.spec.replicas, 2);
    const env = talker?.spec.template.spec.containers[0]?.env ?? [];
    assert.equal(env.find((e) => e.name === "ROS_DOMAIN_ID")?.value, "7");
  });

  it("the state holds no plaintext token or cluster credential", async () => {
    const state = stateText(pulumi as AutomationStack, BIN);
    assert.ok(state.includes("4dabf18193072939515e22adb298388d"), "secrets are there, encrypted");
    const token = await dashboardToken();
    assert.ok(token.length > 20, "the dashboard token was issued");
    const at = state.indexOf(token);
    assert.ok(
      at < 0,
      `no plaintext dashboard token: ${state.slice(Math.max(0, at - 600), at + 80)}`,
    );
    assert.ok(
      !state.includes(Buffer.from(token).toString("base64").slice(0, 40)),
      "no base64 dashboard token",
    );
    assert.ok(!state.includes(REGISTRY_PASSWORD), "no plaintext registry password");
    assert.ok(
      !state.includes(Buffer.from(`lab:${REGISTRY_PASSWORD}`).toString("base64")),
      "no registry auth",
    );
    const key = cp?.adminKey ?? "";
    const keyBody = key
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("-----"))
      .join("");
    assert.ok(!state.includes(keyBody.slice(0, 40)), "no client key");
    assert.ok(
      !state.includes(Buffer.from(key).toString("base64").slice(0, 40)),
      "no client key (base64)",
    );
  });

  it("dashboard token: minted for dashboard.tokenHours, and logs in with the view access", async () => {
    const token = await dashboardToken();
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as {
      exp: number;
      iat: number;
      sub: string;
    };
    assert.equal(claims.exp - claims.iat, 2 * 3600);
    assert.equal(claims.sub, "system:serviceaccount:headlamp:dashboard-view");
    const info = (await stack.outputs())["dashboard"]?.value as { expires: string };
    assert.equal(new Date(info.expires).getTime(), claims.exp * 1000);
    // Presented alone (no client certificate): the API server knows it, and RBAC scopes it.
    assert.equal((await asBearer(token, "/api/v1/nodes")).status, 200);
    assert.equal((await asBearer(token, "/api/v1/namespaces/rosfleet/secrets")).status, 403);
    assert.equal((await asBearer(`${token.slice(0, -4)}AAAA`, "/api/v1/nodes")).status, 401);
  });

  it("dashboard token: revoked at once by deleting its ServiceAccount; up --refresh mints a new one", async () => {
    const old = await dashboardToken();
    const url = "/api/v1/namespaces/headlamp/serviceaccounts/dashboard-view";
    assert.equal((await cp?.api.request("DELETE", url))?.status, 200);
    await waitFor(
      "the old token is refused",
      async () => (await asBearer(old, "/api/v1/nodes")).status === 401,
      30_000,
      () => "",
    );
    await stack.up({ refresh: true });
    const renewed = await dashboardToken();
    assert.notEqual(renewed, old);
    assert.equal((await asBearer(renewed, "/api/v1/nodes")).status, 200);
    assert.equal((await asBearer(old, "/api/v1/nodes")).status, 401);
  });

  it("dashboard view: reads pods, logs and nodes everywhere; changes nothing, no Secrets", async () => {
    assert.deepEqual(await dashboardMay("view", ASKS), [
      "list pods kube-system",
      "get pods/log rosfleet",
      "list nodes *",
    ]);
  });

  it("dashboard admin: changes the lab's namespace and cordons nodes, nothing beyond it", async () => {
    await stack.setAllConfig(config({ dashboard: { enabled: true, access: "admin" } }));
    await stack.up();
    assert.deepEqual(await dashboardMay("admin", ASKS), [
      "list pods kube-system",
      "get pods/log rosfleet",
      "list nodes *",
      "patch nodes *",
      "create pods rosfleet",
      "create pods/exec rosfleet",
      "get secrets rosfleet",
      "patch deployments.apps rosfleet",
    ]);
    assert.deepEqual(await dashboardMay("view", ASKS), [], "the view login is gone");
  });

  it("dashboard admin: Pod Security admission refuses it a privileged pod in the lab's namespace", async () => {
    // Asked as the admin login's ServiceAccount, dry-run: admission runs, nothing is created.
    const asAdmin = {
      "Impersonate-User": "system:serviceaccount:headlamp:dashboard-admin",
      "Impersonate-Group": [
        "system:serviceaccounts",
        "system:serviceaccounts:headlamp",
        "system:authenticated",
      ],
    };
    const pod = (name: string, spec: Record<string, unknown>) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "rosfleet" },
      spec,
    });
    const create = (body: unknown) =>
      cp?.api.request("POST", "/api/v1/namespaces/rosfleet/pods?dryRun=All", body, asAdmin);
    const root = await create(
      pod("root-on-a-node", {
        hostPID: true,
        containers: [
          {
            name: "sh",
            image: IMAGE,
            securityContext: { privileged: true },
            volumeMounts: [{ name: "host", mountPath: "/host" }],
          },
        ],
        volumes: [{ name: "host", hostPath: { path: "/" } }],
      }),
    );
    assert.equal(root?.status, 403, root?.body);
    const { message } = JSON.parse(root?.body ?? "{}") as { message?: string };
    assert.match(message ?? "", /is forbidden: violates PodSecurity "restricted:latest": /);
    assert.match(
      message ?? "",
      /privileged \(container "sh" must not set securityContext\.privileged=true\)/,
    );
    assert.match(
      message ?? "",
      /restricted volume types \(volume "host" uses restricted volume type "hostPath"\)/,
    );
    // RBAC lets it create pods there: a pod of the namespace's level is admitted.
    const plain = await create(
      pod("plain", {
        securityContext: {
          runAsNonRoot: true,
          runAsUser: 1000,
          seccompProfile: { type: "RuntimeDefault" },
        },
        containers: [
          {
            name: "sh",
            image: IMAGE,
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
          },
        ],
      }),
    );
    assert.equal(plain?.status, 201, plain?.body);
  });

  it("a machine whose node is not Ready fails up at once, named, before any ROS pod changes", async () => {
    // A Node no kubelet (and no kwok) looks after: it never reports Ready.
    const ghost = { name: "engine-ghost", arch: "amd64", kind: "vm" };
    const res = await cp?.api.request("POST", "/api/v1/nodes", {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: ghost.name,
        labels: {
          "kubernetes.io/hostname": ghost.name,
          "kubernetes.io/arch": "amd64",
          "kubernetes.io/os": "linux",
        },
      },
    });
    assert.equal(res?.status, 201, res?.body);
    const before = await stack.getAllConfig();
    try {
      await stack.setAllConfig({
        ...before,
        "rosfleet:machines": { value: JSON.stringify([...MACHINES, ghost]) },
      });
      const started = Date.now();
      const err = await stack.up({ color: "never" }).then(
        () => assert.fail("up passed with a node that is not Ready"),
        (e: unknown) => e as Error,
      );
      assert.match(err.message, /these machines' nodes cannot run pods now/);
      assert.match(err.message, / {2}- engine-ghost: not Ready \(no Ready condition yet\)/);
      assert.ok(Date.now() - started < 60_000, "at once, not after a pull's wait");
    } finally {
      await stack.setAllConfig(before);
      await cp?.api.request("DELETE", `/api/v1/nodes/${ghost.name}`);
    }
    const back = await withChanges((onEvent) => stack.up({ onEvent }));
    assert.deepEqual(changeList(back.changes), [], "nothing had changed");
  });

  it("the config stage asks the cluster which servers are down before one leaves", async () => {
    // A Node no kubelet serves, beside the kwok ones (Ready), and one that is not there.
    const res = await cp?.api.request("POST", "/api/v1/nodes", {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "engine-dead-server" },
    });
    assert.equal(res?.status, 201, res?.body);
    try {
      const text = fs.readFileSync(cp?.kubeconfig ?? "", "utf8");
      const ready = MACHINES[0]?.name ?? "";
      assert.deepEqual(await serversDown(text, [ready, "engine-dead-server", "engine-gone"]), {
        "engine-dead-server": "not Ready (no Ready condition yet)",
        "engine-gone": "not in the cluster",
      });
    } finally {
      await cp?.api.request("DELETE", "/api/v1/nodes/engine-dead-server");
    }
  });

  it("a bare Pod deleted behind rosfleet's back comes back with up --refresh (as README says)", async () => {
    const url = "/api/v1/namespaces/rosfleet/pods/demo-listener";
    assert.equal((await cp?.api.request("DELETE", `${url}?gracePeriodSeconds=0`))?.status, 200);
    await waitFor(
      "the pod is gone",
      async () => (await cp?.api.request("GET", url))?.status === 404,
      30_000,
      () => "",
    );
    const plain = await withChanges((onEvent) => stack.up({ onEvent }));
    assert.deepEqual(changeList(plain.changes), [], "a plain up does not notice");
    await stack.up({ refresh: true });
    assert.equal((await cp?.api.request("GET", url))?.status, 200, "recreated");
  });

  it("destroy leaves nothing of rosfleet in the API", async () => {
    const objects = await stateObjects(stack);
    assert.ok(objects.length > 10, `the lab's objects are in state (${objects.length})`);
    const copies = await copiesOf(() => stack.destroy());
    assert.deepEqual(await leftInCluster(objects, (url) => cp?.api.request("GET", url)), []);
    assert.ok(copies.made.length > 0, "the providers write their copies in destroy too");
    assert.deepEqual(copies.left, [], "destroy leaves no plaintext kubeconfig behind");
  });
});
