// What the stages need that follows from the config alone: computed once, in the config stage,
// so index.ts only wires stages together.
import * as pulumi from "@pulumi/pulumi";
import { imageRegistry } from "../common/image-reference";
import { REGISTRY_SECRET_FIELDS, Registries, registriesSchema } from "./schema";

/** The registry login the nodes pull with (the one that pushes the build). */
export interface PullCredentials {
  /** The registry of `image.repository` (docker.io when it names none). */
  readonly registry: string;
  readonly username: string;
  readonly password: pulumi.Input<string>;
}

/** `registryUsername`/`registryPassword` as pull credentials, when the stack has both. */
export function pullCredentials(
  settings: { readonly image: { readonly repository: string }; readonly registryUsername?: string },
  password: pulumi.Input<string> | undefined,
): PullCredentials | undefined {
  if (settings.registryUsername === undefined || password === undefined) return undefined;
  return {
    registry: imageRegistry(settings.image.repository),
    username: settings.registryUsername,
    password,
  };
}

/** The taints among `taints` that keep a pod without tolerations off a node. */
export const repelling = (taints: readonly string[]): string[] =>
  taints.filter((t) => /:(NoSchedule|NoExecute)$/.test(t));

/** Nodes of machines whose own taints keep the ROS pods off them (they tolerate none): node →
 * those taints. */
export const taintedNodes = (settings: {
  readonly machines: readonly { readonly name: string; readonly taints: readonly string[] }[];
}): Record<string, string[]> =>
  Object.fromEntries(
    settings.machines.flatMap((m) =>
      repelling(m.taints).length === 0 ? [] : [[m.name, repelling(m.taints)]],
    ),
  );

/** The nodes workloads and the delivery check may use: every one not cordoned, nor tainted
 * against pods that tolerate nothing (the ROS pods, and the check, which tolerates what they
 * tolerate: it must not pass on a node where no ROS pod may run). */
export const schedulableNodes = (settings: {
  readonly nodes: readonly { readonly name: string; readonly cordon: boolean }[];
  readonly machines: readonly { readonly name: string; readonly taints: readonly string[] }[];
}): string[] => {
  const tainted = taintedNodes(settings);
  return settings.nodes.filter((n) => !n.cordon && !(n.name in tainted)).map((n) => n.name);
};

/** What `preview` may show of a secret value. */
export const REDACTED = "[secret]";

/** Whether `k3s.registries` holds a credential (then its file on the machines is a secret). */
export const hasRegistrySecrets = (r: Registries): boolean =>
  Object.values(r.configs).some((c) =>
    REGISTRY_SECRET_FIELDS.some((f) => c.auth?.[f] !== undefined),
  );

/** `k3s.registries` with every credential replaced by `[secret]`: what settings keep. */
export function redactRegistries(r: Registries): Registries {
  const configs = Object.fromEntries(
    Object.entries(r.configs).map(([registry, c]) => {
      if (c.auth === undefined) return [registry, c];
      const auth = { ...c.auth };
      for (const f of REGISTRY_SECRET_FIELDS) if (auth[f] !== undefined) auth[f] = REDACTED;
      return [registry, { ...c, auth }];
    }),
  );
  return { ...r, configs };
}

/**
 * `k3s.registries` as the stack holds it (the `k3s` object from Pulumi config), credentials
 * included: a secret output when it has any, so it is encrypted in state and hidden in diffs.
 */
export function registriesWithSecrets(
  k3s: { registries?: unknown } | undefined,
): pulumi.Output<Registries> | undefined {
  if (k3s?.registries === undefined) return undefined;
  // parseLab has validated it already.
  const registries = registriesSchema.parse(k3s.registries);
  return hasRegistrySecrets(registries) ? pulumi.secret(registries) : pulumi.output(registries);
}
