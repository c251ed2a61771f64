// Rules that relate several keys. They read the raw input defensively, so that they can run
// even when the schema has already rejected some field, and every problem is reported at once.
import { parseImageReference } from "../image/reference";
import { ARCHES, defaultArch } from "./schema";

/** One problem: the key path it concerns and what is wrong there. */
export interface Problem {
  readonly path: string;
  readonly message: string;
}

/** Hosts that mean "the machine that runs pulumi": reached with local commands, not SSH. */
export const LOCAL_HOSTS: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "::1"]);

export const isLocalHost = (host: string): boolean => LOCAL_HOSTS.has(host.trim().toLowerCase());

type Dict = Readonly<Record<string, unknown>>;

const isDict = (v: unknown): v is Dict => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (d: Dict | undefined, key: string): string | undefined =>
  d !== undefined && typeof d[key] === "string" ? (d[key] as string) : undefined;
const dict = (d: Dict | undefined, key: string): Dict | undefined =>
  d !== undefined && isDict(d[key]) ? (d[key] as Dict) : undefined;

interface MachineView {
  readonly path: string;
  readonly name?: string;
  readonly host?: string;
  readonly role?: string;
  readonly kind: string;
  /** As declared, or the kind's default. */
  readonly arch: string;
  readonly user?: string;
  readonly cordon: boolean;
}

function machineViews(raw: Dict): MachineView[] {
  const list = raw["machines"];
  if (!Array.isArray(list)) return [];
  return list.flatMap((m: unknown, i) => {
    if (!isDict(m)) return [];
    const kind = str(m, "kind") ?? "vm";
    return [
      {
        path: `machines[${i}]`,
        name: str(m, "name"),
        host: str(m, "host"),
        role: str(m, "role"),
        kind,
        arch: str(m, "arch") ?? defaultArch(kind),
        user: str(m, "user"),
        cordon: m["cordon"] === true || m["cordon"] === "true",
      },
    ];
  });
}

/** Where a list entry keeps one value: `entry` is the entry's path, e.g. `machines[2]`. */
interface Use {
  readonly entry: string;
  readonly key: string;
  readonly value: string | undefined;
}

/** Reports each value that an earlier entry already used, naming that entry. */
function duplicates(uses: readonly Use[], normalise: (v: string) => string = (v) => v): Problem[] {
  const firstSeen = new Map<string, string>();
  const problems: Problem[] = [];
  for (const use of uses) {
    if (use.value === undefined) continue;
    const seen = normalise(use.value);
    const earlier = firstSeen.get(seen);
    if (earlier === undefined) firstSeen.set(seen, use.entry);
    else
      problems.push({
        path: `${use.entry}.${use.key}`,
        message: `${JSON.stringify(use.value)} is already used by ${earlier}`,
      });
  }
  return problems;
}

const uses = (views: readonly MachineView[], key: "name" | "host"): Use[] =>
  views.map((v) => ({ entry: v.path, key, value: v[key] }));

function serverCount(views: readonly MachineView[], list: unknown): Problem[] {
  if (!Array.isArray(list)) return [];
  if (list.length === 0)
    return [{ path: "machines", message: "at least one machine is required (the k3s server)" }];
  const servers = views.filter((v) => v.role === "server").length;
  if (servers === 0)
    return [
      {
        path: "machines",
        message: 'no machine has role "server": a lab needs 1 server, or an odd number ≥ 3 for HA',
      },
    ];
  if (servers % 2 === 0)
    return [
      {
        path: "machines",
        message: `${servers} servers cannot keep an etcd quorum: use 1 server, or an odd number ≥ 3 for HA`,
      },
    ];
  return [];
}

function machineRules(views: readonly MachineView[], raw: Dict): Problem[] {
  const problems: Problem[] = [];
  const sshUser = str(dict(raw, "ssh"), "user");
  const many = views.length > 1;
  for (const v of views) {
    if (v.kind === "pi" && v.arch === "amd64")
      problems.push({ path: `${v.path}.arch`, message: 'a pi is arm64, got "amd64"' });
    const local = v.host !== undefined && isLocalHost(v.host);
    if (!local && v.host !== undefined && v.user === undefined && sshUser === undefined)
      problems.push({
        path: `${v.path}.user`,
        message: "no SSH user: set ssh.user for the lab or user on this machine",
      });
    if (local && many && v.role === "server")
      problems.push({
        path: `${v.path}.host`,
        message: `${JSON.stringify(v.host)} is where other machines would join the server: use an address they can reach (the laptop's LAN address)`,
      });
  }
  return problems;
}

