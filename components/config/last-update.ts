// What this stack's own state says its lab is, for the rules on how a lab may change in one
// `pulumi up` (quorum.ts, replacement.ts). The engine saves each step as it ends, so the state
// follows what really happened: a server whose removal succeeded is gone from it even when a
// later step of that update failed, and one whose removal failed is still there. Pure: the
// reading is previous.ts's.
import { shellQuote } from "../shell";
import { RecordedHostKey, sshAddress } from "./host-keys";
import { isLocalHost } from "./raw";

/** What the last update left, as far as these rules need it. */
export interface PreviousLab {
  /** The k3s servers (the first server first, the others by name); [] on a first update. */
  readonly servers: readonly string[];
  /** rosfleet installed k3s on the machines (not `cluster.kubeconfig`). */
  readonly installed: boolean;
  /** Where each machine's k3s was installed: name → host (lowercase, `localhost` for local). */
  readonly hosts: Readonly<Record<string, string>>;
  /** What the cluster said of its servers at this run, asked only when one leaves: name → why
   * it is not Ready (a Ready server is absent). Undefined: not asked, or no answer. */
  readonly down?: Readonly<Record<string, string>>;
  /** The stack was on an existing cluster (`cluster.kubeconfig`). */
  readonly existing?: boolean;
  /** Its kubernetes provider's `clusterIdentifier`. */
  readonly identity?: string;
  /** The SSH host key each machine's steps connected with (host-keys.ts): name → where, which. */
  readonly hostKeys?: Readonly<Record<string, RecordedHostKey>>;
}

export const NO_PREVIOUS_LAB: PreviousLab = { servers: [], installed: false, hosts: {} };

/** This run's cluster next to the last update's: kept (its provider identity with it), or new
 * — another first server, or a switch between k3s and `cluster.kubeconfig` — named by `fresh`. */
export interface ClusterContinuity {
  readonly identity?: string;
  readonly fresh?: string;
}

/** Whether this run's cluster (`existing`, or k3s with `first` as its first server) is the last
 * update's. */
export function continuity(
  previous: PreviousLab,
  now: { readonly existing: boolean; readonly first?: string },
): ClusterContinuity {
  const kept = previous.existing
    ? now.existing
    : !previous.installed ||
      previous.servers.length === 0 ||
      (!now.existing && previous.servers[0] === now.first);
  if (kept) return { identity: previous.identity };
  return { identity: previous.identity, fresh: now.existing ? "existing" : (now.first ?? "k3s") };
}

/**
 * The kubernetes provider's `clusterIdentifier`: the last update's for the same cluster (so an
 * upgrade of rosfleet replaces nothing), a new one for a new cluster — the provider is then
 * replaced, and with it every Kubernetes object, created anew on the new cluster (the state
 * would otherwise believe they exist there).
 */
export function providerIdentity(c: ClusterContinuity, base: string): string {
  if (c.fresh === undefined) return c.identity ?? base;
  const fresh = `${base}@${c.fresh}`;
  return fresh === c.identity ? `${fresh}-2` : fresh;
}

/** One resource of a stack's state, as the engine's `readStackResourceOutputs` hands it. */
export interface StateResource {
  readonly type: string;
  readonly outputs?: Readonly<Record<string, unknown>>;
}

/** A host as the rules compare them (the duplicate-host rule's way). */
export const hostKey = (host: string): string =>
  isLocalHost(host) ? "localhost" : host.trim().toLowerCase();

const MACHINE = "rosfleet:machine:Machine";
const CLUSTER = "rosfleet:k3s:Cluster";
const EXISTING = "rosfleet:cluster:Existing";
const K8S_PROVIDER = "pulumi:providers:kubernetes";
const COMMANDS: ReadonlySet<string> = new Set(["command:remote:Command", "command:local:Command"]);

/** `urn:pulumi:<stack>::<project>::<parent types $ type>::<name>` → its types and name. */
function parseUrn(urn: string): { types: string[]; name: string } | undefined {
  const parts = urn.split("::");
  if (parts.length < 4 || !(parts[0] ?? "").startsWith("urn:pulumi:")) return undefined;
  return { types: (parts[2] ?? "").split("$"), name: parts.slice(3).join("::") };
}

