// A real Kubernetes control plane on loopback for the engine tier: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler from scripts/toolchain.sh, with kwok standing in
// for the kubelets (nodes and pods are simulated; no container runs). Certificates are made
// here with openssl, valid for a day, in a temp dir removed by `stop()`.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/** A GET/POST/DELETE through the API as cluster admin. */
export interface KubeApi {
  /** `headers`: e.g. `Impersonate-User`, to ask as another identity (the admin may). */
  request(
    method: string,
    urlPath: string,
    body?: unknown,
    headers?: Readonly<Record<string, string | string[]>>,
  ): Promise<ApiResponse>;
  get<T = unknown>(urlPath: string): Promise<T | undefined>;
}

export interface ApiResponse {
  readonly status: number;
  readonly body: string;
}

export interface ControlPlane {
  /** A kubeconfig (admin, client certificate) for the API server. */
  readonly kubeconfig: string;
  readonly server: string;
  readonly api: KubeApi;
  /** Where its CA (`ca.crt`, `ca.key`) is: to issue the nodes' certificates. */
  readonly dir: string;
  /** The PEM of the admin's client key: a credential that must never reach state. */
  readonly adminKey: string;
  /** A node kwok simulates: Ready, with these labels. */
  addNode(name: string, labels: Readonly<Record<string, string>>): Promise<void>;
  /** The last lines each component logged, for a failure message. */
  logs(): string;
  stop(): Promise<void>;
}

const KWOK_ANNOTATION = "kwok.x-k8s.io/node";

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const openssl = (args: readonly string[]) => execFileSync("openssl", args, { stdio: "pipe" });

/** Signs a key pair `<name>.key`/`<name>.crt` in `dir` with the test CA (`ca.key`). */
export function issueCertificate(dir: string, name: string, subject: string, ext: string): void {
  const f = (file: string) => path.join(dir, file);
  openssl(["req", ...EC, "-keyout", f(`${name}.key`), "-out", f(`${name}.csr`), "-subj", subject]);
  fs.writeFileSync(f(`${name}.ext`), ext);
  openssl(
    ["x509", "-req", "-in", f(`${name}.csr`), "-CA", f("ca.crt"), "-CAkey", f("ca.key")].concat([
      "-CAcreateserial",
      "-days",
      "1",
      "-out",
      f(`${name}.crt`),
      "-extfile",
      f(`${name}.ext`),
    ]),
  );
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A CA, the API server's certificate (valid for `addresses`), the admin's client certificate,
 * the SA signing key. */
function makeCertificates(dir: string, addresses: readonly string[]): void {
  const f = (name: string) => path.join(dir, name);
  openssl(
    ["req", "-x509", ...EC, "-keyout", f("ca.key"), "-out", f("ca.crt")].concat([
      "-days",
      "1",
      "-subj",
      "/CN=rosfleet-engine-test-ca",
    ]),
  );
  const sans = ["DNS:localhost", ...addresses.map((a) => `IP:${a}`)].join(",");
  issueCertificate(
    dir,
    "apiserver",
    "/CN=kube-apiserver",
    `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\n`,
  );
  issueCertificate(
    dir,
    "admin",
    "/O=system:masters/CN=rosfleet-engine-test-admin",
    "extendedKeyUsage=clientAuth\n",
  );
  openssl([
    "genpkey",
    "-algorithm",
    "RSA",
    "-pkeyopt",
    "rsa_keygen_bits:2048",
    "-out",
    f("sa.key"),
  ]);
  openssl(["pkey", "-in", f("sa.key"), "-pubout", "-out", f("sa.pub")]);
}

/** A kubeconfig at `file` for `server`, with the client certificate `<cert>.crt`/`.key` of `dir`. */
export function writeKubeconfig(
  dir: string,
  server: string,
  cert = "admin",
  file = path.join(dir, `${cert}.kubeconfig`),
): string {
  const b64 = (name: string) => fs.readFileSync(path.join(dir, name)).toString("base64");
  // JSON is YAML; kubeconfig readers accept either.
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name: "engine", cluster: { server, "certificate-authority-data": b64("ca.crt") } },
    ],
    users: [
      {
        name: cert,
        user: {
          "client-certificate-data": b64(`${cert}.crt`),
          "client-key-data": b64(`${cert}.key`),
        },
      },
    ],
    contexts: [{ name: "engine", context: { cluster: "engine", user: cert } }],
    "current-context": "engine",
  };
  fs.writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return file;
}

