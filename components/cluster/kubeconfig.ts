// Reading a kubeconfig the lab brought (`cluster.kubeconfig`): which context is used and where
// its API server is. Pure; the config stage has already checked the file is a kubeconfig.
import { parse } from "yaml";

interface KubeconfigDoc {
  readonly "current-context"?: string;
  readonly contexts?: readonly {
    readonly name: string;
    readonly context?: { readonly cluster?: string; readonly user?: string };
  }[];
  readonly clusters?: readonly {
    readonly name: string;
    readonly cluster?: {
      readonly server?: string;
      readonly "certificate-authority-data"?: string;
      readonly "insecure-skip-tls-verify"?: boolean;
    };
  }[];
  readonly users?: readonly {
    readonly name: string;
    readonly user?: {
      readonly token?: string;
      readonly "client-certificate-data"?: string;
      readonly "client-key-data"?: string;
    };
  }[];
}

/**
 * How to reach the API server of one context: address and credentials (secret material). PEM
 * text, not Buffers: it travels inside Pulumi outputs, which do not keep Buffers intact.
 */
export interface ClusterAccess {
  readonly context: string;
  readonly server: string;
  readonly ca: string | undefined;
  readonly insecure: boolean;
  readonly token: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
}

/** The context names of a kubeconfig text and its current-context; undefined when it is not one. */
export function kubeconfigContexts(
  text: string,
): { names: string[]; current?: string } | undefined {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return undefined;
  }
  const d = doc as KubeconfigDoc | null;
  if (
    typeof d !== "object" ||
    d === null ||
    !Array.isArray(d.clusters) ||
    !Array.isArray(d.contexts)
  )
    return undefined;
  const names = d.contexts.flatMap((c) => (typeof c?.name === "string" ? [c.name] : []));
  const current = d["current-context"];
  return { names, current: typeof current === "string" && current !== "" ? current : undefined };
}

const b64 = (v: string | undefined): string | undefined =>
  v === undefined ? undefined : Buffer.from(v, "base64").toString("utf8");

/** The API server and credentials of `context` (default: current-context) in `text`. */
export function clusterAccess(text: string, context?: string): ClusterAccess {
  const doc = parse(text) as KubeconfigDoc;
  const name = context ?? doc["current-context"];
  const ctx = doc.contexts?.find((c) => c.name === name)?.context;
  if (name === undefined || ctx === undefined)
    throw new Error(`the kubeconfig has no context ${JSON.stringify(name)}`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (cluster?.server === undefined)
    throw new Error(`context ${JSON.stringify(name)} names no cluster with a server`);
  const user = doc.users?.find((u) => u.name === ctx.user)?.user;
  return {
    context: name,
    server: cluster.server,
    ca: b64(cluster["certificate-authority-data"]),
    insecure: cluster["insecure-skip-tls-verify"] === true,
    token: user?.token,
    cert: b64(user?.["client-certificate-data"]),
    key: b64(user?.["client-key-data"]),
  };
}
