// The shape of the `rosfleet:` stack configuration: every key of the contract in DESIGN.md,
// its type, format and default. Rules that relate several keys live in `checks.ts`.
import { z } from "zod";

/** Kubernetes node names must be DNS-1123 labels. */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** k3s release tags, e.g. `v1.33.5+k3s1` or `v1.34.0-rc1+k3s1`. */
export const K3S_RELEASE_TAG = /^v\d+\.\d+\.\d+(-rc\d+)?\+k3s\d+$/;
/** `key=value:Effect` or `key:Effect`, as `--node-taint` takes them. */
export const TAINT =
  /^([A-Za-z0-9][-A-Za-z0-9_./]*)(=([-A-Za-z0-9_.]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$/;
/** Label keys: optional DNS prefix, then a name of at most 63 characters. */
export const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
export const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
/** Host names and IPv4/IPv6 addresses; nothing a shell would interpret. */
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$/;
/** IPv4 dotted quad, or an IPv6 address (hex groups and colons, `::` allowed). */
const IPV4 = /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$/;
const IPV6 = /^(?=.*:)[0-9A-Fa-f:]{2,39}$/;
/** A Linux interface name (at most 15 characters, no '/' or spaces). */
const IFACE = /^[A-Za-z0-9_.-]{1,15}$/;
/** An OpenSSH public host key line: algorithm, then base64. */
const HOST_KEY =
  /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+=*( .*)?$/;

export const ROLES = ["server", "agent"] as const;
export const KINDS = ["laptop", "pi", "vm"] as const;
export const ARCHES = ["amd64", "arm64"] as const;
export const DISTROS = ["humble", "jazzy"] as const;
export const DISCOVERY_MODES = ["discovery-server", "host-network", "multus", "multicast"] as const;
export const DASHBOARD_ACCESS = ["view", "admin"] as const;
export const PLATFORMS = ["linux/amd64", "linux/arm64"] as const;

export type Role = (typeof ROLES)[number];
export type Kind = (typeof KINDS)[number];
export type Arch = (typeof ARCHES)[number];
export type Distro = (typeof DISTROS)[number];
export type DiscoveryMode = (typeof DISCOVERY_MODES)[number];
export type DashboardAccess = (typeof DASHBOARD_ACCESS)[number];
export type Platform = (typeof PLATFORMS)[number];

/** A Pi is arm64 (64-bit Raspberry Pi OS / Ubuntu); laptops and VMs are assumed amd64. */
export const defaultArch = (kind: string): Arch => (kind === "pi" ? "arm64" : "amd64");

// `pulumi config set --path a.b true` may store the text "true"; accept it as the value it names.
const bool = z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean());
const int = (min: number, max: number) => {
  const range = { error: `expected an integer from ${min} to ${max}` };
  return z.preprocess(
    (v) => (typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v),
    z.int(range).min(min, range).max(max, range),
  );
};
const oneOf = <T extends readonly [string, ...string[]]>(values: T) => z.enum(values);
const matching = (re: RegExp, what: string) =>
  z.string().regex(re, { error: (iss) => `expected ${what}, got ${JSON.stringify(iss.input)}` });
const nonEmpty = z.string().trim().min(1, { error: "must not be empty" });

// `host` and `role` are required when rosfleet installs k3s (checks.ts), and make no sense on a
// cluster it did not install (`cluster.kubeconfig`).
export const machineSchema = z.strictObject({
  name: matching(
    DNS1123_LABEL,
    "a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit)",
  ),
  host: matching(
    HOST,
    "a host name or IP address such as 192.168.1.21 or clover1.local",
  ).optional(),
  role: oneOf(ROLES).optional(),
  kind: oneOf(KINDS).default("vm"),
  arch: oneOf(ARCHES).optional(),
  user: nonEmpty.optional(),
  port: int(1, 65535).default(22),
  /** The address k3s registers the node with (k3s node-ip): the one on the lab's wired LAN. */
  nodeIp: z
    .string()
    .refine((v) => IPV4.test(v) || IPV6.test(v), {
      error: (iss) =>
        `expected this machine's IP address on the lab network, such as 192.168.1.31, got ${JSON.stringify(iss.input)}`,
    })
    .optional(),
  /** The interface flannel carries pod traffic over (k3s flannel-iface), e.g. eth0 not wlan0. */
  flannelIface: matching(IFACE, "a network interface name such as eth0").optional(),
  hostKey: matching(
    HOST_KEY,
    'an OpenSSH public key line such as "ssh-ed25519 AAAA..."',
  ).optional(),
  labels: z
    .record(
      matching(LABEL_KEY, "a label key such as robot or example.com/robot"),
      matching(LABEL_VALUE, "a label value of at most 63 letters, digits, '-', '_' or '.'"),
    )
    .default({}),
  taints: z.array(matching(TAINT, "a taint such as key=value:NoSchedule")).default([]),
  docker: bool.default(false),
  cordon: bool.default(false),
  skipUninstall: bool.default(false),
  adopt: bool.default(false),
});

export const sshSchema = z
  .strictObject({
    user: nonEmpty.optional(),
    /** A private key file (relative to the project, or ~/...), read once and kept as a secret. */
    privateKeyFile: nonEmpty.optional(),
  })
  .default({});

const k3sFlag = matching(/^--[a-z0-9][a-z0-9-]*(=.*)?$/, "a k3s flag such as --disable=traefik");

const perArch = z
  .strictObject({ amd64: nonEmpty.optional(), arm64: nonEmpty.optional() })
  .default({});

/** Files on the laptop for labs whose machines cannot download k3s. */
export const airgapSchema = z.strictObject({
  /** k3s's install.sh (get.k3s.io), run with INSTALL_K3S_SKIP_DOWNLOAD=true. */
  installScript: nonEmpty,
  /** The k3s binary of each arch the lab has (release assets `k3s`, `k3s-arm64`). */
  binaries: perArch,
  /** Optional images tarballs (`k3s-airgap-images-<arch>.tar.zst`). */
  images: perArch,
});

/** A registry as containerd names it: host[:port], or `*` for every registry (mirrors only). */
const REGISTRY_HOST = /^(\*|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?)$/;
const registryHost = matching(REGISTRY_HOST, "a registry such as docker.io or 192.168.1.10:5000");
const endpoint = matching(
  /^https?:\/\/[A-Za-z0-9.[\]:-]+(\/\S*)?$/,
  "an endpoint URL such as http://192.168.1.10:5000 (http:// for a registry without TLS)",
);

/** The fields of `configs.<registry>.auth` that are secrets (k3s's names). */
export const REGISTRY_SECRET_FIELDS = ["password", "auth", "identity_token"] as const;

/**
 * `k3s.registries`: k3s's own `/etc/rancher/k3s/registries.yaml`, with k3s's key names so its
 * documentation applies as written. Credentials are set with `pulumi config set --secret --path`.
 */
export const registriesSchema = z.strictObject({
  mirrors: z
    .record(
      registryHost,
      z.strictObject({
        endpoint: z.array(endpoint).min(1, { error: "must list at least one endpoint" }),
        rewrite: z.record(nonEmpty, z.string()).optional(),
      }),
    )
    .default({}),
  configs: z
    .record(
      registryHost,
      z.strictObject({
        auth: z
          .strictObject({
            username: nonEmpty.optional(),
            password: nonEmpty.optional(),
            auth: nonEmpty.optional(),
            identity_token: nonEmpty.optional(),
          })
          .optional(),
        tls: z
          .strictObject({
            ca_file: nonEmpty.optional(),
            cert_file: nonEmpty.optional(),
            key_file: nonEmpty.optional(),
            insecure_skip_verify: bool.optional(),
          })
          .optional(),
      }),
    )
    .default({}),
});
export type Registries = z.output<typeof registriesSchema>;

// A missing `k3s` block is reported (checks.ts) as a missing `k3s.version`, the key to add.
export const k3sSchema = z.strictObject({
  version: matching(K3S_RELEASE_TAG, "a k3s release tag such as v1.33.5+k3s1"),
  /** Where the cluster is reached when not at the first server's host: a DNS name or VIP. */
  apiEndpoint: matching(
    HOST,
    "a DNS name or IP address such as k3s.lab.example or 192.168.1.20",
  ).optional(),
  serverArgs: z.array(k3sFlag).default([]),
  agentArgs: z.array(k3sFlag).default([]),
  airgap: airgapSchema.optional(),
  registries: registriesSchema.optional(),
});

/** An existing cluster to deploy onto instead of installing k3s over SSH. */
export const clusterSchema = z.strictObject({
  /** The kubeconfig's path (relative to the project, or ~/...), or its contents as a secret. */
  kubeconfig: nonEmpty,
  /** A context of that kubeconfig; default: its current-context. */
  context: nonEmpty.optional(),
});

export const imageSchema = z
  .strictObject({
    repository: nonEmpty.optional(),
    build: bool.default(true),
    /** A buildx builder by name (e.g. a docker-container builder); default: the current one. */
    builder: nonEmpty.optional(),
    /** Registry build cache at `<repository>:buildcache-<distro>`. */
    cache: bool.default(true),
    platforms: z
      .array(oneOf(PLATFORMS))
      .min(1, { error: "must list at least one platform" })
      .default(["linux/amd64", "linux/arm64"]),
  })
  .default({ build: true, cache: true, platforms: ["linux/amd64", "linux/arm64"] });

export const WORKLOAD_KINDS = ["pod", "deployment"] as const;
export const CONTAINER_ROLES = ["talker", "listener", "toolbox"] as const;
export const DEMO_LANGS = ["cpp", "py"] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];
export type ContainerRole = (typeof CONTAINER_ROLES)[number];
export type DemoLang = (typeof DEMO_LANGS)[number];

