// The `rosEnv` output: what a ROS 2 process on a machine of the lab (the laptop that is the k3s
// server, typically) sets to join the lab's graph in the current discovery mode — the same
// settings the lab's own CLI containers have, as variables and, for a Fast DDS that ignores the
// newer ones (Humble's), as the XML profile they stand for. Pure.
import type { DiscoveryMode } from "../config";
import { fastddsProfiles, serverAddresses, SUPER_CLIENT_PROFILE, CLIENT_PROFILE } from "./render";

export interface LabRosEnv {
  readonly mode: DiscoveryMode;
  /** Variable → value. */
  readonly env: Readonly<Record<string, string>>;
  /** The same as one `export …` line for a shell (`eval "$(… | jq -r .shell)"`). */
  readonly shell: string;
  /** The Fast DDS XML profile of the same settings: saved to a file that
   * FASTRTPS_DEFAULT_PROFILES_FILE names, it does what FASTDDS_BUILTIN_TRANSPORTS and
   * ROS_SUPER_CLIENT do, on every Fast DDS (Humble's reads no such variable). Absent: none needed. */
  readonly profile?: string;
  /** Where a process with these settings joins the graph. */
  readonly where: string;
}

const quote = (v: string) => (/^[A-Za-z0-9_.:/-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);

/** `rosEnv` for the lab's mode, domain and (discovery-server) the servers' `ip:port;…`. */
export function labRosEnv(
  mode: DiscoveryMode,
  domainId: number,
  discoveryServer: string | undefined,
): LabRosEnv {
  const env: Record<string, string> = { ROS_DOMAIN_ID: String(domainId) };
  let profile: string | undefined;
  let where: string;
  switch (mode) {
    case "discovery-server": {
      const servers = discoveryServer ?? "";
      env["ROS_DISCOVERY_SERVER"] = servers;
      // The CLI's view: every participant, not only those it talks to.
      env["ROS_SUPER_CLIENT"] = "TRUE";
      env["FASTDDS_BUILTIN_TRANSPORTS"] = "UDPv4";
      profile = fastddsProfiles(mode, serverAddresses(servers))[SUPER_CLIENT_PROFILE];
      where =
        "on a node of the cluster (the laptop that is the k3s server, a Pi): the discovery servers are their Services' cluster IPs, which kube-proxy routes on the nodes only";
      break;
    }
    case "host-network":
      // The machine's own processes and its host-network pods share its host id, not /dev/shm.
      env["FASTDDS_BUILTIN_TRANSPORTS"] = "UDPv4";
      profile = fastddsProfiles(mode, [])[CLIENT_PROFILE];
      where = "on any machine whose multicast reaches the nodes (their LAN)";
      break;
    case "multus":
      where =
        "on a machine of the wired LAN the pods' macvlan interfaces are on (ros.multus.interface)";
      break;
    case "multicast":
      where =
        "nowhere outside the pods: plain pods are not on the machines' network (the negative control)";
      break;
  }
  const shell = `export ${Object.entries(env)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(" ")}`;
  return { mode, env, shell, ...(profile === undefined ? {} : { profile }), where };
}
