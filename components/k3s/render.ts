// Pure renderers for what k3s receives: config.yaml, the API address, the kubeconfig rewrite.
import { parse, stringify } from "yaml";
import { K3sSettings, Machine, configFlags } from "../config";

/** Where k3s keeps the join token on a machine (0600, written by join.sh): a joining server's
 * is the server token, an agent's the agent token. */
export const TOKEN_FILE = "/etc/rancher/k3s/token";
export const SERVER_TOKEN = "/var/lib/rancher/k3s/server/token";
/** A server's agent password (0600, the same on every server: made by the first server's
 * install.sh, handed to the others by their join step), named by `agent-token-file`. */
export const AGENT_PASSWORD_FILE = "/etc/rancher/k3s/agent-token";
/** The agent token as k3s writes it from that password (`K10<CA hash>::node:<password>`):
 * all an agent receives — it admits agents only, never a server. */
export const AGENT_TOKEN = "/var/lib/rancher/k3s/server/agent-token";
export const KUBECONFIG_FILE = "/etc/rancher/k3s/k3s.yaml";
export const API_PORT = 6443;

/** Where the cluster is reached: `k3s.apiEndpoint`, else the first server's host. */
export const apiHost = (k3s: Pick<K3sSettings, "apiEndpoint">, first: Machine): string =>
  k3s.apiEndpoint ?? first.host;

/** `https://<host>:6443`, with IPv6 literals in brackets. */
export function serverUrl(host: string): string {
  const h = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `https://${h}:${API_PORT}`;
}

type ConfigValue = string | boolean | string[];

/**
 * Turns extra CLI flags (`--disable=traefik`, `--flag`) into config.yaml keys: k3s accepts
 * every flag there, and a flag given twice becomes a list. Flags in config.yaml survive a
 * re-run of the installer, which flags on its command line do not (k3s #7095).
 */
export function flagsToConfig(flags: readonly string[]): Record<string, ConfigValue> {
  const config: Record<string, ConfigValue> = {};
  for (const flag of flags) {
    const m = /^--([a-z0-9][a-z0-9-]*)(?:=(.*))?$/.exec(flag);
    if (m === null) throw new Error(`not a k3s flag: ${flag}`);
    const [, key, value] = m;
    if (value === undefined) {
      config[key] = true;
      continue;
    }
    const previous = config[key];
    config[key] =
      previous === undefined || typeof previous === "boolean"
        ? value
        : Array.isArray(previous)
          ? [...previous, value]
          : [previous, value];
  }
  return config;
}

export interface K3sConfigArgs {
  readonly machine: Machine;
  /** The first server's host; undefined for the first server itself. */
  readonly joinHost: string | undefined;
  /** First server of an HA cluster (3+ servers): starts embedded etcd. */
  readonly clusterInit: boolean;
  /** `k3s.serverArgs` or `k3s.agentArgs`, as written in the stack. */
  readonly extraArgs: readonly string[];
  /** `k3s.apiEndpoint`: a server's certificate names it too. */
  readonly apiEndpoint?: string;
}

/**
 * The whole `/etc/rancher/k3s/config.yaml` of one machine. It holds no secret: the token is
 * referenced by `token-file`. Labels and taints are not here: they are applied through the API
 * (node.sh), so changing them is an update of the node, not a restart of k3s.
 */
export function renderK3sConfig(args: K3sConfigArgs): string {
  const { machine } = args;
  const config: Record<string, ConfigValue> = { "node-name": machine.name };
  if (machine.role === "server") {
    config["tls-san"] =
      args.apiEndpoint === undefined || args.apiEndpoint === machine.host
        ? [machine.host]
        : [machine.host, args.apiEndpoint];
    config["write-kubeconfig-mode"] = "0600";
    // Agents join with this token, not the server token (which makes a server, an etcd member).
    config["agent-token-file"] = AGENT_PASSWORD_FILE;
    if (args.clusterInit) config["cluster-init"] = true;
  }
  if (args.joinHost !== undefined) {
    config["server"] = serverUrl(args.joinHost);
    config["token-file"] = TOKEN_FILE;
  }
  // A Pi with both Wi-Fi and Ethernet: the address it registers with, the link flannel uses.
  if (machine.nodeIp !== undefined) config["node-ip"] = machine.nodeIp;
  if (machine.flannelIface !== undefined) config["flannel-iface"] = machine.flannelIface;
  if (machine.docker) config["docker"] = true;
  // --node-label / --node-taint are the machine's labels and taints now (config stage): applied
  // through the API, they change without a restart and go when removed.
  const extra = flagsToConfig(configFlags(args.extraArgs));
  // A `--tls-san` of the stack's adds a name to the certificate: rosfleet's names (the host and
  // k3s.apiEndpoint, which agents and the kubeconfig use) stay.
  const ownSans = config["tls-san"];
  const theirSans = extra["tls-san"];
  if (Array.isArray(ownSans) && theirSans !== undefined && typeof theirSans !== "boolean")
    extra["tls-san"] = [...new Set([...ownSans, ...[theirSans].flat()])];
  Object.assign(config, extra);
  return stringify(config);
}

interface Named {
  name?: string;
  cluster?: { server?: string };
  context?: { cluster?: string; user?: string };
}
interface Kubeconfig {
  clusters?: Named[];
  contexts?: Named[];
  users?: Named[];
  "current-context"?: string;
}

/**
 * Points k3s's kubeconfig (server `https://127.0.0.1:6443`, everything named `default`) at the
 * server's host and names it after the lab, so it works from the laptop and merges with others.
 */
export function rewriteKubeconfig(text: string, host: string, name: string): string {
  const doc = parse(text) as Kubeconfig | null;
  if (doc === null || typeof doc !== "object" || !Array.isArray(doc.clusters))
    throw new Error("the server's k3s.yaml is not a kubeconfig (no clusters)");
  const rename = (n: string | undefined) => (n === "default" ? name : n);
  for (const c of doc.clusters) {
    c.name = rename(c.name);
    if (c.cluster !== undefined) c.cluster.server = serverUrl(host);
  }
  for (const u of doc.users ?? []) u.name = rename(u.name);
  for (const c of doc.contexts ?? []) {
    c.name = rename(c.name);
    if (c.context !== undefined) {
      c.context.cluster = rename(c.context.cluster);
      c.context.user = rename(c.context.user);
    }
  }
  doc["current-context"] = rename(doc["current-context"]);
  return stringify(doc);
}