/** Ends `proc`: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopProcess(proc: ChildProcess, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

function kubeApi(dir: string, host: string, port: number): KubeApi {
  const agent = new https.Agent({
    ca: fs.readFileSync(path.join(dir, "ca.crt")),
    cert: fs.readFileSync(path.join(dir, "admin.crt")),
    key: fs.readFileSync(path.join(dir, "admin.key")),
  });
  const request = (
    method: string,
    urlPath: string,
    body?: unknown,
    extra: Readonly<Record<string, string | string[]>> = {},
  ) =>
    new Promise<ApiResponse>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request(
        {
          host,
          port,
          path: urlPath,
          method,
          agent,
          timeout: 10_000,
          // A PATCH is a JSON merge patch; anything else sends the object itself.
          headers: {
            ...extra,
            ...(payload === undefined
              ? {}
              : {
                  "Content-Type":
                    method === "PATCH" ? "application/merge-patch+json" : "application/json",
                }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
          );
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${urlPath}: timed out`)));
      req.on("error", reject);
      req.end(payload);
    });
  return {
    request,
    async get<T>(urlPath: string): Promise<T | undefined> {
      const res = await request("GET", urlPath);
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw new Error(`GET ${urlPath}: ${res.status} ${res.body}`);
      return JSON.parse(res.body) as T;
    },
  };
}

/** Whether the Node `name` reports Ready. */
export async function nodeIsReady(api: KubeApi, name: string): Promise<boolean> {
  const node = await api.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
    `/api/v1/nodes/${name}`,
  );
  return node?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** Polls `ok` until it holds; past `timeoutMs` fails with `what` and the components' logs. */
