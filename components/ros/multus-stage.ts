// The multus discovery mode's resources: Multus and whereabouts installed by k3s's Helm
// controller (unless the cluster has them), a Job that waits for Multus's CRD, the macvlan
// attachment, and one Job per node that waits until Multus attaches pods there. Split from
// workloads.ts along the mode's own seam.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LabSettings } from "../config";
import { Lookup, MULTUS_CRD, crdLookup } from "../cluster/probe";
import { perNodeName } from "./delivery";
import { appLabels, tolerateAll } from "../k8s";
import { MULTUS_CHART, macvlanConfig, multusValues } from "./multus";
import {
  MULTUS_INTERFACE,
  MULTUS_NETWORK,
  podNetworking,
  pythonJob,
  rosContainerOf,
  rosPodBase,
} from "./render";
import type { ClusterAccess } from "../common/kubeconfig";

/** What of the ROS stage's arguments the Multus resources use. */
export interface MultusArgs {
  /** `k3s.version` (where k3s keeps CNI plugins); undefined on an existing cluster. */
  readonly k3sVersion: string | undefined;
  /** An existing cluster's API server: is Multus there? (undefined: k3s). */
  readonly access: pulumi.Input<ClusterAccess> | undefined;
  /** The schedulable nodes, each waited for. */
  readonly nodes: readonly string[];
  /** The ros_demo reference the Jobs run. */
  readonly image: pulumi.Input<string>;
}

/** What the Multus resources hang off: their component, the ROS account and pull login. */
export interface MultusScope {
  readonly parent: pulumi.Resource;
  readonly account: pulumi.Resource;
  readonly pullSecrets: { name: pulumi.Output<string> }[];
}

/** Exits 0 once the pod has its Multus interface; fails (and the Job retries in a new pod,
 * so a new network setup) while Multus has not configured the node yet. */
export const MULTUS_READY_SCRIPT = `if ip -o link show ${MULTUS_INTERFACE} >/dev/null 2>&1; then
  echo "$NODE_NAME: ${MULTUS_INTERFACE} attached, Multus is ready"
else
  echo "$NODE_NAME: no ${MULTUS_INTERFACE} yet: Multus has not configured this node" >&2
  exit 1
fi`;

/** The Job that waits for Multus's CRD, its ServiceAccount (and ClusterRole), and its bound. */
export const MULTUS_CRD_JOB = "multus-crd";
export const MULTUS_CRD_ACCOUNT = "rosfleet-multus-crd";
export const MULTUS_CRD_WAIT_SECONDS = 600;
/** All the CRD Job may do: read that one CRD. */
export const MULTUS_CRD_RULES = [
  {
    apiGroups: ["apiextensions.k8s.io"],
    resources: ["customresourcedefinitions"],
    resourceNames: [MULTUS_CRD],
    verbs: ["get"],
  },
];
/** Where to look when the CRD never comes (k3s's Helm controller names its Job after the chart). */
export const MULTUS_CRD_HINT = `k3s's Helm controller has not installed the Multus chart: see kubectl -n kube-system logs job/helm-install-multus (it pulls rancher/klipper-helm, the ${MULTUS_CHART.chart} chart ${MULTUS_CHART.version} from ${MULTUS_CHART.repo}, then the Multus and whereabouts images: multus mode needs the internet for them, or those images in the machines' registry)`;

/** Fails with the way to add Multus when the cluster lacks it; warns when it could not ask. */
export function requireMultus(found: Lookup, resource: pulumi.Resource): void {
  if ("error" in found) {
    pulumi.log.warn(`could not check that the cluster has Multus (${found.error})`, resource);
    return;
  }
  if (!found.found)
    throw new pulumi.ResourceError(
      `ros.discovery is multus, but the cluster has no Multus (no CustomResourceDefinition ${MULTUS_CRD}); pods would never get their second interface. Add it: on MicroK8s run microk8s enable multus; on a k3s that rosfleet installs, remove ros.multus.install false so rosfleet installs it.`,
      resource,
      true,
    );
}

/** A Job that succeeds once Multus's CRD is established (`multus-crd`), with the only RBAC it
 * needs: get that one CRD. */
