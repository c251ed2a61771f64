// Which buildx builder the build will get, found before anything runs: Docker's own builder (the
// `docker` driver of a Docker context, e.g. `default` or Docker Desktop's `desktop-linux`)
// cannot export a build cache ("Cache export is not supported for the docker driver", which
// `ignoreError` does not cover) nor build several platforms into one image, and the
// docker-build provider only says so halfway through `up`.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, LabSettings } from "../config";
import { Problem } from "../config/problem";

/** buildx's builder instances (`$DOCKER_CONFIG/buildx/instances/<name>`): name → driver. */
export type Builders = ReadonlyMap<string, string>;

/** The line the README gives for a builder that can do what rosfleet asks. */
export const CREATE_BUILDER =
  "docker buildx create --name rosfleet --driver docker-container --driver-opt network=host --bootstrap";

/** Where buildx keeps its state: $BUILDX_CONFIG, else $DOCKER_CONFIG/buildx, else ~/.docker/buildx. */
export function buildxDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BUILDX_CONFIG !== undefined && env.BUILDX_CONFIG !== "") return env.BUILDX_CONFIG;
  const docker =
    env.DOCKER_CONFIG !== undefined && env.DOCKER_CONFIG !== ""
      ? env.DOCKER_CONFIG
      : path.join(os.homedir(), ".docker");
  return path.join(docker, "buildx");
}

/** Reads the builder instances in `dir` (none when there is no such folder). */
export function readBuilders(dir: string): Builders {
  const instances = path.join(dir, "instances");
  if (!fs.existsSync(instances)) return new Map();
  const builders = new Map<string, string>();
  for (const file of fs.readdirSync(instances)) {
    try {
      const group = JSON.parse(fs.readFileSync(path.join(instances, file), "utf8")) as {
        Name?: unknown;
        Driver?: unknown;
      };
      if (typeof group.Name === "string")
        builders.set(group.Name, typeof group.Driver === "string" ? group.Driver : "");
    } catch {
      // Not a builder buildx could read either: the provider will say so if it is named.
    }
  }
  return builders;
}

/** What the build does with the builder: as configured, or without the cache (one warning). */
export type BuilderPlan =
  | { readonly ok: true; readonly cache: boolean; readonly warning?: string }
  | { readonly ok: false; readonly problem: Problem };

/**
 * The plan for `image` with the builders there are. A named builder that is no instance is a
 * Docker context's builder, whose driver is `docker`. With no builder named the provider takes
 * the first instance that answers, or makes a `docker-container` one itself: no `docker` driver.
 */
export function builderPlan(image: LabSettings["image"], builders: Builders): BuilderPlan {
  const name = image.builder;
  if (!image.build || name === undefined) return { ok: true, cache: image.cache };
  const driver = builders.get(name) ?? "docker";
  if (driver !== "docker") return { ok: true, cache: image.cache };
  const what = `builder ${JSON.stringify(name)} uses the docker driver`;
  const fix = `create one that can (${CREATE_BUILDER}) and name it in image.builder`;
  if (image.platforms.length > 1)
    return {
      ok: false,
      problem: {
        path: "image.builder",
        message: `${what}, which cannot build ${image.platforms.join(" and ")} into one image${image.cache ? " nor push the build cache (image.cache)" : ""}: ${fix}`,
      },
    };
  if (!image.cache) return { ok: true, cache: false };
  return {
    ok: true,
    cache: false,
    warning: `image.cache skipped: ${what}, which cannot push a build cache; to keep one, ${fix}`,
  };
}

/**
 * `image` as the build will run it with the builder it gets: throws the one config error when
 * that builder cannot do it, warns when it builds without the cache.
 */
export function withBuilder(
  image: LabSettings["image"],
  builders: Builders = readBuilders(buildxDir()),
): LabSettings["image"] {
  const plan = builderPlan(image, builders);
  if (!plan.ok) throw new ConfigError([plan.problem]);
  if (plan.warning !== undefined) void pulumi.log.warn(plan.warning);
  return plan.cache === image.cache ? image : { ...image, cache: plan.cache };
}
