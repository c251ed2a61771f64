// The engine tier: rosfleet's own requests to an existing cluster (the node list, the Multus
// lookup) made with the kubeconfig forms users bring — certificate files named by path (kubeadm,
// minikube), a token file, an exec plugin that prints a token (EKS, GKE, OIDC helpers), a
// `proxy-url` (a lab behind a jump proxy), a server URL with a path (Rancher) — against a real
// kube-apiserver, which authenticates each for real.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";
import { crdLookup, listNodes } from "../../components/cluster/probe";
import type { ClusterAccess } from "../../components/common/kubeconfig";
import { ControlPlane, issueCertificate, startControlPlane } from "./controlplane";
import { writeKubeconfig } from "../helpers/kubeconfig";

const BIN = process.env.ROSFLEET_TOOLCHAIN_BIN ?? "";

describe("engine: the kubeconfig forms rosfleet's own requests accept", function () {
  this.timeout(5 * 60_000);
  let cp: ControlPlane | undefined;
  let token = "";

  /** A kubeconfig in the control plane's folder with `user` as its only user. */
  const kubeconfig = (
    name: string,
    user: Record<string, unknown>,
    cluster: Record<string, unknown> = {},
  ): ClusterAccess => {
    const dir = cp?.dir ?? "";
    // Relative to the kubeconfig's folder, as kubectl resolves it.
    const file = writeKubeconfig(
      path.join(dir, `${name}.kubeconfig`),
      { server: cp?.server, "certificate-authority": "ca.crt", ...cluster },
      user,
      name,
    );
    return { kubeconfig: { file }, context: undefined };
  };
  const servers: { close(): void }[] = [];
  const listen = async (server: net.Server): Promise<number> => {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as net.AddressInfo).port;
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
    fs.writeFileSync(path.join(cp.dir, "prober.token"), `${token}\n`, { mode: 0o600 });
  });
  after(async () => {
    for (const s of servers) s.close();
    await cp?.stop();
  });

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

  it("a proxy-url: every request goes through the proxy's CONNECT", async () => {
    // An HTTP CONNECT proxy, as a lab behind a jump host has one; it records what it tunnelled.
    const tunnelled: string[] = [];
    const proxy = http.createServer((_req, res) => res.writeHead(405).end());
    proxy.on("connect", (req: http.IncomingMessage, client: net.Socket) => {
      tunnelled.push(req.url ?? "");
      const [host, port] = (req.url ?? "").split(":");
      const upstream = net.connect(Number(port), host, () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        upstream.pipe(client).pipe(upstream);
      });
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
    const port = await listen(proxy);
    await assertAccess(
      // With a token file: the kubeconfig rosfleet rebuilds to add the token keeps the proxy.
      kubeconfig(
        "proxied",
        { tokenFile: "prober.token" },
        { "proxy-url": `http://127.0.0.1:${port}` },
      ),
    );
    assert.deepEqual([...new Set(tunnelled)], [new URL(cp?.server ?? "").host]);
  });

  it("a server URL with a path (Rancher's /k8s/clusters/<id>)", async () => {
    // A TLS front that serves the API only under a path prefix, as Rancher does; anything else
    // is a 404, so a client that dropped the path would fail here.
    const dir = cp?.dir ?? "";
    issueCertificate(dir, "front", "/CN=front", "subjectAltName=IP:127.0.0.1\n");
    const prefix = "/k8s/clusters/c-m-lab";
    const upstream = new URL(cp?.server ?? "");
    const ca = fs.readFileSync(path.join(dir, "ca.crt"));
    const forwarded: string[] = [];
    const front = https.createServer(
      {
        key: fs.readFileSync(path.join(dir, "front.key")),
        cert: fs.readFileSync(path.join(dir, "front.crt")),
      },
      (req, res) => {
        const url = req.url ?? "";
        if (!url.startsWith(`${prefix}/`)) {
          res.writeHead(404).end();
          return;
        }
        forwarded.push(url.slice(prefix.length).split("?")[0] ?? "");
        const out = https.request(
          {
            host: upstream.hostname,
            port: upstream.port,
            path: url.slice(prefix.length),
            method: req.method,
            headers: { ...req.headers, host: upstream.host },
            ca,
          },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        out.on("error", () => res.writeHead(502).end());
        req.pipe(out);
      },
    );
    const port = await listen(front);
    await assertAccess(
      kubeconfig(
        "rancher",
        { tokenFile: "prober.token" },
        { server: `https://127.0.0.1:${port}${prefix}` },
      ),
    );
    assert.deepEqual(forwarded.sort(), [
      "/api/v1/nodes",
      "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/nothing.example.com",
    ]);
  });

  it("says the server refused a token it does not know", async () => {
    const nodes = await listNodes(kubeconfig("wrong", { token: "not-a-token" }));
    assert.deepEqual(nodes, { error: "GET /api/v1/nodes: HTTP 401" });
  });
});
