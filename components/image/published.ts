// `image.build: false`: the published image must run on every arch of the lab. A single-arch
// image on a Pi is otherwise an `exec format error` CrashLoop found minutes after `up`; here its
// manifest is read from the registry (distribution API: the index's platforms, or a single
// image's config) before anything is declared, at preview too.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, LabNode, Platform } from "../config";
import { parseImageReference } from "../common/image-reference";
import { Fetch, openSession, valueOf } from "./login";

const INDEX_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
];
const IMAGE_TYPES = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
];

interface ManifestDoc {
  readonly mediaType?: string;
  readonly manifests?: readonly { readonly platform?: { os?: string; architecture?: string } }[];
  readonly config?: { readonly digest?: string };
}

/**
 * The platforms (`linux/arm64`, …) a published image has, or why they could not be read (the
 * registry unreachable from here, a missing tag, a refused login).
 */
export async function publishedPlatforms(
  reference: string,
  login: { readonly username: string; readonly password: string } | undefined,
  fetchImpl: Fetch = fetch,
  plainHttp = false,
): Promise<{ platforms: string[] } | { unknown: string }> {
  const ref = parseImageReference(reference);
  if (ref === undefined) return { unknown: "not an image reference" };
  const session = await openSession(ref.registry, ref.path, "pull", login, fetchImpl, plainHttp);
  if (session === undefined) return { unknown: `registry ${ref.registry} did not answer` };
  if (session === "refused")
    return {
      unknown: `registry ${ref.registry} refused ${login === undefined ? "anonymous pulls" : "the login"}`,
    };
  const get = async (what: string, accept: readonly string[]) => {
    const r = await fetchImpl(`${session.base}${ref.path}/${what}`, {
      headers: { ...session.headers, Accept: accept.join(", ") },
      signal: AbortSignal.timeout(15_000),
    });
    if (!r.ok) throw new Error(`${r.status} for ${what}`);
    return (await r.json()) as ManifestDoc;
  };
  try {
    const doc = await get(`manifests/${ref.digest ?? ref.tag ?? "latest"}`, [
      ...INDEX_TYPES,
      ...IMAGE_TYPES,
    ]);
    if (doc.manifests !== undefined)
      return {
        // BuildKit's attestation manifests say unknown/unknown: not a platform.
        platforms: doc.manifests
          .map((m) => `${m.platform?.os ?? "unknown"}/${m.platform?.architecture ?? "unknown"}`)
          .filter((p) => p !== "unknown/unknown"),
      };
    if (doc.config?.digest === undefined) return { unknown: "the manifest names no image config" };
    const config = (await get(`blobs/${doc.config.digest}`, ["*/*"])) as {
      os?: string;
      architecture?: string;
    };
    return { platforms: [`${config.os ?? "linux"}/${config.architecture ?? "unknown"}`] };
  } catch (e) {
    return {
      unknown: `its manifest could not be read (${e instanceof Error ? e.message : String(e)})`,
    };
  }
}

/** The problem, when the lab has a node whose platform the image lacks. */
export function missingPlatformProblem(
  reference: string,
  platforms: readonly string[],
  nodes: readonly LabNode[],
): string | undefined {
  const lacking = nodes.filter((n) => !platforms.includes(`linux/${n.arch}`));
  if (lacking.length === 0) return undefined;
  const needed = [...new Set(nodes.map((n) => `linux/${n.arch}` as Platform))];
  const names = lacking.map((n) => `${n.name} (linux/${n.arch})`).join(", ");
  return `${reference} has ${platforms.length === 0 ? "no platform" : `only ${platforms.join(", ")}`}, but ${names} would run it: publish it for ${needed.join(" and ")} (docker buildx build --platform ${needed.join(",")} --push), or let rosfleet build it (image.build: true)`;
}

/**
 * With `image.build: false`: throws the one config error when the published image lacks a
 * platform of the lab; warns (and goes on) when the registry cannot be read from here.
 */
export async function checkPublishedImage(
  image: { readonly build: boolean; readonly repository: string },
  nodes: readonly LabNode[],
  username: string | undefined,
  password: pulumi.Input<string> | undefined,
  fetchImpl: Fetch = fetch,
  plainHttp: (registry: string) => boolean = () => false,
): Promise<void> {
  if (image.build || nodes.length === 0) return;
  const login =
    username === undefined || password === undefined
      ? undefined
      : { username, password: await valueOf(password) };
  const found = await publishedPlatforms(
    image.repository,
    login,
    fetchImpl,
    plainHttp(parseImageReference(image.repository)?.registry ?? ""),
  );
  if ("unknown" in found) {
    pulumi.log.warn(
      `image.repository: could not check which platforms ${image.repository} has: ${found.unknown}`,
    );
    return;
  }
  const problem = missingPlatformProblem(image.repository, found.platforms, nodes);
  if (problem !== undefined)
    throw new ConfigError([{ path: "image.repository", message: problem }]);
}
