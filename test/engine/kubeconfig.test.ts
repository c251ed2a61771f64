// The engine tier: rosfleet's own requests to an existing cluster (the node list, the Multus
// lookup) made with the kubeconfig forms users bring — certificate files named by path (kubeadm,
// minikube), a token file, an exec plugin that prints a token (EKS, GKE, OIDC helpers) — against
// a real kube-apiserver, which authenticates each for real.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { crdLookup, listNodes } from "../../components/cluster/probe";
import type { ClusterAccess } from "../../components/common/kubeconfig";
import { ControlPlane, startControlPlane } from "./controlplane";
import { writeKubeconfig } from "../helpers/kubeconfig";

const BIN = process.env.ROSFLEET_TOOLCHAIN_BIN ?? "";

describe("engine: the kubeconfig forms rosfleet's own requests accept", function () {
  this.timeout(5 * 60_000);
  let cp: ControlPlane | undefined;
  let token = "";

  /** A kubeconfig in the control plane's folder with `user` as its only user. */
  const kubeconfig = (name: string, user: Record<string, unknown>): ClusterAccess => {
    const dir = cp?.dir ?? "";
    // Relative to the kubeconfig's folder, as kubectl resolves it.
    const file = writeKubeconfig(
      path.join(dir, `${name}.kubeconfig`),
      { server: cp?.server, "certificate-authority": "ca.crt" },
      user,
      name,
    );
    return { kubeconfig: { file }, context: undefined };
  };

  before(async () => {
    if (BIN === "" || !fs.existsSync(path.join(BIN, "kube-apiserver")))
      throw new Error(
        "the engine tier needs the toolchain: run `npm run test:engine` (it builds it with scripts/toolchain.sh)",
      );
    cp = await startControlPlane(BIN);
    await cp.addNode("forms-node", { "kubernetes.io/arch": "arm64", robot: "pi1" });
    // A ServiceAccount that may list nodes and read CRDs, and a token of it.
    const post = async (url: string, body: unknown) => {
      const res = await cp?.api.request("POST", url, body);
      assert.ok(res !== undefined && res.status < 300, `${url}: ${res?.status} ${res?.body}`);
      return JSON.parse(res.body) as { status?: { token?: string } };
    };
    await post("/api/v1/namespaces/default/serviceaccounts", { metadata: { name: "prober" } });
    await post("/apis/rbac.authorization.k8s.io/v1/clusterroles", {
      metadata: { name: "prober" },
      rules: [
        { apiGroups: [""], resources: ["nodes"], verbs: ["list"] },
        {
          apiGroups: ["apiextensions.k8s.io"],
          resources: ["customresourcedefinitions"],
          verbs: ["get"],
        },
      ],
    });
    await post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
      metadata: { name: "prober" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "prober" },
      subjects: [{ kind: "ServiceAccount", name: "prober", namespace: "default" }],
    });
    const issued = await post("/api/v1/namespaces/default/serviceaccounts/prober/token", {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 3600 },
    });
    token = issued.status?.token ?? "";
    assert.ok(token !== "");
  });
  after(async () => cp?.stop());

  async function assertAccess(access: ClusterAccess): Promise<void> {
    const nodes = await listNodes(access);
    assert.ok(nodes instanceof Map, JSON.stringify(nodes));
    assert.equal(nodes.get("forms-node")?.["robot"], "pi1");
    assert.deepEqual(await crdLookup(access, "nothing.example.com"), { found: false });
  }

  it("certificate and key files named by path, relative to the kubeconfig", async () => {
    await assertAccess(
      kubeconfig("files", { "client-certificate": "admin.crt", "client-key": "admin.key" }),
    );
  });

  it("a token file (tokenFile), read as kubectl reads it", async () => {
    const file = path.join(cp?.dir ?? "", "prober.token");
    fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
    await assertAccess(kubeconfig("token-file", { tokenFile: "prober.token" }));
  });

  it("an exec plugin that prints a token", async () => {
    const plugin = path.join(cp?.dir ?? "", "token-plugin.sh");
    const credential = {
      apiVersion: "client.authentication.k8s.io/v1",
      kind: "ExecCredential",
      status: { token },
    };
    fs.writeFileSync(plugin, `#!/bin/sh\necho '${JSON.stringify(credential)}'\n`, { mode: 0o700 });
    await assertAccess(
      kubeconfig("exec", {
        exec: {
          apiVersion: "client.authentication.k8s.io/v1",
          command: plugin,
          interactiveMode: "Never",
        },
      }),
    );
  });

  it("says the server refused a token it does not know", async () => {
    const nodes = await listNodes(kubeconfig("wrong", { token: "not-a-token" }));
    assert.deepEqual(nodes, { error: "GET /api/v1/nodes: HTTP 401" });
  });
});
