// The config stage: read the `rosfleet:` namespace, validate it whole, apply defaults, and hand
// the rest of the program one typed `LabConfig`. Nothing is declared before this succeeds.
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import * as pulumiRuntimeConfig from "@pulumi/pulumi/runtime/config";
import { z } from "zod";
import { describeIssue } from "./describe";
import { crossChecks, isLocalHost } from "./checks";
import { previousServers } from "./previous";
import type { Problem } from "./problem";
import { isKubeconfigText, resolveKubeconfigPath } from "./mode-checks";
import { kubeconfigServer } from "../common/kubeconfig";
import { Workload, defaultWorkloads, workloadWithDefaults } from "./workloads";
import {
  PullCredentials,
  pullCredentials,
  redactRegistries,
  registriesWithSecrets,
  schedulableNodes,
} from "./derived";
import {
  Arch,
  DashboardAccess,
  DiscoveryMode,
  Distro,
  Kind,
  Platform,
  Role,
  defaultArch,
  RawMachine,
  Registries,
  clusterSchema,
  labSchema,
} from "./schema";

export { Problem, Workload, isLocalHost };
export * from "./schema";

/** The configuration namespace of the contract (`rosfleet:machines`, ...). */
export const NAMESPACE = "rosfleet";

/** A node of the lab: a machine rosfleet installs, or a node of an existing cluster. */
export interface LabNode {
  /** Kubernetes node name (DNS-1123 label), unique in the lab. */
  readonly name: string;
  readonly kind: Kind;
  readonly arch: Arch;
  readonly labels: Readonly<Record<string, string>>;
  /** Keep the node unschedulable (on an existing cluster: leave it out of the delivery check). */
  readonly cordon: boolean;
}

/** One machine rosfleet installs k3s on, with every default applied. */
export interface Machine extends LabNode {
  /** SSH address; for servers also the address agents join and the kubeconfig points at. */
  readonly host: string;
  /** True when `host` is this machine (localhost): steps run as local commands, not over SSH. */
  readonly local: boolean;
  readonly role: Role;
  /** SSH user (`machines[].user`, else `ssh.user`); undefined only for local machines. */
  readonly user: string | undefined;
  readonly port: number;
  /** Pinned SSH host key; unset means the host key is not checked. */
  readonly hostKey: string | undefined;
  /** `key=value:Effect` */
  readonly taints: readonly string[];
  /** Run k3s with `--docker` (Docker must be running on the machine). */
  readonly docker: boolean;
  /**
   * The machine is dead or wiped: when its steps are deleted (it leaves the stack, or
   * `pulumi destroy`), nothing is run on it; its node is still removed through the server.
   */
  readonly skipUninstall: boolean;
}

/** `k3s.airgap`: the installer, and per arch the binary and (optionally) images tarball. */
export interface Airgap {
  readonly installScript: string;
  readonly binaries: Readonly<Partial<Record<Arch, string>>>;
  readonly images: Readonly<Partial<Record<Arch, string>>>;
}

/** `k3s.*`: what rosfleet installs on the machines. */
export interface K3sSettings {
  readonly version: string;
  readonly serverArgs: readonly string[];
  readonly agentArgs: readonly string[];
  /** Files to install k3s from instead of downloading it (paths on the laptop). */
  readonly airgap: Airgap | undefined;
  /** `k3s.registries` with its credentials shown as `[secret]` (LabConfig has them). */
  readonly registries: Registries | undefined;
}

/** `cluster.*`: an existing cluster the lab deploys onto. */
export interface ClusterSettings {
  /** Absolute path of the kubeconfig; undefined when the kubeconfig itself is in the stack (secret). */
  readonly kubeconfigPath: string | undefined;
  /** Undefined: the kubeconfig's current-context. */
  readonly context: string | undefined;
  /** The context's API server, e.g. https://10.0.0.5:16443. */
  readonly server: string;
}

