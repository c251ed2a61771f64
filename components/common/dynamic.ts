// What rosfleet's dynamic resources share (the dashboard's token, the pull probe). Their
// provider code is serialized into the state and run by Pulumi's dynamic-provider host, a plain
// `node` without this project's TypeScript: what they call from here uses nothing but
// `require` of installed packages by absolute path.
import * as pulumi from "@pulumi/pulumi";
import type { BatchV1Api, CoreV1Api } from "@kubernetes/client-node";
import { ClusterAccess, loadAccess } from "./kubeconfig";

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

/**
 * A core API client for `access`, loaded as kubectl loads it (common/kubeconfig.ts: certificate
 * files, token files, exec plugins). Serialized with the provider, it requires the client
 * library by name: the host resolves that from the project's directory, where Pulumi runs it.
 */
export function coreApi(access: ClusterAccess): CoreV1Api {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const k8s = require("@kubernetes/client-node") as typeof import("@kubernetes/client-node");
  return loadAccess(access, true).makeApiClient(k8s.CoreV1Api);
}

/** A batch API client for `access` (Jobs), loaded as coreApi's. */
export function batchApi(access: ClusterAccess): BatchV1Api {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const k8s = require("@kubernetes/client-node") as typeof import("@kubernetes/client-node");
  return loadAccess(access, true).makeApiClient(k8s.BatchV1Api);
}
