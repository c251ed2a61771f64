// Cross-key rules of the later stages' keys: ROS workloads, Multus, air-gapped k3s, registries.
import type { Problem } from "./problem";
import { Dict, MachineView, dict, duplicates, isDict, keyPath, str } from "./raw";
import { ARCHES, REGISTRY_SECRET_FIELDS } from "./schema";
import { defaultWorkloads } from "./workloads";

export function multusRules(raw: Dict, views: readonly MachineView[]): Problem[] {
  const ros = dict(raw, "ros");
  if (str(ros, "discovery") !== "multus") return [];
  const range = str(dict(ros, "multus"), "range");
  if (range === undefined)
    return [
      {
        path: "ros.multus.range",
        message:
          "required with ros.discovery multus: free addresses of the machines' LAN for the pods' second interfaces, e.g. 192.168.1.200/28",
      },
    ];
  const prefix = Number(/^\d+\.\d+\.\d+\.\d+\/(\d+)$/.exec(range)?.[1]);
  // A malformed range is the schema's to report.
  if (!Number.isInteger(prefix) || prefix > 32) return [];
  const need = multusAddresses(raw, views);
  // whereabouts hands out neither the network's nor the broadcast address.
  const has = Math.max(0, 2 ** (32 - prefix) - 2);
  if (need.total <= has) return [];
  // The smallest range that fits (the longest prefix).
  let fits = 30;
  while (fits > 8 && 2 ** (32 - fits) - 2 < need.total) fits--;
  return [
    {
      path: "ros.multus.range",
      message: `${range} gives ${has} addresses, but the lab's pods on ros-macvlan need up to ${need.total} at once (${need.detail}): pods past that wait in ContainerCreating; use a /${fits} or larger range of free LAN addresses`,
    },
  ];
}

/** How many pods of the lab hold a Multus address at once, at most: the workloads' pods (the
 * listed ones, or the default ones), one more per 4 replicas of each Deployment while it rolls out (maxSurge
 * 25%), and per schedulable node a beacon, a check Job and a Multus readiness Job. */
export function multusAddresses(
  raw: Dict,
  views: readonly MachineView[],
): { total: number; detail: string } {
  const list = dict(raw, "ros")?.["workloads"];
  const workloads = Array.isArray(list)
    ? list.filter(isDict).map((w) => ({
        deployment: str(w, "kind") !== "pod",
        replicas: typeof w["replicas"] === "number" ? w["replicas"] : 1,
      }))
    : defaultWorkloads([]).map((w) => ({
        deployment: w.kind === "deployment",
        replicas: w.replicas,
      }));
  const pods = workloads.reduce((n, w) => n + (w.deployment ? w.replicas : 1), 0);
  const surge = workloads.reduce((n, w) => n + (w.deployment ? Math.ceil(w.replicas / 4) : 0), 0);
  const nodes = Math.max(1, views.filter((v) => !v.cordon).length);
  const check = dict(raw, "deliveryCheck")?.["enabled"] !== false;
  const perNode = check ? 3 : 1;
  const total = pods + surge + perNode * nodes;
  const detail = [
    `${pods} workload pods`,
    `${surge} more while Deployments roll out`,
    check
      ? `a beacon, a check Job and a Multus readiness Job on each of ${nodes} nodes`
      : `a Multus readiness Job on each of ${nodes} nodes`,
  ].join(", ");
  return { total, detail };
}

/** rosfleet's own workloads in the ROS namespace: a workload of the same name would carry the
 * same app label, and their selectors would take each other's pods. */
const RESERVED_WHAT: Readonly<Record<string, string>> = {
  "ros-discovery": "discovery server",
  "ros-discovery-1": "second discovery server",
  "rosfleet-beacon": "delivery-check beacons",
};
const RESERVED_NAMES = Object.keys(RESERVED_WHAT);

