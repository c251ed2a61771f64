// rosfleet: read the lab's stack config, create the stages, export the outputs (DESIGN.md).
import * as pulumi from "@pulumi/pulumi";
import { readLabConfig } from "./components/config";
import { RosDemoImage } from "./components/image/image";
import { K3sCluster } from "./components/k3s/cluster";
import { LabMachine } from "./components/machine/machine";

// Stage 1 — config: validated whole before any resource is declared.
const lab = readLabConfig();

// Stage 2 — machine: how to reach each machine, and its preflight.
const machines = lab.machines.map(
  (machine) => new LabMachine(machine.name, { machine, sshPrivateKey: lab.sshPrivateKey }),
);

// Stage 3 — k3s: servers, then agents in parallel; token and kubeconfig as secrets.
const cluster = new K3sCluster("k3s", {
  lab,
  machines,
  clusterName: `rosfleet-${pulumi.getStack()}`,
});

// Stage 4 — image: ros_demo for every platform of the lab, referenced by digest.
const rosDemo = new RosDemoImage("ros-demo", {
  image: lab.image,
  distro: lab.ros.distro,
  registryUsername: lab.registryUsername,
  registryPassword: lab.registryPassword,
});

export const kubeconfig = cluster.kubeconfig;
export const serverUrl = cluster.serverUrl;
export const nodes = cluster.nodes;
export const image = rosDemo.ref;
