// Pull credentials for the nodes: the same registry login that pushes the build, as the
// `.dockerconfigjson` of a `kubernetes.io/dockerconfigjson` Secret that the ROS pods'
// ServiceAccount lists, so a private `image.repository` can be pulled by every node.

/** The key kubelets look up for Docker Hub images; any other registry is its host[:port]. */
export const DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/";

export const authKey = (registry: string): string =>
  registry === "docker.io" || registry === "index.docker.io" ? DOCKER_HUB_AUTH_KEY : registry;

/** The Secret's `.dockerconfigjson` for one registry. */
export function dockerConfigJson(registry: string, username: string, password: string): string {
  const auth = Buffer.from(`${username}:${password}`, "utf8").toString("base64");
  return JSON.stringify({ auths: { [authKey(registry)]: { username, password, auth } } });
}
