// How many k3s servers a lab has, and how that may change in one `pulumi up`. With HA, the
// servers' embedded etcd keeps working while a majority of its members remains. rosfleet removes
// leaving servers one at a time, each Node deleted (k3s then removes its etcd member) before its
// uninstall; still, one `up` may take away no more servers than etcd tolerates losing, and the
// first server — which the others joined, and where the cluster-wide steps run — stays first.
import { PreviousLab, hostKey } from "./last-update";
import type { Problem } from "./problem";
import type { Dict, MachineView } from "./raw";

const quorumOf = (members: number): number => Math.floor(members / 2) + 1;
const list = (names: readonly string[]): string => names.join(", ");

/** The servers of `machines` in order (named ones only). */
const serverNames = (views: readonly MachineView[]): string[] =>
  views.flatMap((v) => (v.role === "server" && v.name !== undefined ? [v.name] : []));

function serverCount(views: readonly MachineView[], previous: readonly string[]): Problem[] {
  const servers = views.filter((v) => v.role === "server").length;
  if (servers === 0)
    return [
      {
        path: "machines",
        message: 'no machine has role "server": a lab needs 1 server, or an odd number ≥ 3 for HA',
      },
    ];
  // An even count is allowed only as the step down from one more (3 → 2 → 1), which keeps a
  // majority of the members at each `up`.
  if (servers % 2 === 0 && previous.length !== servers + 1)
    return [
      {
        path: "machines",
        message: `${servers} servers cannot keep an etcd quorum: use 1 server, or an odd number ≥ 3 for HA (${servers} is allowed only on the way down from ${servers + 1}, one server per pulumi up)`,
      },
    ];
  return [];
}

function serverChanges(views: readonly MachineView[], previous: readonly string[]): Problem[] {
  if (previous.length < 2) return [];
  const now = serverNames(views);
  const problems: Problem[] = [];
  const [first] = previous;
  if (now[0] !== first)
    problems.push({
      path: "machines",
      message: `${first} is the first server of the HA cluster (the others joined it; the cluster-wide steps run there): keep it the first server in machines${now.includes(first) ? "" : " — it can leave only as the last server, after the others"}`,
    });
  const leaving = leavingServers(views, previous);
  // A minority may leave at once (what etcd tolerates losing), and always one: the step from 2
  // servers to 1 is the only way down, and removing one member while both run keeps quorum.
  const tolerated = Math.max(1, previous.length - quorumOf(previous.length));
  if (leaving.length > tolerated)
    problems.push({
      path: "machines",
      message: `this change takes ${leaving.length} of the cluster's ${previous.length} servers away at once (${list(leaving)}; ${list(previous)} before): etcd keeps quorum only while ${quorumOf(previous.length)} of its ${previous.length} members stay, so at most ${tolerated} may leave per pulumi up. Do it in steps: first remove only ${list(leaving.slice(-tolerated))} (or make it an agent), pulumi up, then the next — each up removes a server's etcd member and waits until etcd is healthy before uninstalling it`,
    });
  return problems;
}

/** The last update's servers that this configuration takes away (removed, or made agents). */
export function leavingServers(
  views: readonly MachineView[],
  previous: readonly string[],
): string[] {
  const now = serverNames(views);
  return previous.filter((name) => !now.includes(name));
}

/** A server leaves while another is down: its etcd member's removal would end quorum. */
function leavingWhileDown(views: readonly MachineView[], previous: PreviousLab): Problem[] {
  const leaving = leavingServers(views, previous.servers);
  const down = Object.entries(previous.down ?? {}).filter(([name]) => !leaving.includes(name));
  if (leaving.length === 0 || down.length === 0) return [];
  const dead = list(down.map(([name]) => name));
  const rest = previous.servers.filter((s) => !leaving.includes(s));
  return [
    {
      path: "machines",
      message: `${list(leaving)} cannot leave the cluster while ${down.map(([name, why]) => `${name} is ${why}`).join(", ")}: removing ${list(leaving)}'s etcd member would leave etcd ${list(rest)}, with ${dead} dead — no quorum, and the cluster's API would go. Remove the dead server first: keep ${list(leaving)} in machines, delete ${dead} from them, pulumi up (the healthy members keep quorum); then remove ${list(leaving)}. Or bring ${dead} back`,
    },
  ];
}

/** A new name on the machine of a leaving HA server: a rename in place. */
function renamedInPlace(views: readonly MachineView[], previous: PreviousLab): Problem[] {
  if (previous.servers.length < 2) return [];
  const names = new Set(views.flatMap((v) => (v.name === undefined ? [] : [v.name])));
  return views.flatMap((v) => {
    if (v.name === undefined || v.host === undefined || v.name in previous.hosts) return [];
    const host = hostKey(v.host);
    const old = previous.servers.find((s) => !names.has(s) && previous.hosts[s] === host);
    if (old === undefined) return [];
    return [
      {
        path: `${v.path}.name`,
        message: `${v.name} is a new name for ${v.host}, the machine of server ${old}, which leaves in this change: ${v.name}'s steps would run first and k3s would keep ${old}'s etcd member, which ${old}'s removal then deletes — the cluster runs on a member fewer and ${v.name} crash-loops. Rename a server in two ups: remove ${old} (pulumi up: its etcd member goes, then k3s is uninstalled), then add the machine as ${v.name} (pulumi up)`,
      },
    ];
  });
}

/** The rules on servers: their number, and how it may change since the last update. */
export function serverRules(
  views: readonly MachineView[],
  raw: Dict,
  previous: PreviousLab,
): Problem[] {
  const machines = raw["machines"];
  // An existing cluster has its own servers; its machines have no role.
  if (!Array.isArray(machines) || raw["cluster"] !== undefined) return [];
  if (machines.length === 0)
    return [{ path: "machines", message: "at least one machine is required (the k3s server)" }];
  return [
    ...serverCount(views, previous.servers),
    ...serverChanges(views, previous.servers),
    ...leavingWhileDown(views, previous),
    ...renamedInPlace(views, previous),
  ];
}
