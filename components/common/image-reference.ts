// Image references (`[registry/]path[:tag][@sha256:digest]`), parsed the way Docker does.

export interface ImageReference {
  /** Registry host (and port): `docker.io` when the reference names none. */
  readonly registry: string;
  /** Repository path within the registry, e.g. `clover-lab/ros_demo`. */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const DOMAIN =
  "(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?";
const REFERENCE = new RegExp(
  `^(?:(${DOMAIN})/)?(${COMPONENT}(?:/${COMPONENT})*)(?::([\\w][\\w.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$`,
);

/** Parses an image reference; undefined when it is not one. */
export function parseImageReference(text: string): ImageReference | undefined {
  const m = REFERENCE.exec(text);
  if (m === null) return undefined;
  const [, first, rest, tag, digest] = m;
  // Like Docker: the first part is a registry only if it looks like a host (dot, port, localhost).
  const isHost = first !== undefined && (/[.:]/.test(first) || first === "localhost");
  return {
    registry: isHost ? first : "docker.io",
    path: isHost || first === undefined ? rest : `${first}/${rest}`,
    tag,
    digest,
  };
}

/** The registry an image reference names (docker.io when none, or when it does not parse). */
export const imageRegistry = (text: string): string =>
  parseImageReference(text)?.registry ?? "docker.io";

/**
 * The repository of the dev stack's image, which no registry holds (it is imported into k3s):
 * `.invalid` never resolves (RFC 2606), so a node that lacks the image fails to pull it instead
 * of pulling a stranger's image of the same name from Docker Hub.
 */
export const LOCAL_REPOSITORY = "rosfleet.invalid/ros_demo";