function crdWait(
  scope: MultusScope,
  name: string,
  ns: pulumi.Output<string>,
  image: pulumi.Input<string>,
  chart: pulumi.Resource,
): k8s.batch.v1.Job {
  const labels = appLabels(MULTUS_CRD_JOB);
  const child = { parent: scope.parent };
  const account = new k8s.core.v1.ServiceAccount(
    `${name}-multus-crd-account`,
    // Its pod pulls the lab's image like every ROS pod: with the registry login, if any.
    {
      metadata: { name: MULTUS_CRD_ACCOUNT, namespace: ns, labels },
      imagePullSecrets: scope.pullSecrets,
    },
    child,
  );
  const role = new k8s.rbac.v1.ClusterRole(
    `${name}-multus-crd-role`,
    { metadata: { name: MULTUS_CRD_ACCOUNT, labels }, rules: MULTUS_CRD_RULES },
    child,
  );
  const binding = new k8s.rbac.v1.ClusterRoleBinding(
    `${name}-multus-crd-binding`,
    {
      metadata: { name: MULTUS_CRD_ACCOUNT, labels },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: role.metadata.name,
      },
      subjects: [{ kind: "ServiceAccount", name: account.metadata.name, namespace: ns }],
    },
    child,
  );
  return new k8s.batch.v1.Job(
    `${name}-multus-crd`,
    {
      metadata: { name: MULTUS_CRD_JOB, namespace: ns, labels },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: MULTUS_CRD_WAIT_SECONDS + 120,
        template: {
          metadata: { labels },
          spec: {
            ...rosPodBase(),
            serviceAccountName: MULTUS_CRD_ACCOUNT,
            automountServiceAccountToken: true,
            restartPolicy: "Never",
            containers: [
              rosContainerOf(
                MULTUS_CRD_JOB,
                image,
                [
                  "python3",
                  "-c",
                  pythonJob("crd_wait.py"),
                  MULTUS_CRD,
                  String(MULTUS_CRD_WAIT_SECONDS),
                  MULTUS_CRD_HINT,
                ],
                [],
              ),
            ],
          },
        },
      },
    },
    {
      parent: scope.parent,
      dependsOn: [chart, binding],
      customTimeouts: { create: "15m", update: "15m" },
    },
  );
}

/** Multus + whereabouts (unless already installed) and the macvlan attachment. */
export function multusResources(
  scope: MultusScope,
  name: string,
  ns: pulumi.Output<string>,
  multus: LabSettings["ros"]["multus"],
  { k3sVersion, access, nodes, image }: MultusArgs,
): pulumi.Resource[] {
  const range = multus.range;
  if (range === undefined) throw new Error("ros.multus.range is validated with the config");
  const install =
    multus.install && k3sVersion !== undefined
      ? [
          new k8s.apiextensions.CustomResource(
            `${name}-multus`,
            {
              apiVersion: "helm.cattle.io/v1",
              kind: "HelmChart",
              metadata: { name: "multus", namespace: "kube-system" },
              spec: {
                ...MULTUS_CHART,
                targetNamespace: "kube-system",
                valuesContent: multusValues(k3sVersion),
              },
            },
            { parent: scope.parent },
          ),
        ]
      : [];
  // The chart's CRD comes when k3s's Helm controller has pulled klipper-helm and the chart:
  // a Job waits for it (bounded, naming where to look) before the attachment is created.
  const crd = install.map((chart) => crdWait(scope, name, ns, image, chart));
  const config = macvlanConfig(multus.interface, range);
  const attachment = new k8s.apiextensions.CustomResource(
    `${name}-macvlan`,
    {
      apiVersion: "k8s.cni.cncf.io/v1",
      kind: "NetworkAttachmentDefinition",
      metadata: { name: MULTUS_NETWORK, namespace: ns },
      // On a cluster rosfleet did not install, Multus must be there before anything relies on
      // it: the attachment (and every workload after it) waits for the lookup, and fails with it.
      spec: {
        config:
          access === undefined
            ? config
            : pulumi.output(access).apply(async (a) => {
                requireMultus(await crdLookup(a, MULTUS_CRD), scope.parent);
                return config;
              }),
      },
    },
    { parent: scope.parent, dependsOn: [...install, ...crd] },
  );
  // A pod that starts before Multus has written its CNI config on its node comes up without
  // its second interface, and keeps it that way. One Job per node proves the attachment works
  // there before any workload starts.
  const ready = nodes.map(
    (node) =>
      new k8s.batch.v1.Job(
        `${name}-multus-ready-${node}`,
        {
          metadata: {
            name: perNodeName("multus-ready-", node),
            namespace: ns,
            labels: appLabels("multus-ready"),
          },
          spec: {
            backoffLimit: 6,
            activeDeadlineSeconds: 900,
            template: {
              metadata: {
                labels: appLabels("multus-ready"),
                annotations: podNetworking("multus").annotations,
              },
              spec: {
                ...rosPodBase(),
                restartPolicy: "Never",
                nodeSelector: { "kubernetes.io/hostname": node },
                tolerations: tolerateAll,
                containers: [
                  rosContainerOf(
                    "multus-ready",
                    image,
                    ["bash", "-c", MULTUS_READY_SCRIPT],
                    [{ name: "NODE_NAME", value: node }],
                  ),
                ],
              },
            },
          },
        },
        {
          parent: scope.parent,
          dependsOn: [attachment, scope.account],
          customTimeouts: { create: "20m", update: "20m" },
        },
      ),
  );
  return [...install, attachment, ...ready];
}