/** Everything in the stack configuration but the secret values. */
export interface LabSettings {
  /** Every node of the lab, in `machines` order (on an existing cluster: the nodes described). */
  readonly nodes: readonly LabNode[];
  /** The machines rosfleet installs k3s on; empty on an existing cluster. */
  readonly machines: readonly Machine[];
  /** Set when rosfleet installs k3s (no `cluster`). */
  readonly k3s: K3sSettings | undefined;
  /** Set when the lab deploys onto an existing cluster. */
  readonly cluster: ClusterSettings | undefined;
  readonly image: {
    /** Where the image is pushed; with `build: false`, the image deployed (tag/digest allowed). */
    readonly repository: string;
    readonly build: boolean;
    /** buildx builder name; undefined: the current builder. */
    readonly builder: string | undefined;
    readonly cache: boolean;
    readonly platforms: readonly Platform[];
  };
  readonly registryUsername: string | undefined;
  readonly ros: {
    readonly distro: Distro;
    readonly domainId: number;
    readonly discovery: DiscoveryMode;
    /** `ros.workloads`, or the default ones. */
    readonly workloads: readonly Workload[];
    /** Used with `discovery: multus` (then `range` is set). */
    readonly multus: {
      readonly interface: string;
      readonly range: string | undefined;
      readonly install: boolean;
    };
  };
  readonly dashboard: { readonly enabled: boolean; readonly access: DashboardAccess };
  readonly deliveryCheck: { readonly enabled: boolean; readonly timeoutSeconds: number };
}

/** The validated lab, with its secrets as Pulumi secret outputs. */
export interface LabConfig extends LabSettings {
  /** Else the SSH agent (`SSH_AUTH_SOCK`) is used. */
  readonly sshPrivateKey: pulumi.Output<string> | undefined;
  /** `cluster.kubeconfig` when it holds the kubeconfig itself rather than a path. */
  readonly clusterKubeconfig: pulumi.Output<string> | undefined;
  readonly registryPassword: pulumi.Output<string> | undefined;
  /** `k3s.registries` with its credentials; secret when it has any. */
  readonly k3sRegistries: pulumi.Output<Registries> | undefined;
  /** The registry login the nodes pull with, when the stack has one. */
  readonly pull: PullCredentials | undefined;
  /** The nodes workloads and the delivery check may use (not cordoned). */
  readonly schedulable: readonly string[];
}

export type ParseResult =
  | { readonly ok: true; readonly settings: LabSettings }
  | { readonly ok: false; readonly problems: readonly Problem[] };

// Pulumi hands structured values over as JSON text and plain strings as they are.
const STRUCTURED_KEYS = new Set([
  "machines",
  "ssh",
  "k3s",
  "cluster",
  "image",
  "ros",
  "dashboard",
  "deliveryCheck",
]);

function decode(values: Readonly<Record<string, string>>): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const [key, text] of Object.entries(values)) {
    if (!STRUCTURED_KEYS.has(key)) {
      raw[key] = text;
      continue;
    }
    try {
      raw[key] = JSON.parse(text) as unknown;
    } catch {
      // A bare word such as `k3s: v1.33` is not JSON: let the schema say what shape it wants.
      raw[key] = text;
    }
  }
  return raw;
}

function toNode(m: RawMachine): LabNode {
  return {
    name: m.name,
    kind: m.kind,
    arch: m.arch ?? defaultArch(m.kind),
    labels: m.labels,
    cordon: m.cordon,
  };
}

// crossChecks guarantees host and role when k3s is installed; the fallbacks only satisfy types.
const toMachine = (m: RawMachine, sshUser: string | undefined): Machine => ({
  ...toNode(m),
  host: m.host ?? "",
  local: isLocalHost(m.host ?? ""),
  role: m.role ?? "agent",
  user: m.user ?? sshUser,
  port: m.port,
  hostKey: m.hostKey,
  taints: m.taints,
  docker: m.docker,
  skipUninstall: m.skipUninstall,
});

function clusterSettings(
  cluster: z.output<typeof clusterSchema>,
  readFile: ParseEnv["readFile"],
): ClusterSettings {
  const inline = isKubeconfigText(cluster.kubeconfig);
  const kubeconfigPath = inline ? undefined : resolveKubeconfigPath(cluster.kubeconfig);
  // crossChecks has read and parsed it already.
  const text = kubeconfigPath === undefined ? cluster.kubeconfig : (readFile(kubeconfigPath) ?? "");
  return {
    kubeconfigPath,
    context: cluster.context,
    server: kubeconfigServer({ kubeconfig: { text }, context: cluster.context }),
  };
}