export const workloadSchema = z.strictObject({
  name: matching(DNS1123_LABEL, "a DNS-1123 label such as demo-listener"),
  // A bare Pod is lost for good on a drain or a node's death: a Deployment comes back.
  kind: oneOf(WORKLOAD_KINDS).default("deployment"),
  /** Deployments only. */
  replicas: int(0, 100).optional(),
  /** Pin to machines of this arch (`kubernetes.io/arch`). */
  arch: oneOf(ARCHES).optional(),
  /** Pin to this machine (`kubernetes.io/hostname`). */
  node: matching(DNS1123_LABEL, "a machine name").optional(),
  /** demo_nodes_cpp or demo_nodes_py. */
  lang: oneOf(DEMO_LANGS).default("cpp"),
  containers: z.array(oneOf(CONTAINER_ROLES)).min(1, { error: "must list at least one container" }),
});

/** IPv4 CIDR such as 192.168.1.200/28. */
const IPV4_CIDR =
  /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)\/([0-9]|[12]\d|3[0-2])$/;

export const multusSchema = z.strictObject({
  /** The NIC every machine routes through; pods' macvlan interfaces attach to it. */
  interface: matching(IFACE, "a network interface name such as eth0").default("eth0"),
  /** Free LAN addresses for the pods' second interfaces, handed out cluster-wide (whereabouts). */
  range: matching(IPV4_CIDR, "an IPv4 range such as 192.168.1.200/28").optional(),
  /** Install Multus + whereabouts (k3s HelmChart); false when the cluster already has them. */
  install: bool.default(true),
});

