// What a valid stack configuration means: the schema's output with every default applied — a
// machine's arch from its kind, its role's --node-label/--node-taint merged with its own, the
// kubeconfig's server, the image's repository or the local import, the default workloads.
// Pure but for reading the kubeconfig file the cross-checks have already read.
import { z } from "zod";
import { isLocalHost } from "./checks";
import { isKubeconfigText } from "./mode-checks";
import { kubeconfigServer } from "../common/kubeconfig";
import { defaultWorkloads, workloadWithDefaults } from "./workloads";
import { redactRegistries } from "./derived";
import { ArgsNodeSettings, nodeSettingsOf } from "./k3s-args";
import { RawMachine, clusterSchema, defaultArch, labSchema } from "./schema";
import { importsImage, resolveUserPath } from "./raw";
import { LOCAL_REPOSITORY } from "../common/image-reference";
import type { ClusterSettings, LabNode, LabSettings, Machine } from "./settings";

/** Reads a file the configuration names; undefined when it cannot be read. */
export type ReadFile = (path: string) => string | undefined;

const NO_ARGS: ArgsNodeSettings = { labels: {}, taints: [] };

/** `m`'s labels over the `--node-label`s of its role's args (the machine's own win). */
function toNode(m: RawMachine, args: ArgsNodeSettings = NO_ARGS): LabNode {
  return {
    name: m.name,
    kind: m.kind,
    arch: m.arch ?? defaultArch(m.kind),
    labels: { ...args.labels, ...m.labels },
    cordon: m.cordon,
  };
}

/** A taint's identity: k3s keeps one per key and effect. */
const taintKey = (t: string): string => t.replace(/=[^:]*/, "");

/** The role's `--node-taint`s, then the machine's own (which win for the same key and effect). */
function mergedTaints(own: readonly string[], args: readonly string[]): string[] {
  const mine = new Set(own.map(taintKey));
  return [...args.filter((t) => !mine.has(taintKey(t))), ...own];
}

// crossChecks guarantees host and role when k3s is installed; the fallbacks only satisfy types.
const toMachine = (
  m: RawMachine,
  sshUser: string | undefined,
  args: ArgsNodeSettings = NO_ARGS,
): Machine => ({
  ...toNode(m, args),
  host: m.host ?? "",
  local: isLocalHost(m.host ?? ""),
  role: m.role ?? "agent",
  user: m.user ?? sshUser,
  port: m.port,
  nodeIp: m.nodeIp,
  flannelIface: m.flannelIface,
  hostKey: m.hostKey,
  taints: mergedTaints(m.taints, args.taints),
  docker: m.docker,
  skipUninstall: m.skipUninstall,
  adopt: m.adopt,
});

function clusterSettings(
  cluster: z.output<typeof clusterSchema>,
  readFile: ReadFile,
): ClusterSettings {
  const inline = isKubeconfigText(cluster.kubeconfig);
  const kubeconfigPath = inline ? undefined : resolveUserPath(cluster.kubeconfig);
  // crossChecks has read and parsed it already.
  const text = kubeconfigPath === undefined ? cluster.kubeconfig : (readFile(kubeconfigPath) ?? "");
  return {
    kubeconfigPath,
    context: cluster.context,
    server: kubeconfigServer({ kubeconfig: { text }, context: cluster.context }),
  };
}

/** `image`: crossChecks guarantees a repository unless the image is imported. */
function imageSettings(lab: z.output<typeof labSchema>): LabSettings["image"] {
  const imported = importsImage({
    installsK3s: lab.cluster === undefined,
    hosts: lab.machines.map((m) => m.host),
    build: lab.image.build,
    repository: lab.image.repository,
  });
  return {
    ...lab.image,
    builder: lab.image.builder,
    repository: lab.image.repository ?? LOCAL_REPOSITORY,
    importInto: imported ? lab.machines[0]?.name : undefined,
  };
}

/** The settings of a valid configuration: every default applied, paths resolved, secrets out. */
export function applyDefaults(lab: z.output<typeof labSchema>, readFile: ReadFile): LabSettings {
  const cluster = lab.cluster;
  // The --node-label / --node-taint of a machine's role, applied through the API with its own.
  const argsOf = (m: RawMachine): ArgsNodeSettings =>
    nodeSettingsOf((m.role === "server" ? lab.k3s?.serverArgs : lab.k3s?.agentArgs) ?? []);
  return {
    nodes: lab.machines.map((m) => toNode(m, argsOf(m))),
    machines:
      cluster === undefined ? lab.machines.map((m) => toMachine(m, lab.ssh.user, argsOf(m))) : [],
    k3s:
      lab.k3s === undefined
        ? undefined
        : {
            ...lab.k3s,
            apiEndpoint: lab.k3s.apiEndpoint,
            airgap: lab.k3s.airgap,
            registries:
              lab.k3s.registries === undefined ? undefined : redactRegistries(lab.k3s.registries),
          },
    cluster: cluster === undefined ? undefined : clusterSettings(cluster, readFile),
    image: imageSettings(lab),
    registryUsername: lab.registryUsername,
    sshPrivateKeyFile:
      lab.ssh.privateKeyFile === undefined ? undefined : resolveUserPath(lab.ssh.privateKeyFile),
    ros: {
      ...lab.ros,
      multus: {
        ...lab.ros.multus,
        range: lab.ros.multus.range,
        // On an existing cluster Multus is the cluster's own (mode-checks.ts rejects install: true).
        install: cluster === undefined && lab.ros.multus.install,
      },
      workloads:
        lab.ros.workloads?.map(workloadWithDefaults) ??
        defaultWorkloads(lab.machines.map((m) => m.arch ?? defaultArch(m.kind))),
    },
    dashboard: lab.dashboard,
    deliveryCheck: lab.deliveryCheck,
  };
}
