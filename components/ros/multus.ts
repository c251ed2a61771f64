// Pure renderers for `ros.discovery: multus`: Multus and whereabouts installed through k3s's
// own Helm controller (a HelmChart resource, so preview needs no cluster), pointed at k3s's CNI
// directories, and the macvlan attachment the ROS pods get as a second interface.
import { stringify } from "yaml";

export const MULTUS_CHART = {
  repo: "https://rke2-charts.rancher.io",
  chart: "rke2-multus",
  // The chart k3s's documentation installs Multus with; pinned.
  version: "v4.2.401",
};

const K3S_CNI_CONF_DIR = "/var/lib/rancher/k3s/agent/etc/cni/net.d";

/**
 * Where k3s looks for CNI plugins. Since the October 2024 releases it is a fixed
 * `data/cni`; before, the per-release bundle that `data/current` points to.
 */
export function k3sCniBinDir(version: string): string {
  const m = /^v(\d+)\.(\d+)\.(\d+)/.exec(version);
  const [major, minor, patch] = m === null ? [0, 0, 0] : m.slice(1).map(Number);
  const fixedFrom: Record<number, number> = { 28: 15, 29: 10, 30: 6, 31: 2 };
  const fixed =
    major > 1 || minor > 31 || (fixedFrom[minor] !== undefined && patch >= fixedFrom[minor]);
  return fixed ? "/var/lib/rancher/k3s/data/cni/" : "/var/lib/rancher/k3s/data/current/bin/";
}

/** The chart's values: k3s's paths for Multus, and whereabouts for cluster-wide IPAM. */
export function multusValues(k3sVersion: string): string {
  const binDir = k3sCniBinDir(k3sVersion);
  return stringify({
    config: {
      fullnameOverride: "multus",
      cni_conf: {
        confDir: K3S_CNI_CONF_DIR,
        binDir,
        kubeconfig: `${K3S_CNI_CONF_DIR}/multus.d/multus.kubeconfig`,
        multusAutoconfigDir: K3S_CNI_CONF_DIR,
      },
    },
    "rke2-whereabouts": {
      fullnameOverride: "whereabouts",
      enabled: true,
      cniConf: { confDir: K3S_CNI_CONF_DIR, binDir },
    },
  });
}

/**
 * The CNI config of the pods' second interface: macvlan on the machines' common NIC, with
 * addresses from `range` handed out cluster-wide by whereabouts (host-local would hand the
 * same addresses out on every node).
 */
export function macvlanConfig(nic: string, range: string): string {
  return JSON.stringify({
    cniVersion: "0.3.1",
    type: "macvlan",
    master: nic,
    mode: "bridge",
    ipam: { type: "whereabouts", range },
  });
}