/** The machine of a step `<machine>-<suffix>` that is a Command right under a machine. */
function stepMachine(urn: string, type: string, suffix: string): string | undefined {
  const parsed = parseUrn(urn);
  if (parsed === undefined || !COMMANDS.has(type)) return undefined;
  if (parsed.types.at(-2) !== MACHINE || !parsed.name.endsWith(`-${suffix}`)) return undefined;
  return parsed.name.slice(0, -suffix.length - 1);
}

// The install step's script sets its role as a parameter (shell.ts renderScript).
const roleLine = (role: string): string => `\nROLE=${shellQuote(role)}\n`;

function roleOf(outputs: StateResource["outputs"]): "server" | "agent" | undefined {
  const stdin = outputs?.["stdin"];
  if (typeof stdin !== "string") return undefined;
  if (stdin.includes(roleLine("server"))) return "server";
  return stdin.includes(roleLine("agent")) ? "agent" : undefined;
}

/** A remote step's `connection` as its state holds it (the fields these rules read). */
function connectionOf(
  outputs: StateResource["outputs"],
): { host?: unknown; port?: unknown; hostKey?: unknown } | undefined {
  const connection = outputs?.["connection"];
  return typeof connection === "object" && connection !== null ? connection : undefined;
}

function hostOf(type: string, outputs: StateResource["outputs"]): string | undefined {
  if (type === "command:local:Command") return "localhost";
  const host = connectionOf(outputs)?.host;
  return typeof host === "string" ? hostKey(host) : undefined;
}

/** The host key a machine's preflight connected with, and where. */
function recordedHostKey(outputs: StateResource["outputs"]): RecordedHostKey | undefined {
  const c = connectionOf(outputs);
  if (typeof c?.host !== "string" || typeof c.hostKey !== "string") return undefined;
  return { address: sshAddress(c.host, typeof c.port === "number" ? c.port : 22), key: c.hostKey };
}

/** The lab as the stack's state has it: each machine's install step says its role and host,
 * the first server is the one its token and kubeconfig are read from. */
export function labFromState(resources: Readonly<Record<string, StateResource>>): PreviousLab {
  const servers: string[] = [];
  const hosts: Record<string, string> = {};
  let first: string | undefined;
  let installed = false;
  let existing = false;
  let identity: string | undefined;
  const hostKeys: Record<string, RecordedHostKey> = {};
  for (const [urn, r] of Object.entries(resources)) {
    const checked = stepMachine(urn, r.type, "preflight");
    const recorded = checked === undefined ? undefined : recordedHostKey(r.outputs);
    if (checked !== undefined && recorded !== undefined) hostKeys[checked] = recorded;
    const types = parseUrn(urn)?.types ?? [];
    if (types.at(-1) === CLUSTER) installed = true;
    if (types.at(-1) === EXISTING) existing = true;
    const id = r.outputs?.["clusterIdentifier"];
    if (
      types.at(-1) === K8S_PROVIDER &&
      [CLUSTER, EXISTING].includes(types.at(-2) ?? "") &&
      typeof id === "string"
    )
      identity = id;
    first ??= stepMachine(urn, r.type, "kubeconfig");
    const machine = stepMachine(urn, r.type, "install");
    if (machine === undefined) continue;
    const host = hostOf(r.type, r.outputs);
    if (host !== undefined) hosts[machine] = host;
    if (roleOf(r.outputs) === "server") servers.push(machine);
  }
  servers.sort();
  const ordered =
    first !== undefined && servers.includes(first)
      ? [first, ...servers.filter((s) => s !== first)]
      : servers;
  return {
    servers: installed ? ordered : [],
    installed,
    hosts: installed ? hosts : {},
    ...(existing && !installed ? { existing } : {}),
    ...(identity === undefined ? {} : { identity }),
    ...(Object.keys(hostKeys).length === 0 ? {} : { hostKeys }),
  };
}

/** The admin kubeconfig the cluster component keeps (secret; for the servers' health). */
export function kubeconfigFromState(
  resources: Readonly<Record<string, StateResource>>,
): string | undefined {
  for (const [urn, r] of Object.entries(resources))
    if (parseUrn(urn)?.types.at(-1) === CLUSTER) {
      const kubeconfig = r.outputs?.["kubeconfig"];
      if (typeof kubeconfig === "string") return kubeconfig;
    }
  return undefined;
}
