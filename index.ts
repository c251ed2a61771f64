// rosfleet: read the lab's stack config, create the stages, export the outputs (DESIGN.md).
import * as pulumi from "@pulumi/pulumi";
import { labCluster } from "./components/cluster";
import { readLabConfig } from "./components/config";
import { Dashboard } from "./components/dashboard/headlamp";
import { RosDemoImage } from "./components/image/image";
import { DeliveryCheck } from "./components/ros/check";
import { RosWorkloads } from "./components/ros/workloads";

// Stage 1 — config: validated whole before any resource is declared.
const lab = readLabConfig();

// Stages 2–3 — machine and k3s over SSH, or the lab's existing cluster (cluster.kubeconfig).
const cluster = labCluster(lab, `rosfleet-${pulumi.getStack()}`);
const inCluster = { providers: [cluster.provider] };

// Stage 4 — image: ros_demo for every platform of the lab, referenced by digest.
const rosDemo = new RosDemoImage("ros-demo", {
  image: lab.image,
  distro: lab.ros.distro,
  registryUsername: lab.registryUsername,
  registryPassword: lab.registryPassword,
});

// Stage 5 — ros: discovery for the chosen mode, the workloads, the cross-node delivery check.
// The nodes pull with the registry login that pushes the build, when the stack has one.
const schedulable = lab.schedulable;
const ros = new RosWorkloads(
  "ros",
  {
    ros: lab.ros,
    image: rosDemo.ref,
    k3sVersion: lab.k3s?.version,
    access: cluster.access,
    pull: lab.pull,
    nodes: schedulable,
  },
  inCluster,
);
if (lab.deliveryCheck.enabled && schedulable.length === 0)
  pulumi.log.warn(
    "delivery check skipped: list the cluster's nodes under machines (name, arch) so rosfleet knows which nodes to check, or set deliveryCheck.enabled false",
  );
const check =
  lab.deliveryCheck.enabled && schedulable.length > 0
    ? new DeliveryCheck(
        "delivery",
        {
          nodes: schedulable,
          discovery: lab.ros.discovery,
          context: ros.context,
          pullSecrets: ros.pullSecrets,
          namespace: ros.namespace.metadata.name,
          timeoutSeconds: lab.deliveryCheck.timeoutSeconds,
          after: [...ros.discovery, ...ros.workloads],
        },
        inCluster,
      )
    : undefined;

// Stage 6 — dashboard: Headlamp and a token of the chosen access.
const headlamp = lab.dashboard.enabled
  ? new Dashboard("dashboard", { access: lab.dashboard.access }, inCluster)
  : undefined;

export const kubeconfig = cluster.kubeconfig;
export const serverUrl = cluster.serverUrl;
export const nodes = cluster.nodes;
export const image = rosDemo.ref;
export const delivery = check?.results;
export const dashboard = headlamp?.info;