function applyDefaults(
  lab: z.output<typeof labSchema>,
  readFile: ParseEnv["readFile"],
): LabSettings {
  const cluster = lab.cluster;
  return {
    nodes: lab.machines.map(toNode),
    machines: cluster === undefined ? lab.machines.map((m) => toMachine(m, lab.ssh.user)) : [],
    k3s:
      lab.k3s === undefined
        ? undefined
        : {
            ...lab.k3s,
            airgap: lab.k3s.airgap,
            registries:
              lab.k3s.registries === undefined ? undefined : redactRegistries(lab.k3s.registries),
          },
    cluster: cluster === undefined ? undefined : clusterSettings(cluster, readFile),
    // crossChecks guarantees a repository; the fallback only satisfies the type.
    image: { ...lab.image, builder: lab.image.builder, repository: lab.image.repository ?? "" },
    registryUsername: lab.registryUsername,
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

/** What parsing may ask of the world: which keys Pulumi decrypted, which files exist, what
 * servers the stack had at its last update (`previousServers`). */
export interface ParseEnv {
  readonly isSecret: (key: string) => boolean;
  readonly isFile: (path: string) => boolean;
  readonly readFile: (path: string) => string | undefined;
  readonly previousServers?: readonly string[];
}

const DEFAULT_ENV: ParseEnv = {
  isSecret: () => true,
  isFile: (file) => fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false,
  readFile: (file) => {
    try {
      return fs.readFileSync(file, "utf8");
    } catch {
      return undefined;
    }
  },
};

const SECRET_KEYS = ["sshPrivateKey", "registryPassword"] as const;

function plaintextSecrets(
  values: Readonly<Record<string, string>>,
  isSecret: (key: string) => boolean,
): Problem[] {
  return SECRET_KEYS.filter((key) => key in values && !isSecret(key)).map((key) => ({
    path: key,
    message: `is stored in plaintext in the stack file: run pulumi config rm ${key}, then pulumi config set --secret ${key}`,
  }));
}

/**
 * Validates the stack configuration given as Pulumi stores it (key without namespace → text).
 * Pure: returns every problem at once, or the settings with defaults applied.
 */
export function parseLab(
  values: Readonly<Record<string, string>>,
  env: Partial<ParseEnv> = {},
): ParseResult {
  const { isSecret, isFile, readFile, previousServers } = { ...DEFAULT_ENV, ...env };
  const raw = decode(values);
  const parsed = labSchema.safeParse(raw, { reportInput: true });
  const problems = [
    ...(parsed.success ? [] : parsed.error.issues.flatMap(describeIssue)),
    ...crossChecks(raw, { isFile, isSecret, readFile, previousServers }),
    ...plaintextSecrets(values, isSecret),
  ];
  if (problems.length > 0 || !parsed.success) return { ok: false, problems };
  return { ok: true, settings: applyDefaults(parsed.data, readFile) };
}

/** The one error for bad configuration: every problem, one per line, before anything runs. */
export class ConfigError extends pulumi.RunError {
  constructor(public readonly problems: readonly Problem[]) {
    super(formatProblems(problems));
  }
}

export function formatProblems(problems: readonly Problem[]): string {
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  const lines = problems.map((p) => `  ${p.path === "" ? "(stack config)" : p.path}: ${p.message}`);
  return [`invalid ${NAMESPACE} stack configuration (${count}):`, ...lines].join("\n");
}

// The SDK knows which keys the engine decrypted but keeps `isConfigSecret` out of its typings.
const runtimeConfig = pulumiRuntimeConfig as unknown as {
  isConfigSecret?: (key: string) => boolean;
};
const configKeyIsSecret = (key: string): boolean => runtimeConfig.isConfigSecret?.(key) ?? true;

/**
 * Reads and validates this stack's configuration; throws `ConfigError` with every problem.
 * When rosfleet installs k3s, the servers of the last update (read back from the stack) are
 * checked against the new ones too.
 */
export async function readLabConfig(): Promise<LabConfig> {
  const prefix = `${NAMESPACE}:`;
  const values = Object.fromEntries(
    Object.entries(pulumi.runtime.allConfig())
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), value]),
  );
  const previous = values["cluster"] === undefined ? await previousServers() : [];
  const result = parseLab(values, {
    isSecret: (key) => configKeyIsSecret(`${prefix}${key}`),
    previousServers: previous,
  });
  if (!result.ok) throw new ConfigError(result.problems);
  const config = new pulumi.Config(NAMESPACE);
  const registryPassword = config.getSecret("registryPassword");
  return {
    ...result.settings,
    sshPrivateKey: config.getSecret("sshPrivateKey"),
    clusterKubeconfig:
      result.settings.cluster !== undefined && result.settings.cluster.kubeconfigPath === undefined
        ? pulumi.secret(config.requireObject<{ kubeconfig: string }>("cluster").kubeconfig)
        : undefined,
    registryPassword,
    k3sRegistries:
      result.settings.k3s === undefined
        ? undefined
        : registriesWithSecrets(config.getObject<{ registries?: unknown }>("k3s")),
    pull: pullCredentials(result.settings, registryPassword),
    schedulable: schedulableNodes(result.settings),
  };
}
