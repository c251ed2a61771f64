// Stage "dashboard": Headlamp (the Kubernetes dashboard the lab used is archived) as a plain
// Deployment + Service, so preview works without a cluster, and a ServiceAccount whose
// long-lived token logs in with exactly the chosen access: `view`, or `admin` (cluster-admin).
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { DashboardAccess } from "../config";
import { appLabels, deploymentArgs } from "../k8s";

export const HEADLAMP_IMAGE = "ghcr.io/headlamp-k8s/headlamp:v0.39.0";
export const HEADLAMP_NAMESPACE = "headlamp";
export const HEADLAMP_PORT = 4466;
/** The local port the README's port-forward uses. */
export const LOCAL_PORT = 8080;

/** The ClusterRole a dashboard user is bound to. */
export const clusterRoleFor = (access: DashboardAccess): string =>
  access === "admin" ? "cluster-admin" : "view";

export interface DashboardArgs {
  /** `dashboard.access`. */
  readonly access: DashboardAccess;
}

/** What the `dashboard` output says. */
export interface DashboardInfo {
  readonly access: DashboardAccess;
  readonly portForward: string;
  readonly url: string;
  /** Paste into Headlamp's login (secret). */
  readonly token: string;
}

/** Headlamp and its login token (`rosfleet:dashboard:Headlamp`). */
export class Dashboard extends pulumi.ComponentResource {
  public readonly info: pulumi.Output<DashboardInfo>;

  constructor(name: string, args: DashboardArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rosfleet:dashboard:Headlamp", name, {}, opts);
    const child = { parent: this };
    const ns = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      { metadata: { name: HEADLAMP_NAMESPACE } },
      child,
    ).metadata.name;
    const labels = appLabels("headlamp");
    new k8s.apps.v1.Deployment(
      `${name}-headlamp`,
      deploymentArgs("headlamp", ns, {
        containers: [
          {
            name: "headlamp",
            image: HEADLAMP_IMAGE,
            // In-cluster: users log in with a token; Headlamp acts with that token's RBAC.
            args: ["-in-cluster", "-plugins-dir=/headlamp/plugins"],
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
    new k8s.rbac.v1.ClusterRoleBinding(
      `${name}-user-binding`,
      {
        metadata: { name: `rosfleet-dashboard-${args.access}` },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          name: clusterRoleFor(args.access),
        },
        subjects: [{ kind: "ServiceAccount", name: user.metadata.name, namespace: ns }],
      },
      child,
    );
    // A long-lived token: Kubernetes fills data.token, and the provider waits for it.
    const tokenSecret = new k8s.core.v1.Secret(
      `${name}-user-token`,
      {
        metadata: {
          name: `dashboard-${args.access}-token`,
          namespace: ns,
          annotations: { "kubernetes.io/service-account.name": user.metadata.name },
        },
        type: "kubernetes.io/service-account-token",
      },
      { parent: this, additionalSecretOutputs: ["data"] },
    );
    const token = pulumi.secret(
      tokenSecret.data.apply((d) => Buffer.from(d?.["token"] ?? "", "base64").toString("utf8")),
    );
    this.info = pulumi.all([ns, token]).apply(([namespace, t]) => ({
      access: args.access,
      portForward: `kubectl -n ${namespace} port-forward svc/headlamp ${LOCAL_PORT}:80`,
      url: `http://localhost:${LOCAL_PORT}`,
      token: t,
    }));
    this.registerOutputs({ info: this.info });
  }
}
