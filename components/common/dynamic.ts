// What rosfleet's dynamic resources share (the dashboard's token, the pull probe). Their
// provider code is serialized into the state and run by Pulumi's dynamic-provider host, a plain
// `node` without this project's TypeScript: what they call from here uses nothing but
// `require` of installed packages by absolute path.
import * as pulumi from "@pulumi/pulumi";
import type { CoreV1Api } from "@kubernetes/client-node";
import type { ClusterAccess } from "./kubeconfig";

/**
 * An explicit instance of Pulumi's dynamic-provider host. The default instance is handed the
 * whole stack config (for providers that read it), so every change of a `rosfleet:` key would
 * show as an update of it in `preview`; this one is given nothing.
 */
export class DynamicHost extends pulumi.ProviderResource {
  constructor(name: string, opts?: pulumi.ResourceOptions) {
    super("pulumi-nodejs", name, {}, opts);
  }
}

/** The client library by absolute path: the host resolves bare names from its own cwd. */
const CLIENT_NODE = require.resolve("@kubernetes/client-node");

/** A core API client for `access` (ESM-only package: require(esm), Node ≥ 22.12). */
export function coreApi(access: ClusterAccess): CoreV1Api {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const k8s = require(CLIENT_NODE) as typeof import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  if ("text" in access.kubeconfig) kc.loadFromString(access.kubeconfig.text);
  else kc.loadFromFile(access.kubeconfig.file);
  if (access.context !== undefined) kc.setCurrentContext(access.context);
  return kc.makeApiClient(k8s.CoreV1Api);
}
