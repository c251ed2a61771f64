// Cross-key rules of the later stages' keys: ROS workloads, Multus, air-gapped k3s.
import type { Problem } from "./problem";
import { Dict, MachineView, dict, duplicates, isDict, str } from "./raw";
import { ARCHES } from "./schema";

export function multusRules(raw: Dict): Problem[] {
  const ros = dict(raw, "ros");
  if (str(ros, "discovery") !== "multus" || str(dict(ros, "multus"), "range") !== undefined)
    return [];
  return [
    {
      path: "ros.multus.range",
      message:
        "required with ros.discovery multus: free addresses of the machines' LAN for the pods' second interfaces, e.g. 192.168.1.200/28",
    },
  ];
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
