// Questions the kubernetes provider cannot answer without failing the whole deployment: a
// provider read of a missing object is an engine error ("resource ... does not exist") that no
// program can turn into advice. One GET through the API server, with the lab's credentials.
import * as https from "node:https";
import type { ClusterAccess } from "./kubeconfig";

/** The GET's outcome: found, not found, or why it could not be asked. */
export type Lookup = { readonly found: boolean } | { readonly error: string };

/** GETs `apiPath` on the cluster; 200 is found, 404 not found, anything else an error. */
export function lookup(access: ClusterAccess, apiPath: string, timeoutMs = 15000): Promise<Lookup> {
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
        res.resume();
        const status = res.statusCode ?? 0;
        if (status === 200) resolve({ found: true });
        else if (status === 404) resolve({ found: false });
        else resolve({ error: `GET ${url.pathname}: HTTP ${status}` });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer in ${timeoutMs / 1000} s`)));
    req.on("error", (err) => resolve({ error: `GET ${url.pathname}: ${err.message}` }));
    req.end();
  });
}

/** The CRD of Multus's NetworkAttachmentDefinition. */
export const MULTUS_CRD = "network-attachment-definitions.k8s.cni.cncf.io";

/** Whether the cluster has the CustomResourceDefinition `name`. */
export const crdLookup = (access: ClusterAccess, name: string): Promise<Lookup> =>
  lookup(access, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
