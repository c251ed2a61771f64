// Stage "dashboard": Headlamp (the Kubernetes dashboard the lab used is archived) as a plain
// Deployment + Service, so preview works without a cluster, and a ServiceAccount whose token
// (token.ts: it expires after dashboard.tokenHours) logs in with exactly the chosen access
// (ACCESS below). Headlamp itself holds no credential: it forwards the token the user logs in with.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterAccess } from "../common/kubeconfig";
import { DashboardAccess } from "../config";
import { DynamicHost } from "../common/dynamic";
import { DashboardToken } from "./token";
import {
  appLabels,
  containerSecurity,
  deploymentArgs,
  podSecurity,
  podSecurityLabels,
} from "../k8s";

export const HEADLAMP_IMAGE = "ghcr.io/headlamp-k8s/headlamp:v0.39.0";
export const HEADLAMP_NAMESPACE = "headlamp";
export const HEADLAMP_PORT = 4466;
/** The local port the README's port-forward uses. */
export const LOCAL_PORT = 8080;

/** What a dashboard login may do: built-in ClusterRoles bound cluster-wide, one bound in the
 * lab's namespaces only, and the node verbs the built-in roles lack (they hold no
 * cluster-scoped objects). `admin` is never bound cluster-wide: there it would read every
 * Secret, create pods and impersonate ServiceAccounts in every namespace — kube-system's Helm
 * accounts are cluster-admin — so it would be cluster-admin in all but name. */
export const ACCESS: Readonly<
  Record<
    DashboardAccess,
    {
      readonly clusterRole: string;
      readonly labRole: string | undefined;
      readonly nodeVerbs: readonly string[];
    }
  >
> = {
  // Everything the robots run, read-only (no Secrets), and the nodes they run on.
  view: { clusterRole: "view", labRole: undefined, nodeVerbs: ["get", "list", "watch"] },
  // A lab admin: read everything as `view` does; change the lab's own workloads (restart,
  // scale, logs, exec, their Secrets); cordon or uncordon nodes.
  admin: { clusterRole: "view", labRole: "admin", nodeVerbs: ["get", "list", "watch", "patch"] },
};

/** Headlamp's user and group in its image (non-root). */
export const HEADLAMP_USER = 100;
export const HEADLAMP_GROUP = 101;
/** Where Kubernetes would mount a ServiceAccount token: Headlamp's -in-cluster mode reads the
 * API server's CA there and needs a token file, which rosfleet leaves empty. */
const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const NO_TOKEN = "headlamp-no-token";

export interface DashboardArgs {
  /** `dashboard.access`. */
  readonly access: DashboardAccess;
  /** The lab's namespaces, where `admin` may change things. */
  readonly labNamespaces: readonly pulumi.Input<string>[];
  /** `dashboard.tokenHours`: the login token's lifetime. */
  readonly tokenHours: number;
  /** The API server to mint the token with (secret). */
  readonly clusterAccess: pulumi.Input<ClusterAccess>;
}

/** What the `dashboard` output says. */
export interface DashboardInfo {
  readonly access: DashboardAccess;
  readonly portForward: string;
  readonly url: string;
  /** Paste into Headlamp's login (secret). */
  readonly token: string;
  /** When the token stops working (ISO 8601); the first `pulumi up` after mints a new one. */
  readonly expires: string;
}

/** Headlamp and its login token (`rosfleet:dashboard:Headlamp`). */
export class Dashboard extends pulumi.ComponentResource {
  public readonly info: pulumi.Output<DashboardInfo>;

