// Questions about an existing cluster asked with one GET through its API server, with the lab's
// credentials, rather than by provider reads: a provider read of a missing object is an engine
// error ("resource ... does not exist") that no program can turn into advice, and one read per
// node would put as many resources in the state and in every preview as the lab has nodes.
import * as https from "node:https";
import type { ClusterAccess } from "./kubeconfig";

/** The GET's outcome: found, not found, or why it could not be asked. */
export type Lookup = { readonly found: boolean } | { readonly error: string };

/** A GET's answer: its status and body, or why there was none. */
type Answer = { readonly status: number; readonly body: string } | { readonly error: string };

function get(access: ClusterAccess, apiPath: string, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    const url = new URL(apiPath, access.server);
    const req = https.request(
      url,
      {
        method: "GET",
        ca: access.ca,
        cert: access.cert,
        key: access.key,
        rejectUnauthorized: !access.insecure,
        headers: {
          Accept: "application/json",
          ...(access.token === undefined ? {} : { Authorization: `Bearer ${access.token}` }),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer in ${timeoutMs / 1000} s`)));
    req.on("error", (err) => resolve({ error: `GET ${url.pathname}: ${err.message}` }));
    req.end();
  });
}

/** GETs `apiPath` on the cluster; 200 is found, 404 not found, anything else an error. */
export async function lookup(
  access: ClusterAccess,
  apiPath: string,
  timeoutMs = 15000,
): Promise<Lookup> {
  const answer = await get(access, apiPath, timeoutMs);
  if ("error" in answer) return answer;
  if (answer.status === 200) return { found: true };
  if (answer.status === 404) return { found: false };
  return { error: `GET ${apiPath}: HTTP ${answer.status}` };
}

/** The CRD of Multus's NetworkAttachmentDefinition. */
export const MULTUS_CRD = "network-attachment-definitions.k8s.cni.cncf.io";

/** Whether the cluster has the CustomResourceDefinition `name`. */
export const crdLookup = (access: ClusterAccess, name: string): Promise<Lookup> =>
  lookup(access, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);

/** Every node of the cluster: name → labels. */
export type NodeLabels = ReadonlyMap<string, Readonly<Record<string, string>>>;

interface NodeList {
  readonly items?: readonly {
    readonly metadata?: { readonly name?: string; readonly labels?: Record<string, string> };
  }[];
}

/** The cluster's nodes and their labels, in one list call; or why they could not be listed. */
export async function listNodes(
  access: ClusterAccess,
  timeoutMs = 15000,
): Promise<NodeLabels | { readonly error: string }> {
  const answer = await get(access, "/api/v1/nodes", timeoutMs);
  if ("error" in answer) return answer;
  if (answer.status !== 200)
    return {
      error: `GET /api/v1/nodes: HTTP ${answer.status}${answer.status === 403 ? " (the kubeconfig's user may not list nodes)" : ""}`,
    };
  const list = JSON.parse(answer.body) as NodeList;
  return new Map(
    (list.items ?? []).flatMap((n) =>
      n.metadata?.name === undefined ? [] : [[n.metadata.name, n.metadata.labels ?? {}]],
    ),
  );
}