export async function waitFor(
  what: string,
  ok: () => Promise<boolean>,
  timeoutMs: number,
  logs: () => string,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ok().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`${what}: not ready in ${timeoutMs / 1000} s\n${logs()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface ControlPlaneOptions {
  /**
   * Real nodes (the cluster tier): the API server listens on this address, which the nodes
   * reach, not on loopback; it is the `kubernetes` Service's endpoint, authorizes kubelets as
   * nodes, and reaches them by InternalIP for exec and logs. No kwok.
   */
  readonly address?: string;
  /** kwok's Stage objects (a YAML file); default: the toolchain's kwok-stages.yaml. */
  readonly kwokStages?: string;
}

/** The `kubernetes` Service's address in `SERVICE_CIDR`: pods reach the API server there. */
export const SERVICE_CIDR = "10.96.0.0/16";
export const KUBERNETES_SERVICE_IP = "10.96.0.1";

/** Starts the control plane; `bin` holds the toolchain's binaries. */
export async function startControlPlane(
  bin: string,
  options: ControlPlaneOptions = {},
): Promise<ControlPlane> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-engine-"));
  const host = options.address ?? "127.0.0.1";
  const realNodes = options.address !== undefined;
  const procs: { name: string; proc: ChildProcess; log: string[] }[] = [];
  const logs = () =>
    procs
      .map(
        ({ name, proc, log }) =>
          `--- ${name} (exit ${String(proc.exitCode)}):\n${log.join("").slice(-3000)}`,
      )
      .join("\n");
  const run = (name: string, args: readonly string[]) => {
    const proc = spawn(path.join(bin, name), args, { stdio: ["ignore", "pipe", "pipe"] });
    const entry = { name, proc, log: [] as string[] };
    const keep = (chunk: Buffer) => {
      entry.log.push(chunk.toString("utf8"));
      if (entry.log.length > 200) entry.log.splice(0, entry.log.length - 200);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    procs.push(entry);
  };
  const stop = async () => {
    // Reverse order: the apiserver's clients before it, etcd last.
    for (const { proc } of [...procs].reverse()) await stopProcess(proc, 5000);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    makeCertificates(dir, ["127.0.0.1", host, KUBERNETES_SERVICE_IP]);
    const f = (name: string) => path.join(dir, name);
    const [etcdPort, peerPort, apiPort] = [
      await freePort(),
      await freePort(),
      await freePort(host),
    ];
    const etcd = `http://127.0.0.1:${etcdPort}`;
    run("etcd", [
      ...["--data-dir", f("etcd"), "--name", "engine", "--unsafe-no-fsync"],
      ...["--listen-client-urls", etcd, "--advertise-client-urls", etcd],
      ...["--listen-peer-urls", `http://127.0.0.1:${peerPort}`],
      ...["--initial-advertise-peer-urls", `http://127.0.0.1:${peerPort}`],
      ...["--initial-cluster", `engine=http://127.0.0.1:${peerPort}`],
      ...["--listen-metrics-urls", ""],
    ]);
    run("kube-apiserver", [
      ...["--etcd-servers", etcd, "--bind-address", host, "--secure-port", String(apiPort)],
      ...["--advertise-address", host],
      ...(realNodes
        ? [
            ...["--authorization-mode", "Node,RBAC"],
            ...["--kubelet-preferred-address-types", "InternalIP,Hostname"],
            ...["--kubelet-client-certificate", f("admin.crt")],
            ...["--kubelet-client-key", f("admin.key")],
          ]
        : ["--endpoint-reconciler-type", "none", "--authorization-mode", "RBAC"]),
      ...["--tls-cert-file", f("apiserver.crt"), "--tls-private-key-file", f("apiserver.key")],
      ...["--client-ca-file", f("ca.crt"), "--cert-dir", f("apiserver-certs")],
      ...["--service-account-issuer", "https://kubernetes.default.svc.cluster.local"],
      ...["--service-account-key-file", f("sa.pub")],
      ...["--service-account-signing-key-file", f("sa.key")],
      ...["--service-cluster-ip-range", SERVICE_CIDR],
      "--allow-privileged=true",
    ]);
    const server = `https://${host}:${apiPort}`;
    const kubeconfig = writeKubeconfig(dir, server);
    const api = kubeApi(dir, host, apiPort);
    await waitFor(
      "kube-apiserver",
      async () => (await api.request("GET", "/readyz")).status === 200,
      120_000,
      logs,
    );
    run("kube-controller-manager", [
      ...["--kubeconfig", kubeconfig, "--leader-elect=false", "--secure-port", "0"],
      ...["--service-account-private-key-file", f("sa.key"), "--root-ca-file", f("ca.crt")],
      "--use-service-account-credentials=false",
    ]);
    run("kube-scheduler", [
      ...["--kubeconfig", kubeconfig, "--leader-elect=false", "--secure-port", "0"],
    ]);
    if (!realNodes)
      run("kwok", [
        ...["--kubeconfig", kubeconfig],
        ...["--config", options.kwokStages ?? path.join(bin, "kwok-stages.yaml")],
        ...[
          "--manage-all-nodes=false",
          `--manage-nodes-with-annotation-selector=${KWOK_ANNOTATION}=fake`,
        ],
        ...["--cidr", "10.244.0.0/16", "--node-ip", "127.0.0.1"],
      ]);
    // The namespace controller has run once the default ServiceAccount exists.
    await waitFor(
      "kube-controller-manager",
      async () =>
        (await api.get("/api/v1/namespaces/default/serviceaccounts/default")) !== undefined,
      120_000,
      logs,
    );
    return {
      dir,
      kubeconfig,
      server,
      api,
      adminKey: fs.readFileSync(f("admin.key"), "utf8"),
      logs,
      stop,
      async addNode(name, labels) {
        const res = await api.request("POST", "/api/v1/nodes", {
          apiVersion: "v1",
          kind: "Node",
          metadata: {
            name,
            annotations: { [KWOK_ANNOTATION]: "fake" },
            labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", ...labels },
          },
          spec: {},
        });
        if (res.status !== 201) throw new Error(`node ${name}: ${res.status} ${res.body}`);
        await waitFor(`kwok node ${name}`, () => nodeIsReady(api, name), 60_000, logs);
      },
    };
  } catch (err) {
    // waitFor's error carries the components' logs; the temp dir goes with the processes.
    await stop();
    throw err;
  }
}