  constructor(name: string, args: DashboardArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rosfleet:dashboard:Headlamp", name, {}, opts);
    const child = { parent: this };
    const ns = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      // Headlamp's own pod passes `restricted`; nothing less may start beside it.
      { metadata: { name: HEADLAMP_NAMESPACE, labels: podSecurityLabels("restricted") } },
      child,
    ).metadata.name;
    const labels = appLabels("headlamp");
    // An empty token file: Headlamp's in-cluster client must find one, and must not hold a
    // credential of its own (users' tokens are the only ones it acts with).
    const noToken = new k8s.core.v1.ConfigMap(
      `${name}-no-token`,
      { metadata: { name: NO_TOKEN, namespace: ns, labels }, data: { token: "" } },
      child,
    );
    new k8s.apps.v1.Deployment(
      `${name}-headlamp`,
      deploymentArgs("headlamp", ns, {
        automountServiceAccountToken: false,
        securityContext: podSecurity(HEADLAMP_USER, HEADLAMP_GROUP),
        volumes: [
          {
            name: "in-cluster",
            projected: {
              sources: [
                {
                  configMap: {
                    name: "kube-root-ca.crt",
                    items: [{ key: "ca.crt", path: "ca.crt" }],
                  },
                },
                {
                  downwardAPI: {
                    items: [{ path: "namespace", fieldRef: { fieldPath: "metadata.namespace" } }],
                  },
                },
                {
                  configMap: {
                    name: noToken.metadata.name,
                    items: [{ key: "token", path: "token" }],
                  },
                },
              ],
            },
          },
          { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
        ],
        containers: [
          {
            name: "headlamp",
            image: HEADLAMP_IMAGE,
            // In-cluster: users log in with a token; Headlamp acts with that token's RBAC.
            args: ["-in-cluster", "-plugins-dir=/headlamp/plugins"],
            securityContext: containerSecurity,
            volumeMounts: [
              { name: "in-cluster", mountPath: SA_DIR, readOnly: true },
              { name: "tmp", mountPath: "/tmp" },
            ],
            ports: [{ name: "http", containerPort: HEADLAMP_PORT }],
            readinessProbe: { httpGet: { path: "/", port: HEADLAMP_PORT } },
            resources: {
              requests: { cpu: "20m", memory: "64Mi" },
              limits: { cpu: "500m", memory: "256Mi" },
            },
          },
        ],
      }),
      child,
    );
    new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: { name: "headlamp", namespace: ns, labels },
        spec: {
          type: "ClusterIP",
          selector: labels,
          ports: [{ name: "http", port: 80, targetPort: HEADLAMP_PORT }],
        },
      },
      child,
    );

    const user = new k8s.core.v1.ServiceAccount(
      `${name}-user`,
      { metadata: { name: `dashboard-${args.access}`, namespace: ns } },
      child,
    );
    const access = ACCESS[args.access];
    const subjects = [{ kind: "ServiceAccount", name: user.metadata.name, namespace: ns }];
    const bind = (suffix: string, role: pulumi.Input<string>) =>
      new k8s.rbac.v1.ClusterRoleBinding(
        `${name}-user-binding${suffix}`,
        {
          metadata: { name: `rosfleet-dashboard-${args.access}${suffix}`, labels },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
          subjects,
        },
        child,
      );
    bind("", access.clusterRole);
    if (access.labRole !== undefined)
      args.labNamespaces.forEach(
        (namespace, i) =>
          new k8s.rbac.v1.RoleBinding(
            `${name}-user-lab-binding${i === 0 ? "" : `-${i}`}`,
            {
              metadata: { name: `rosfleet-dashboard-${args.access}`, namespace, labels },
              roleRef: {
                apiGroup: "rbac.authorization.k8s.io",
                kind: "ClusterRole",
                name: access.labRole as string,
              },
              subjects,
            },
            child,
          ),
      );
    const nodes = new k8s.rbac.v1.ClusterRole(
      `${name}-nodes`,
      {
        metadata: { name: `rosfleet-dashboard-${args.access}-nodes`, labels },
        rules: [{ apiGroups: [""], resources: ["nodes"], verbs: [...access.nodeVerbs] }],
      },
      child,
    );
    bind("-nodes", nodes.metadata.name);
    // A token that expires (dashboard.tokenHours), minted on up and renewed by the first up
    // after it has expired.
    const minted = new DashboardToken(
      `${name}-user-token`,
      {
        access: args.clusterAccess,
        namespace: ns,
        serviceAccount: user.metadata.name,
        serviceAccountUid: user.metadata.uid,
        hours: args.tokenHours,
      },
      { parent: this, provider: new DynamicHost(`${name}-dynamic`, child) },
    );
    const token = pulumi.secret(minted.token);
    this.info = pulumi.all([ns, token, minted.expiresAt]).apply(([namespace, t, expiresAt]) => ({
      access: args.access,
      portForward: `kubectl -n ${namespace} port-forward svc/headlamp ${LOCAL_PORT}:80`,
      url: `http://localhost:${LOCAL_PORT}`,
      token: t,
      expires: new Date(expiresAt).toISOString(),
    }));
    this.registerOutputs({ info: this.info });
  }
}
