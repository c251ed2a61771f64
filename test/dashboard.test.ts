import assert from "node:assert/strict";
import { renewalDue, replacedBy } from "../components/dashboard/token";
import {
  DASHBOARD_TOKEN,
  FAKE_SA_TOKEN,
  FAKE_TOKEN_EXPIRES,
  ProgramRun,
  Registration,
  runProgram,
} from "./helpers/program";
import { readStackConfig } from "./helpers/stack";

const BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding";
const CLUSTERROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole";
const ROLEBINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding";
const SECRET = "kubernetes:core/v1:Secret";
const DEPLOYMENT = "kubernetes:apps/v1:Deployment";

type Obj = Record<string, unknown>;
const o = (v: unknown): Obj => v as Obj;

const withDashboard = (dashboard: Obj) => ({ ...readStackConfig("clover"), dashboard });

describe("dashboard: Headlamp", () => {
  let view: ProgramRun;
  before(async () => {
    view = await runProgram(readStackConfig("clover"));
  });

  it("enforces Pod Security restricted in its namespace (Headlamp's own pod passes it)", () => {
    const ns = view.get("kubernetes:core/v1:Namespace", "dashboard-namespace");
    const labels = o(o(ns.inputs["metadata"])["labels"]);
    assert.equal(labels["pod-security.kubernetes.io/enforce"], "restricted");
  });

  it("deploys Headlamp in-cluster from its pinned image", () => {
    const headlamp = view.get(DEPLOYMENT, "dashboard-headlamp");
    const container = o(
      (o(o(o(headlamp.inputs["spec"])["template"])["spec"])["containers"] as Obj[])[0],
    );
    assert.equal(container["image"], "ghcr.io/headlamp-k8s/headlamp:v0.39.0");
    assert.deepEqual(container["args"], ["-in-cluster", "-plugins-dir=/headlamp/plugins"]);
    assert.equal(o(headlamp.inputs["metadata"])["namespace"], "headlamp");
  });

  /** ClusterRole name → the rules a dashboard login gets through its bindings. */
  function grants(run: ProgramRun): Record<string, unknown> {
    const roles = new Map(
      run.resources
        .filter((r) => r.type === CLUSTERROLE)
        .map((r) => [String(o(r.inputs["metadata"])["name"]), r.inputs["rules"]]),
    );
    return Object.fromEntries(
      run.resources
        .filter((r) => r.type === BINDING)
        .map((r) => {
          assert.deepEqual(r.inputs["subjects"], [
            { kind: "ServiceAccount", name: `dashboard-${access(run)}`, namespace: "headlamp" },
          ]);
          const role = String(o(r.inputs["roleRef"])["name"]);
          return [role, roles.get(role) ?? "built-in"];
        }),
    );
  }
  const access = (run: ProgramRun) =>
    String(run.get(DASHBOARD_TOKEN, "dashboard-user-token").inputs["serviceAccount"]).split("-")[1];

  it("view: the built-in view role and reading nodes, so the robots show; nothing more", () => {
    assert.deepEqual(grants(view), {
      view: "built-in",
      "rosfleet-dashboard-view-nodes": [
        { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
      ],
    });
  });

  it("admin: view everywhere, the built-in admin role in the lab's namespace only, cordoning nodes", async () => {
    const admin = await runProgram(withDashboard({ access: "admin" }));
    assert.deepEqual(grants(admin), {
      view: "built-in",
      "rosfleet-dashboard-admin-nodes": [
        { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch", "patch"] },
      ],
    });
    const dashboardOnly = (r: Registration) =>
      r.type === ROLEBINDING && r.name.startsWith("dashboard-");
    const lab = admin.resources.filter(dashboardOnly);
    assert.deepEqual(
      lab.map((r) => [o(r.inputs["metadata"])["namespace"], o(r.inputs["roleRef"])["name"]]),
      [["rosfleet", "admin"]],
    );
    assert.deepEqual(lab[0]?.inputs["subjects"], [
      { kind: "ServiceAccount", name: "dashboard-admin", namespace: "headlamp" },
    ]);
    assert.equal(view.resources.filter(dashboardOnly).length, 0);
  });

  it("runs Headlamp without a credential of its own, as non-root, read-only", () => {
    const spec = o(
      o(o(view.get(DEPLOYMENT, "dashboard-headlamp").inputs["spec"])["template"])["spec"],
    );
    assert.equal(spec["automountServiceAccountToken"], false);
    assert.deepEqual(spec["securityContext"], {
      runAsNonRoot: true,
      runAsUser: 100,
      runAsGroup: 101,
      seccompProfile: { type: "RuntimeDefault" },
    });
    const container = o((spec["containers"] as Obj[])[0]);
    assert.deepEqual(container["securityContext"], {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    // -in-cluster finds the CA where a token would be mounted, and an empty token file.
    const mount = (container["volumeMounts"] as Obj[]).find(
      (m) => m["mountPath"] === "/var/run/secrets/kubernetes.io/serviceaccount",
    );
    const volume = (spec["volumes"] as Obj[]).find((v) => v["name"] === mount?.["name"]);
    const sources = o(volume?.["projected"])["sources"] as Obj[];
    assert.ok(!JSON.stringify(sources).includes("serviceAccountToken"), "no projected token");
    const empty = view.get("kubernetes:core/v1:ConfigMap", "dashboard-no-token");
    assert.deepEqual(empty.inputs["data"], { token: "" });
    assert.deepEqual(
      sources.map((src) => Object.keys(src)[0]),
      ["configMap", "downwardAPI", "configMap"],
    );
  });

  it("mints a token of the ServiceAccount that expires after dashboard.tokenHours (24 by default)", async () => {
    const token = view.get(DASHBOARD_TOKEN, "dashboard-user-token");
    assert.equal(token.inputs["serviceAccount"], "dashboard-view");
    assert.equal(token.inputs["namespace"], "headlamp");
    assert.equal(token.inputs["hours"], 24);
    // It asks the API server with the cluster's admin kubeconfig: a secret input.
    assert.ok(token.secretInputs.includes("access"));
    assert.equal(
      view.names(SECRET).filter((n) => n.includes("token")).length,
      0,
      "no long-lived token Secret",
    );
    const week = await runProgram(withDashboard({ tokenHours: 168 }));
    assert.equal(week.get(DASHBOARD_TOKEN, "dashboard-user-token").inputs["hours"], 168);
  });

  it("renews the token once less than a tenth of its life is left, and when it was minted for other inputs", () => {
    const hour = 3_600_000;
    const minted = Date.UTC(2026, 0, 1);
    const expires = minted + 24 * hour;
    assert.equal(renewalDue(expires, 24, minted + 21 * hour), false);
    assert.equal(renewalDue(expires, 24, minted + 22 * hour), true);
    assert.equal(renewalDue(expires, 24, expires + 1), true);
    const olds = {
      namespace: "headlamp",
      serviceAccount: "dashboard-view",
      serviceAccountUid: "u1",
      hours: 24,
    };
    assert.deepEqual(replacedBy(olds, { ...olds }), []);
    // The account deleted to revoke its tokens comes back with a new UID.
    assert.deepEqual(replacedBy(olds, { ...olds, serviceAccountUid: "u2", hours: 1 }), [
      "serviceAccountUid",
      "hours",
    ]);
  });

  it("exports how to open it, with the token, as a secret", () => {
    assert.ok(view.secretOutputs.includes("dashboard"));
    assert.deepEqual(view.outputs["dashboard"], {
      access: "view",
      portForward: "kubectl -n headlamp port-forward svc/headlamp 8080:80",
      url: "http://localhost:8080",
      token: FAKE_SA_TOKEN,
      expires: new Date(FAKE_TOKEN_EXPIRES).toISOString(),
    });
  });

  it("is left out when dashboard.enabled is false", async () => {
    const off = await runProgram(withDashboard({ enabled: false }));
    assert.deepEqual(off.names(BINDING), []);
    assert.equal(off.outputs["dashboard"], undefined);
  });
});