function imageRules(raw: Dict, views: readonly MachineView[]): Problem[] {
  const image = dict(raw, "image");
  const build = image?.["build"] ?? true;
  const building = build === true || build === "true";
  const problems: Problem[] = [];
  const repository = str(image, "repository");
  const ref = repository === undefined ? undefined : parseImageReference(repository);
  if (repository !== undefined && ref === undefined)
    problems.push({
      path: "image.repository",
      message: `expected an image reference such as docker.io/<you>/ros_demo, got ${JSON.stringify(repository)}`,
    });
  else if (building && ref !== undefined && (ref.tag !== undefined || ref.digest !== undefined))
    problems.push({
      path: "image.repository",
      message: `give the repository without a tag or digest when image.build is true (rosfleet tags the build with ros.distro and pins its digest), got ${JSON.stringify(repository)}`,
    });
  if (repository === undefined)
    problems.push({
      path: "image.repository",
      message: building
        ? "required when image.build is true: where to push the image, e.g. docker.io/<you>/ros_demo"
        : "required: the published image to deploy, e.g. docker.io/<you>/ros_demo",
    });
  const platforms = image?.["platforms"];
  if (building && Array.isArray(platforms)) {
    const missing = new Set<string>();
    for (const v of views) {
      const platform = `linux/${v.arch}`;
      const known = (ARCHES as readonly string[]).includes(v.arch);
      if (!known || platforms.includes(platform) || missing.has(platform)) continue;
      missing.add(platform);
      problems.push({
        path: "image.platforms",
        message: `lacks ${platform}, which ${v.path}${v.name === undefined ? "" : ` (${v.name})`} runs`,
      });
    }
  }
  return problems;
}

function secretRules(raw: Dict): Problem[] {
  const problems: Problem[] = [];
  const user = raw["registryUsername"];
  const password = raw["registryPassword"];
  if ((user === undefined) !== (password === undefined))
    problems.push({
      path: user === undefined ? "registryUsername" : "registryPassword",
      message:
        "registryUsername and registryPassword go together (set the password with pulumi config set --secret registryPassword)",
    });
  const key = raw["sshPrivateKey"];
  // Never quote the value: it is a secret.
  if (typeof key === "string" && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key))
    problems.push({
      path: "sshPrivateKey",
      message:
        "expected a PEM or OpenSSH private key (pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519)",
    });
  return problems;
}

function multusRules(raw: Dict): Problem[] {
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

function workloadRules(raw: Dict, views: readonly MachineView[]): Problem[] {
  const list = dict(raw, "ros")?.["workloads"];
  if (!Array.isArray(list)) return [];
  const workloads = list.map((w: unknown, i) => ({
    entry: `ros.workloads[${i}]`,
    key: "name",
    value: isDict(w) ? str(w, "name") : undefined,
  }));
  const problems: Problem[] = duplicates(workloads);
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

function airgapRules(
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

/** What the cross-key rules may look at besides the configuration. */
export interface CheckEnv {
  /** Whether a path (relative to the project directory) is a readable file. */
  readonly isFile: (path: string) => boolean;
}

/** Every cross-key rule of the contract, over the raw (not yet validated) configuration. */
export function crossChecks(raw: Dict, env: CheckEnv): Problem[] {
  const views = machineViews(raw);
  return [
    ...serverCount(views, raw["machines"]),
    ...duplicates(uses(views, "name")),
    ...duplicates(uses(views, "host"), (h) =>
      isLocalHost(h) ? "localhost" : h.trim().toLowerCase(),
    ),
    ...machineRules(views, raw),
    ...imageRules(raw, views),
    ...workloadRules(raw, views),
    ...multusRules(raw),
    ...airgapRules(raw, views, env.isFile),
    ...secretRules(raw),
  ];
}
