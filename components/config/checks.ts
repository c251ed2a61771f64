// Rules that relate several keys. They read the raw input defensively, so that they can run
// even when the schema has already rejected some field, and every problem is reported at once.
import { parseImageReference } from "../common/image-reference";
import {
  Dict,
  MachineView,
  dict,
  duplicates,
  importsImage,
  isLocalHost,
  machineViews,
  str,
  uses,
} from "./raw";
export { isLocalHost };
import { ARCHES } from "./schema";
import { ModeEnv, modeRules } from "./mode-checks";
import {
  airgapRules,
  dashboardRules,
  multusRules,
  registryRules,
  workloadRules,
} from "./stage-checks";
import { k3sArgsRules } from "./k3s-args";
import { serverRules } from "./quorum";
import { NO_PREVIOUS_LAB, PreviousLab } from "./last-update";
import { replacementRules } from "./replacement";
import { SshEnv, sshRules } from "./ssh-checks";
import type { Problem } from "./problem";

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

/** k3s flags that `machines[].nodeIp` and `.flannelIface` set: given twice, k3s takes a list. */
const ADDRESS_FLAGS = [
  ["nodeIp", "--node-ip"],
  ["flannelIface", "--flannel-iface"],
] as const;

function addressRules(views: readonly MachineView[], raw: Dict): Problem[] {
  const k3s = dict(raw, "k3s");
  const flags = (key: string): string[] => {
    const list = k3s?.[key];
    return Array.isArray(list) ? list.filter((f): f is string => typeof f === "string") : [];
  };
  const problems: Problem[] = [];
  for (const v of views) {
    const role = v.role === "server" ? "server" : "agent";
    const given = flags(`${role}Args`).map((f) => f.split("=")[0]);
    for (const [key, flag] of ADDRESS_FLAGS)
      if (v[key] !== undefined && given.includes(flag))
        problems.push({
          path: `${v.path}.${key}`,
          message: `k3s.${role}Args sets ${flag} too, for every ${role}: keep only ${key} on each machine`,
        });
  }
  return [...problems, ...duplicates(uses(views, "nodeIp"))];
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
  // Every node pulls the image itself: on the k3s rosfleet installs, a registry named
  // "localhost" is a different machine on each of them (only the dev stack's single node, which
  // runs the registry, finds it). An existing cluster may serve one on every node (MicroK8s's
  // registry add-on at localhost:32000), so it is left to it.
  const registryHost = ref?.registry.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  const installsK3s = raw["cluster"] === undefined;
  if (registryHost !== undefined && isLocalHost(registryHost) && installsK3s && views.length > 1)
    problems.push({
      path: "image.repository",
      message: `${JSON.stringify(repository)} is on ${registryHost}, but the lab has ${views.length} machines and each pulls from itself, so the agents would not find it: name the registry by an address every machine reaches (e.g. <laptop address>${ref?.registry.slice(registryHost.length) ?? ""}/${ref?.path ?? "ros_demo"})`,
    });
  const imported = importsImage({
    installsK3s,
    hosts: views.map((v) => v.host),
    build: building,
    repository,
  });
  if (repository === undefined && !imported)
    problems.push({
      path: "image.repository",
      message: building
        ? `required for this lab: where to push the image so that every node pulls it, e.g. docker.io/<you>/ros_demo (only a lab of one machine, the one running pulumi, goes without one: Docker builds the image there and k3s imports it)`
        : "required: the published image to deploy, e.g. docker.io/<you>/ros_demo",
    });
  // With docker: true k3s runs pods with Docker (cri-dockerd), whose store knows no digest of an
  // image it never pushed: the import into k3s's containerd is what the kubelet reads.
  if (imported && views[0]?.docker === true)
    problems.push({
      path: `${views[0].path}.docker`,
      message:
        "k3s would run the pods with Docker, but with no image.repository the image is imported into k3s's containerd: remove docker (the dev stack needs no Docker in k3s), or set image.repository to push the build to a registry",
    });
  if (imported && str(image, "builder") !== undefined)
    problems.push({
      path: "image.builder",
      message:
        "names a buildx builder, but with no image.repository the image is built by Docker's own builder (docker build) and imported into k3s: remove image.builder, or set image.repository to build with that builder and push",
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
  return problems;
}

/** What the cross-key rules may look at besides the configuration. */
export interface CheckEnv extends ModeEnv, SshEnv {
  /** Whether a path (relative to the project directory) is a readable file. */
  readonly isFile: (path: string) => boolean;
  /** The lab since the stack's last update (its state); undefined: a first update. */
  readonly previous?: PreviousLab;
}

/** Every cross-key rule of the contract, over the raw (not yet validated) configuration. */
export function crossChecks(raw: Dict, env: CheckEnv): Problem[] {
  const views = machineViews(raw);
  return [
    ...modeRules(raw, views, env),
    ...serverRules(views, raw, env.previous ?? NO_PREVIOUS_LAB),
    ...replacementRules(views, raw, env.previous ?? NO_PREVIOUS_LAB),
    ...duplicates(uses(views, "name")),
    ...duplicates(uses(views, "host"), (h) =>
      isLocalHost(h) ? "localhost" : h.trim().toLowerCase(),
    ),
    ...machineRules(views, raw),
    ...addressRules(views, raw),
    ...k3sArgsRules(raw),
    ...imageRules(raw, views),
    ...workloadRules(raw, views),
    ...multusRules(raw, views),
    ...airgapRules(raw, views, env.isFile),
    ...registryRules(raw, env.isSecret),
    ...dashboardRules(raw),
    ...secretRules(raw),
    ...sshRules(raw, views, env),
  ];
}
