// Stage "image" without a registry, for a lab of one machine, the one running pulumi (the dev
// stack): Docker's own builder (`docker build`) builds ros_demo there, and the image goes
// straight into k3s's containerd (import.sh), referenced by digest as a pushed build is. Why not
// @pulumi/docker-build here: it drives only BuildKit builders (docker-container, kubernetes,
// remote) — never Docker's own — so it would need a builder made by hand or pulled from Docker
// Hub, and its output would still have to reach containerd. Labs of several machines keep the
// registry: one multi-arch build, and each node pulls only the layers that changed.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, Distro } from "../config";
import { parseImageReference } from "../common/image-reference";
import { Step, Target, step } from "../machine/step";
import { renderScript } from "../shell";

/** What the import needs of the k3s stage: the machine, and the install it imports into. */
export interface ImageHost {
  readonly target: Target;
  /** The k3s server's install: the image goes in once k3s runs, and again into a new k3s. */
  readonly install: Step;
}

/**
 * The sha256 of a build context: every file's path (relative, `/`-separated) and contents, in
 * path order — so a change of the sources is a change of the import step, seen in `preview`.
 */
export function sourcesDigest(dir: string): string {
  const files = (fs.readdirSync(dir, { recursive: true, encoding: "utf8" }) as string[])
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .map((f) => f.split(path.sep).join("/"))
    .sort();
  const hash = createHash("sha256");
  for (const file of files) {
    const content = createHash("sha256").update(fs.readFileSync(path.join(dir, file)));
    hash.update(`${file}\0${content.digest("hex")}\n`);
  }
  return hash.digest("hex");
}

/** Whether an executable `name` is on `searchPath` (a PATH value). */
export function onPath(name: string, searchPath: string): boolean {
  return searchPath
    .split(path.delimiter)
    .filter((dir) => dir !== "")
    .some((dir) => {
      try {
        fs.accessSync(path.join(dir, name), fs.constants.X_OK);
        return fs.statSync(path.join(dir, name)).isFile();
      } catch {
        return false;
      }
    });
}

/** Tests say whether this machine has docker (a unit test may run where it has none); the
 * program looks on the PATH. */
const DOCKER = Symbol.for("rosfleet.dockerFound");
type DockerSlot = { [DOCKER]?: () => boolean };

export function setDockerLookup(found: (() => boolean) | undefined): void {
  (globalThis as DockerSlot)[DOCKER] = found;
}

const dockerFound = (): boolean =>
  (globalThis as DockerSlot)[DOCKER]?.() ?? onPath("docker", process.env.PATH ?? "");

/**
 * Throws the config error, at preview too, when the image is to be built here and this machine
 * has no `docker`: otherwise k3s would be installed first and the build fail after it.
 */
export function requireDocker(
  importInto: string | undefined,
  found: () => boolean = dockerFound,
): void {
  if (importInto === undefined || found()) return;
  throw new ConfigError([
    {
      path: "image.repository",
      message: `not set, so Docker builds the image on ${importInto} (this machine) and k3s imports it, but no docker command is on the PATH: install Docker Engine (Debian/Ubuntu: sudo apt-get install docker.io) and start it, or set image.repository to push the build to a registry`,
    },
  ]);
}

export interface ImportParams {
  readonly repository: string;
  readonly distro: Distro;
  /** Relative to the project directory. */
  readonly context: string;
  readonly sources: string;
  /** The k3s install's id. */
  readonly install: string;
  /** Filesystem prefix of k3s ("" on a real machine). */
  readonly root?: string;
}

const script = (file: string) => path.join(__dirname, file);

/** The tag Docker gives the build (it names the image in the archive k3s imports). */
export const localTag = (repository: string, distro: Distro): string => `${repository}:${distro}`;

/** The script that builds and imports (pure: tests run exactly what is sent). */
export function importScript(p: ImportParams): string {
  return renderScript(script("import.sh"), {
    ROOT: p.root ?? "",
    TAG: localTag(p.repository, p.distro),
    REPOSITORY: p.repository,
    DISTRO: p.distro,
    CONTEXT: p.context,
    DOCKERFILE: `${p.context}/Dockerfile`,
    SOURCES: p.sources,
    INSTALL: p.install,
  });
}

/** The undo: the image's names out of k3s and Docker. */
export function removeScript(p: Pick<ImportParams, "repository" | "distro" | "root">): string {
  return renderScript(script("import-remove.sh"), {
    ROOT: p.root ?? "",
    TAG: localTag(p.repository, p.distro),
    REPOSITORY: p.repository,
  });
}

/** The reference import.sh printed (its last line), checked to be `<repository>@sha256:…`. */
export function importedRef(stdout: string, repository: string): string {
  const last = stdout.trim().split("\n").pop()?.trim() ?? "";
  const ref = parseImageReference(last);
  const wanted = parseImageReference(repository);
  if (
    ref?.digest === undefined ||
    ref.tag !== undefined ||
    ref.registry !== wanted?.registry ||
    ref.path !== wanted.path
  )
    throw new Error(
      `the image import printed ${JSON.stringify(last)}, not ${repository}@sha256:<digest>`,
    );
  return last;
}

/** Declares the build-and-import step on `host`; its output is the pods' image reference. */
export function importImage(
  name: string,
  args: { readonly host: ImageHost; readonly repository: string; readonly distro: Distro },
  context: string,
  opts: pulumi.CustomResourceOptions,
): { readonly step: Step; readonly ref: pulumi.Output<string> } {
  const { host, repository, distro } = args;
  const sources = sourcesDigest(context);
  const imported = step(
    name,
    host.target,
    {
      asRoot: true,
      script: host.install.id.apply((install) =>
        importScript({ repository, distro, context, sources, install }),
      ),
      deleteScript: removeScript({ repository, distro }),
    },
    pulumi.mergeOptions(opts, { dependsOn: [host.install] }),
  );
  return { step: imported, ref: imported.stdout.apply((out) => importedRef(out, repository)) };
}
