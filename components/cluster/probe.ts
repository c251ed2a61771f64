// Questions about an existing cluster asked with one request through its API server, with the
// lab's credentials, rather than by provider reads: a provider read of a missing object is an
// engine error ("resource ... does not exist") that no program can turn into advice, and one read
// per node would put as many resources in the state and in every preview as the lab has nodes.
// The requests go through @kubernetes/client-node, which authenticates as kubectl does.
import { ApiException, ApiextensionsV1Api, CoreV1Api } from "@kubernetes/client-node";
import { ClusterAccess, loadAccess } from "../common/kubeconfig";

/** The lookup's outcome: found, not found, or why it could not be asked. */
export type Lookup = { readonly found: boolean } | { readonly error: string };

/** What went wrong with a request, in one line: the HTTP status, or the library's reason. */
function requestError(what: string, err: unknown, hints: Readonly<Record<number, string>> = {}) {
  if (err instanceof ApiException) {
    const code = Number(err.code);
    return {
      error: `${what}: HTTP ${code}${hints[code] === undefined ? "" : ` (${hints[code]})`}`,
    };
  }
  return { error: `${what}: ${err instanceof Error ? err.message : String(err)}` };
}

/** `request`, or a rejection after `timeoutMs` (a server that never answers must not hang `up`). */
async function bounded<T>(request: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs / 1000} s`)), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([request, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The CRD of Multus's NetworkAttachmentDefinition. */
export const MULTUS_CRD = "network-attachment-definitions.k8s.cni.cncf.io";

/** Whether the cluster has the CustomResourceDefinition `name`. */
export async function crdLookup(
  access: ClusterAccess,
  name: string,
  timeoutMs = 15000,
): Promise<Lookup> {
  const what = `GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`;
  try {
    const api = loadAccess(access, true).makeApiClient(ApiextensionsV1Api);
    await bounded(api.readCustomResourceDefinition({ name }), timeoutMs);
    return { found: true };
  } catch (err) {
    if (err instanceof ApiException && Number(err.code) === 404) return { found: false };
    return requestError(what, err);
  }
}

/** Every node of the cluster: name → labels. */
export type NodeLabels = ReadonlyMap<string, Readonly<Record<string, string>>>;

/** The cluster's nodes and their labels, in one list call; or why they could not be listed. */
export async function listNodes(
  access: ClusterAccess,
  timeoutMs = 15000,
): Promise<NodeLabels | { readonly error: string }> {
  try {
    const api = loadAccess(access, true).makeApiClient(CoreV1Api);
    const list = await bounded(api.listNode(), timeoutMs);
    return new Map(
      list.items.flatMap((n) =>
        n.metadata?.name === undefined ? [] : [[n.metadata.name, n.metadata.labels ?? {}]],
      ),
    );
  } catch (err) {
    return requestError("GET /api/v1/nodes", err, {
      403: "the kubeconfig's user may not list nodes",
    });
  }
}
