// The settings the config stage hands the rest of the program: every key of the contract with
// its default applied (LabSettings), and the secrets as Pulumi secret outputs (LabConfig).
import type * as pulumi from "@pulumi/pulumi";
import type { ClusterContinuity } from "./last-update";
import type { PullCredentials } from "./derived";
import type { Workload } from "./workloads";
import type {
  Arch,
  DashboardAccess,
  DiscoveryMode,
  Distro,
  Kind,
  Platform,
  Registries,
  Role,
} from "./schema";

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
  /** k3s `node-ip`: the address the node registers with; undefined: the one k3s picks. */
  readonly nodeIp: string | undefined;
  /** k3s `flannel-iface`: the interface pod traffic between nodes goes over. */
  readonly flannelIface: string | undefined;
  /** The SSH host key its steps connect with: `machines[].hostKey`, else pinned on first use
   * (config/host-keys.ts); unset only where none could be read at preview. */
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
  /**
   * A k3s that rosfleet did not install may be taken over: without it preflight refuses one
   * (its config, its server on an agent and, on removal, its data would be rosfleet's to change).
   */
  readonly adopt: boolean;
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
  /** `k3s.apiEndpoint`: in every server's tls-san, the address joins and the kubeconfig use. */
  readonly apiEndpoint: string | undefined;
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
    /** Where the image is pushed; with `build: false`, the image deployed (tag/digest allowed);
     * LOCAL_REPOSITORY when it is imported. */
    readonly repository: string;
    /** The machine whose k3s the image is imported into, built there by Docker, when the lab
     * needs no registry (`importsImage`); undefined: pushed to `repository`, or published. */
    readonly importInto: string | undefined;
    readonly build: boolean;
    /** buildx builder name; undefined: the current builder. */
    readonly builder: string | undefined;
    readonly cache: boolean;
    readonly platforms: readonly Platform[];
  };
  readonly registryUsername: string | undefined;
  /** `ssh.privateKeyFile`, absolute; LabConfig.sshPrivateKey holds what it was read as. */
  readonly sshPrivateKeyFile: string | undefined;
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
  readonly dashboard: {
    readonly enabled: boolean;
    readonly access: DashboardAccess;
    /** The login token's lifetime; the first `up` after it has expired mints a new one. */
    readonly tokenHours: number;
  };
  readonly deliveryCheck: {
    readonly enabled: boolean;
    readonly timeoutSeconds: number;
    /** Limits per pair (0: none) and the large message's size (0: none sent). */
    readonly maxLossPercent: number;
    readonly maxLatencyMs: number;
    readonly largeMessageBytes: number;
  };
}

/** The validated lab, with its secrets as Pulumi secret outputs. */
export interface LabConfig extends LabSettings {
  /** `sshPrivateKey`, or the text of `ssh.privateKeyFile`; unset: the SSH agent is used. */
  readonly sshPrivateKey: pulumi.Output<string> | undefined;
  /** `cluster.kubeconfig` when it holds the kubeconfig itself rather than a path. */
  readonly clusterKubeconfig: pulumi.Output<string> | undefined;
  readonly registryPassword: pulumi.Output<string> | undefined;
  /** `k3s.registries` with its credentials; secret when it has any. */
  readonly k3sRegistries: pulumi.Output<Registries> | undefined;
  /** The registry login the nodes pull with, when the stack has one. */
  readonly pull: PullCredentials | undefined;
  /** The nodes workloads and the delivery check may use (not cordoned, not tainted against
   * them). */
  readonly schedulable: readonly string[];
  /** Machines left out of them by their own taints: node → those taints. */
  readonly tainted: Readonly<Record<string, readonly string[]>>;
  /** Whether the cluster is the last update's (last-update.ts): the provider's identity. */
  readonly continuity: ClusterContinuity;
}
