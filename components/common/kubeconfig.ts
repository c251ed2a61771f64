// Reading a kubeconfig the lab brought (`cluster.kubeconfig`) the way kubectl does, through
// @kubernetes/client-node: certificate and key files (relative to the kubeconfig's folder), token
// files, exec and auth-provider plugins, proxy-url and a server URL with a path all work as they
// do for the kubernetes provider. A leaf: the config stage and the cluster stage both use it.
import * as fs from "node:fs";
import * as path from "node:path";
import { KubeConfig, User } from "@kubernetes/client-node";
import { parse } from "yaml";

/**
 * Which kubeconfig and context rosfleet's own API requests use. Plain strings, no loaded object:
 * it travels inside (secret) Pulumi outputs, which keep only plain data intact.
 */
export interface ClusterAccess {
  /** The kubeconfig's path, or its text (`cluster.kubeconfig` as a secret). */
  readonly kubeconfig: { readonly file: string } | { readonly text: string };
  /** Undefined: the kubeconfig's current-context. */
  readonly context: string | undefined;
}

/** An error's message, for a message of rosfleet's own. */
export const describeError = (err: unknown): string =>
  err instanceof Error ? err.message : String(err);

/** The users' `tokenFile`s (kubectl's key) by user name, as the kubeconfig writes them. */
function tokenFiles(text: string): Map<string, string> {
  const doc = parse(text) as { users?: { name?: unknown; user?: { tokenFile?: unknown } }[] };
  return new Map(
    (Array.isArray(doc?.users) ? doc.users : []).flatMap((u) =>
      typeof u?.name === "string" && typeof u.user?.tokenFile === "string"
        ? [[u.name, u.user.tokenFile] as const]
        : [],
    ),
  );
}

/**
 * kubectl reads a user's `tokenFile` (relative to the kubeconfig's folder) at each request;
 * client-node knows only a `token-file` key and keeps the file's newline. So the token kubectl
 * would send is read here, whenever the kubeconfig is loaded for a request.
 */
function withTokenFiles(kc: KubeConfig, text: string, dir: string): KubeConfig {
  const files = tokenFiles(text);
  if (files.size === 0) return kc;
  const users: User[] = kc.getUsers().map((u) => {
    const file = files.get(u.name);
    if (file === undefined || u.token !== undefined) return u;
    return { ...u, token: fs.readFileSync(path.resolve(dir, file), "utf8").trim() };
  });
  const loaded = new KubeConfig();
  loaded.loadFromOptions({
    clusters: kc.getClusters(),
    contexts: kc.getContexts(),
    users,
    currentContext: kc.getCurrentContext(),
  });
  return loaded;
}

/**
 * The kubeconfig loaded as kubectl would; throws with the library's reason when it is not one.
 * `forRequests` also reads the token files, which only a request needs (the config stage, which
 * reads contexts and servers, must not fail on a token file it has no use for).
 */
function load(kubeconfig: ClusterAccess["kubeconfig"], forRequests = false): KubeConfig {
  const kc = new KubeConfig();
  if ("file" in kubeconfig) {
    kc.loadFromFile(kubeconfig.file);
    if (!forRequests) return kc;
    const text = fs.readFileSync(kubeconfig.file, "utf8");
    return withTokenFiles(kc, text, path.dirname(kubeconfig.file));
  }
  kc.loadFromString(kubeconfig.text);
  return forRequests ? withTokenFiles(kc, kubeconfig.text, process.cwd()) : kc;
}

/**
 * The context names of a kubeconfig text and its current-context; `invalid` says why it is not
 * a kubeconfig (unparsable, an entry without a name, no clusters or no contexts).
 */
export function kubeconfigContexts(
  text: string,
): { names: string[]; current?: string } | { invalid: string } {
  let kc: KubeConfig;
  try {
    kc = load({ text });
  } catch (err) {
    return { invalid: describeError(err) };
  }
  if (kc.getClusters().length === 0 || kc.getContexts().length === 0)
    return { invalid: "it lists no clusters or no contexts" };
  const current = kc.getCurrentContext();
  return {
    names: kc.getContexts().map((c) => c.name),
    current: current === "" ? undefined : current,
  };
}

/** The loaded kubeconfig with `access.context` (else its current-context) made current, checked
 * to name a cluster with a server; `forRequests`: with the token files read. */
export function loadAccess(access: ClusterAccess, forRequests = false): KubeConfig {
  const kc = load(access.kubeconfig, forRequests);
  const name = access.context ?? kc.getCurrentContext();
  if (kc.getContextObject(name) === null)
    throw new Error(`the kubeconfig has no context ${JSON.stringify(name)}`);
  kc.setCurrentContext(name);
  const server = kc.getCurrentCluster()?.server;
  if (server === undefined || server === "")
    throw new Error(`context ${JSON.stringify(name)} names no cluster with a server`);
  return kc;
}

/** The API server URL of the access's context, e.g. https://10.0.0.5:16443. */
export const kubeconfigServer = (access: ClusterAccess): string =>
  loadAccess(access).getCurrentCluster()?.server ?? "";