export function workloadRules(raw: Dict, views: readonly MachineView[]): Problem[] {
  const list = dict(raw, "ros")?.["workloads"];
  if (!Array.isArray(list)) return [];
  const workloads = list.map((w: unknown, i) => ({
    entry: `ros.workloads[${i}]`,
    key: "name",
    value: isDict(w) ? str(w, "name") : undefined,
  }));
  const problems: Problem[] = duplicates(workloads);
  for (const w of workloads)
    if (w.value !== undefined && RESERVED_NAMES.includes(w.value))
      problems.push({
        path: `${w.entry}.name`,
        message: `${JSON.stringify(w.value)} is the name of rosfleet's own ${RESERVED_WHAT[w.value]} (their selectors would take each other's pods); choose another name`,
      });
  list.forEach((w: unknown, i) => {
    if (!isDict(w)) return;
    const path = `ros.workloads[${i}]`;
    const arch = str(w, "arch");
    if (
      arch !== undefined &&
      (ARCHES as readonly string[]).includes(arch) &&
      !views.some((v) => v.arch === arch)
    )
      problems.push({
        path: `${path}.arch`,
        message: `no machine of the lab is ${arch}: nothing could run it`,
      });
    const node = str(w, "node");
    const machine = views.find((v) => v.name === node);
    if (node !== undefined && machine === undefined)
      problems.push({
        path: `${path}.node`,
        message: `no machine is named ${JSON.stringify(node)}`,
      });
    else if (machine !== undefined && machine.cordon)
      problems.push({
        path: `${path}.node`,
        message: `${JSON.stringify(node)} is cordoned: nothing can be scheduled there`,
      });
    else if (machine !== undefined && arch !== undefined && machine.arch !== arch)
      problems.push({
        path: `${path}.node`,
        message: `${JSON.stringify(node)} is ${machine.arch}, not ${arch}`,
      });
    if (w["replicas"] !== undefined && (w["kind"] ?? "pod") === "pod")
      problems.push({ path: `${path}.replicas`, message: "only a kind: deployment has replicas" });
    const containers = w["containers"];
    if (Array.isArray(containers)) {
      const twice = containers.filter((c, j) => containers.indexOf(c) !== j);
      for (const role of new Set(twice))
        problems.push({
          path: `${path}.containers`,
          message: `${JSON.stringify(role)} is listed twice: one container per role`,
        });
    }
  });
  return problems;
}

export function airgapRules(
  raw: Dict,
  views: readonly MachineView[],
  isFile: (p: string) => boolean,
): Problem[] {
  const airgap = dict(dict(raw, "k3s"), "airgap");
  if (airgap === undefined) return [];
  const problems: Problem[] = [];
  const files: [string, string | undefined][] = [
    ["k3s.airgap.installScript", str(airgap, "installScript")],
    ...(["binaries", "images"] as const).flatMap((group) =>
      ARCHES.map((arch): [string, string | undefined] => [
        `k3s.airgap.${group}.${arch}`,
        str(dict(airgap, group), arch),
      ]),
    ),
  ];
  for (const [key, file] of files)
    if (file !== undefined && !isFile(file))
      problems.push({
        path: key,
        message: `no file at ${JSON.stringify(file)} (paths are relative to the project directory)`,
      });
  const binaries = dict(airgap, "binaries");
  for (const arch of ARCHES) {
    const user = views.find((v) => v.arch === arch);
    if (user !== undefined && str(binaries, arch) === undefined)
      problems.push({
        path: `k3s.airgap.binaries.${arch}`,
        message: `required: ${user.path}${user.name === undefined ? "" : ` (${user.name})`} is ${arch} (the k3s release asset ${arch === "arm64" ? "k3s-arm64" : "k3s"})`,
      });
  }
  return problems;
}

/**
 * `k3s.registries` credentials must be secrets. Set with `--secret --path`, they make the whole
 * `k3s` key secret (Pulumi marks a key secret when any value in it is), so a plain `k3s` holding
 * one means it is in the stack file in plaintext. Values are never quoted.
 */
export function registryRules(raw: Dict, isSecret: (key: string) => boolean): Problem[] {
  const configs = dict(dict(dict(raw, "k3s"), "registries"), "configs");
  if (configs === undefined || isSecret("k3s")) return [];
  return Object.keys(configs).flatMap((registry) => {
    const auth = dict(dict(configs, registry), "auth");
    return REGISTRY_SECRET_FIELDS.filter((field) => auth?.[field] !== undefined).map((field) => {
      const path = keyPath(`${keyPath("k3s.registries.configs", registry)}.auth`, field);
      return {
        path,
        message: `is stored in plaintext in the stack file: set it as a secret with pulumi config set --secret --path '${path}' <value>`,
      };
    });
  });
}

/**
 * The dashboard's `admin` may create pods in the lab's namespace. host-network ROS pods need
 * that namespace at Pod Security `privileged`, where such a pod could be privileged or mount the
 * host: root on a node, hence the cluster token and the admin kubeconfig.
 */
export function dashboardRules(raw: Dict): Problem[] {
  const dashboard = dict(raw, "dashboard");
  const enabled = dashboard?.["enabled"];
  if (enabled === false || enabled === "false") return [];
  if (str(dashboard, "access") !== "admin") return [];
  if (str(dict(raw, "ros"), "discovery") !== "host-network") return [];
  return [
    {
      path: "dashboard.access",
      message:
        "admin may create pods in the rosfleet namespace, which ros.discovery host-network opens to host-network pods (Pod Security privileged): an admin token could start a privileged pod, root on a node. Use access view (read, logs; kubectl with the kubeconfig for changes), or a discovery mode whose pods pass Pod Security restricted (discovery-server, multus)",
    },
  ];
}
