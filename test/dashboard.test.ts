import assert from "node:assert/strict";
import { FAKE_SA_TOKEN, ProgramRun, runProgram } from "./helpers/program";
import { readStackConfig } from "./helpers/stack";

const BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding";
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

  it("deploys Headlamp in-cluster from its pinned image", () => {
    const headlamp = view.get(DEPLOYMENT, "dashboard-headlamp");
    const container = o(
      (o(o(o(headlamp.inputs["spec"])["template"])["spec"])["containers"] as Obj[])[0],
    );
    assert.equal(container["image"], "ghcr.io/headlamp-k8s/headlamp:v0.39.0");
    assert.deepEqual(container["args"], ["-in-cluster", "-plugins-dir=/headlamp/plugins"]);
    assert.equal(o(headlamp.inputs["metadata"])["namespace"], "headlamp");
  });

  it("binds the login ServiceAccount to view by default, never cluster-admin", () => {
    assert.deepEqual(view.names(BINDING), ["dashboard-user-binding"]);
    const binding = view.get(BINDING, "dashboard-user-binding");
    assert.deepEqual(binding.inputs["roleRef"], {
      apiGroup: "rbac.authorization.k8s.io",
      kind: "ClusterRole",
      name: "view",
    });
    assert.deepEqual(binding.inputs["subjects"], [
      { kind: "ServiceAccount", name: "dashboard-view", namespace: "headlamp" },
    ]);
  });

  it("binds cluster-admin only when access is admin", async () => {
    const admin = await runProgram(withDashboard({ access: "admin" }));
    assert.equal(
      o(admin.get(BINDING, "dashboard-user-binding").inputs["roleRef"])["name"],
      "cluster-admin",
    );
  });

  it("creates a long-lived token Secret for the ServiceAccount", () => {
    const secret = view.get(SECRET, "dashboard-user-token");
    assert.equal(secret.inputs["type"], "kubernetes.io/service-account-token");
    assert.deepEqual(o(secret.inputs["metadata"])["annotations"], {
      "kubernetes.io/service-account.name": "dashboard-view",
    });
  });

  it("exports how to open it, with the token, as a secret", () => {
    assert.ok(view.secretOutputs.includes("dashboard"));
    assert.deepEqual(view.outputs["dashboard"], {
      access: "view",
      portForward: "kubectl -n headlamp port-forward svc/headlamp 8080:80",
      url: "http://localhost:8080",
      token: FAKE_SA_TOKEN,
    });
  });

  it("is left out when dashboard.enabled is false", async () => {
    const off = await runProgram(withDashboard({ enabled: false }));
    assert.deepEqual(off.names(BINDING), []);
    assert.equal(off.outputs["dashboard"], undefined);
  });
});
