// A stand-in for the Kubernetes API server's HTTPS front: a real TLS server on 127.0.0.1 with a
// certificate made for the test (openssl), recording each request and answering with the
// status the test chooses. Enough for the two callers that speak to the API directly: the
// check Jobs' report writer and the program's CRD lookup.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { writeKubeconfig } from "./kubeconfig";

export interface ApiRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

export interface FakeApi {
  readonly port: number;
  /** PEM of the CA that signed the server's certificate (it is its own). */
  readonly ca: string;
  readonly dir: string;
  readonly requests: ApiRequest[];
  /** The status each request gets (default 200). */
  status: (req: ApiRequest) => number;
  /** The JSON body each request gets (default: a bare object or Status of that code). */
  body: ((req: ApiRequest, status: number) => unknown) | undefined;
  close(): Promise<void>;
}

/** A TLS server for 127.0.0.1, valid for a day. */
function certificate(dir: string): { key: string; cert: string } {
  const key = path.join(dir, "key.pem");
  const cert = path.join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
      ...["-addext", "subjectAltName=IP:127.0.0.1"],
    ],
    { stdio: "ignore" },
  );
  return { key: fs.readFileSync(key, "utf8"), cert: fs.readFileSync(cert, "utf8") };
}

export async function startFakeApi(): Promise<FakeApi> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-api-"));
  const { key, cert } = certificate(dir);
  const requests: ApiRequest[] = [];
  const api: { status: FakeApi["status"]; body: FakeApi["body"] } = {
    status: () => 200,
    body: undefined,
  };
  const server = https.createServer({ key, cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const request = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      requests.push(request);
      const status = api.status(request);
      res.writeHead(status, { "Content-Type": "application/json" });
      const body = api.body?.(request, status) ?? {
        kind: status === 200 ? "Object" : "Status",
        code: status,
      };
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    ca: cert,
    dir,
    requests,
    get status() {
      return api.status;
    },
    set status(fn) {
      api.status = fn;
    },
    get body() {
      return api.body;
    },
    set body(fn) {
      api.body = fn;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        fs.rmSync(dir, { recursive: true, force: true });
      }),
  };
}

/**
 * A FakeApi for one `describe` block: started before its tests, closed after them, and reset
 * (no requests, status 200, default bodies) before each. Call inside the block.
 */
export function fakeApiForSuite(): () => FakeApi {
  let api: FakeApi | undefined;
  before(async () => {
    api = await startFakeApi();
  });
  after(async () => api?.close());
  beforeEach(() => {
    if (api === undefined) return;
    api.requests.length = 0;
    api.status = () => 200;
    api.body = undefined;
  });
  return () => {
    if (api === undefined) throw new Error("the fake API starts in before()");
    return api;
  };
}

/** A kubeconfig (bearer token `admin-token-for-tests`) for `api`, in its directory. */
export const kubeconfigFor = (api: FakeApi): string =>
  writeKubeconfig(
    path.join(api.dir, "kubeconfig.yaml"),
    {
      server: `https://127.0.0.1:${api.port}`,
      "certificate-authority-data": Buffer.from(api.ca).toString("base64"),
    },
    { token: "admin-token-for-tests" },
  );

/** A pod's ServiceAccount files for `api` (token, namespace, the API's CA) in a new temp dir. */
export function serviceAccountDir(api: FakeApi, token: string, namespace = "rosfleet"): string {
  const sa = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-sa-"));
  fs.writeFileSync(path.join(sa, "token"), `${token}\n`);
  fs.writeFileSync(path.join(sa, "namespace"), namespace);
  fs.writeFileSync(path.join(sa, "ca.crt"), api.ca);
  return sa;
}
