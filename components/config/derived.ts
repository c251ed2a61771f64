// What the stages need that follows from the config alone: computed once, in the config stage,
// so index.ts only wires stages together.
import type * as pulumi from "@pulumi/pulumi";
import { imageRegistry } from "../image/reference";

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

/** The nodes workloads and the delivery check may use: every one not cordoned. */
export const schedulableNodes = (settings: {
  readonly nodes: readonly { readonly name: string; readonly cordon: boolean }[];
}): string[] => settings.nodes.filter((n) => !n.cordon).map((n) => n.name);
