// rosfleet: read the lab's stack config, create the stages, export the outputs (DESIGN.md).
import * as pulumi from "@pulumi/pulumi";
import { readLabConfig } from "./components/config";
import { Dashboard } from "./components/dashboard/headlamp";
import { RosDemoImage } from "./components/image/image";
import { K3sCluster } from "./components/k3s/cluster";
import { LabMachine } from "./components/machine/machine";
import { DeliveryCheck } from "./components/ros/check";
import { RosWorkloads } from "./components/ros/workloads";

// Stage 1 — config: validated whole before any resource is declared.
const lab = readLabConfig();

// Stage 2 — machine: how to reach each machine, and its preflight.
const preflight = {
  multusInterface: lab.ros.discovery === "multus" ? lab.ros.multus.interface : undefined,
  airgapped: lab.k3s.airgap !== undefined,
};
const machines = lab.machines.map(
  (machine) =>
    new LabMachine(machine.name, { machine, sshPrivateKey: lab.sshPrivateKey, ...preflight }),
);

// Stage 3 — k3s: servers, then agents in parallel; token and kubeconfig as secrets.
const cluster = new K3sCluster("k3s", {
  lab,
  machines,
  clusterName: `rosfleet-${pulumi.getStack()}`,
});
const inCluster = { providers: [cluster.provider] };

// Stage 4 — image: ros_demo for every platform of the lab, referenced by digest.
const rosDemo = new RosDemoImage("ros-demo", {
  image: lab.image,
  distro: lab.ros.distro,
  registryUsername: lab.registryUsername,
  registryPassword: lab.registryPassword,
});

// Stage 5 — ros: discovery for the chosen mode, the workloads, the cross-node delivery check.
const ros = new RosWorkloads(
  "ros",
  { ros: lab.ros, image: rosDemo.ref, k3sVersion: lab.k3s.version },
  inCluster,
);
const check = lab.deliveryCheck.enabled
  ? new DeliveryCheck(
      "delivery",
      {
        nodes: lab.machines.filter((m) => !m.cordon).map((m) => m.name),
        discovery: lab.ros.discovery,
        context: ros.context,
        namespace: ros.namespace.metadata.name,
        timeoutSeconds: lab.deliveryCheck.timeoutSeconds,
        primary: cluster.primary,
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
