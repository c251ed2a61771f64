// Small builders for the Kubernetes objects several stages declare the same way.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

/** Labels that select one rosfleet app's pods. */
export const appLabels = (name: string): Record<string, string> => ({
  "app.kubernetes.io/name": name,
  "app.kubernetes.io/part-of": "rosfleet",
});

/** Pod-level security of every rosfleet pod: a non-root user, the runtime's seccomp profile. */
export const podSecurity = (user: number, group: number = user) => ({
  runAsNonRoot: true,
  runAsUser: user,
  runAsGroup: group,
  seccompProfile: { type: "RuntimeDefault" },
});

/** Container-level security: no privilege, no capability, nothing written outside volumes. */
export const containerSecurity = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
};

/** Pod Security admission levels, strictest first. */
export type PodSecurityLevel = "restricted" | "baseline" | "privileged";

/**
 * Labels that make the API server's Pod Security admission enforce `level` in a namespace (and
 * warn and audit at it): whoever may create pods there — the dashboard's `admin` — can create
 * only pods of that level, never a privileged or hostPath pod, which would be root on a node.
 */
export const podSecurityLabels = (level: PodSecurityLevel): Record<string, string> =>
  Object.fromEntries(
    ["enforce", "warn", "audit"].flatMap((mode) => [
      [`pod-security.kubernetes.io/${mode}`, level],
      [`pod-security.kubernetes.io/${mode}-version`, "latest"],
    ]),
  );

/** Pods that must run on their node whatever its taints (per-node checks, beacons). */
export const tolerateAll = [{ operator: "Exists" }];

export interface DeploymentOptions {
  readonly replicas?: number;
  /** Pod annotations (e.g. the Multus network). */
  readonly annotations?: Record<string, string>;
}

/** A Deployment named `name` in `namespace` whose pods carry `appLabels(name)`. */
export function deploymentArgs(
  name: string,
  namespace: pulumi.Input<string>,
  podSpec: pulumi.Input<k8s.types.input.core.v1.PodSpec>,
  opts: DeploymentOptions = {},
): k8s.apps.v1.DeploymentArgs {
  const labels = appLabels(name);
  return {
    metadata: { name, namespace, labels },
    spec: {
      replicas: opts.replicas ?? 1,
      selector: { matchLabels: labels },
      template: {
        metadata: {
          labels,
          ...(opts.annotations === undefined ? {} : { annotations: opts.annotations }),
        },
        spec: podSpec,
      },
    },
  };
}