export const rosSchema = z
  .strictObject({
    distro: oneOf(DISTROS).default("jazzy"),
    domainId: int(0, 101).default(0),
    discovery: oneOf(DISCOVERY_MODES).default("discovery-server"),
    workloads: z.array(workloadSchema).optional(),
    multus: multusSchema.default({ interface: "eth0", install: true }),
  })
  .default({
    distro: "jazzy",
    domainId: 0,
    discovery: "discovery-server",
    multus: { interface: "eth0", install: true },
  });

export const dashboardSchema = z
  .strictObject({
    enabled: bool.default(true),
    access: oneOf(DASHBOARD_ACCESS).default("view"),
    // A day by default; at most a year. The API server refuses less than 10 minutes.
    tokenHours: int(1, 8760).default(24),
  })
  .default({ enabled: true, access: "view", tokenHours: 24 });

export const deliveryCheckSchema = z
  .strictObject({
    enabled: bool.default(true),
    timeoutSeconds: int(10, 3600).default(120),
    // 0 turns a limit off; none is on by default but the large message (a camera frame).
    maxLossPercent: z.number().min(0).max(100).default(0),
    maxLatencyMs: z.number().min(0).max(60_000).default(0),
    largeMessageBytes: int(0, 16 * 1024 * 1024).default(1024 * 1024),
  })
  .default({
    enabled: true,
    timeoutSeconds: 120,
    maxLossPercent: 0,
    maxLatencyMs: 0,
    largeMessageBytes: 1024 * 1024,
  });

/** Every key of the `rosfleet:` namespace. Secrets are checked for presence only. */
export const labSchema = z.strictObject({
  // Required when rosfleet installs k3s (checks.ts); optional on an existing cluster.
  machines: z.array(machineSchema).default([]),
  ssh: sshSchema,
  sshPrivateKey: z.string().optional(),
  k3s: k3sSchema.optional(),
  cluster: clusterSchema.optional(),
  image: imageSchema,
  registryUsername: nonEmpty.optional(),
  registryPassword: z.string().optional(),
  ros: rosSchema,
  dashboard: dashboardSchema,
  deliveryCheck: deliveryCheckSchema,
  // A change that builds a new cluster (replacement.ts) goes ahead only with this.
  allowClusterReplacement: bool.default(false),
});

export type RawMachine = z.output<typeof machineSchema>;
export type RawLab = z.output<typeof labSchema>;
