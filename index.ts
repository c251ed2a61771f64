// rosfleet: read the lab's stack config, create the stages, export the outputs (DESIGN.md).
import * as os from "node:os";
import * as pulumi from "@pulumi/pulumi";
import { apiAccess, labCluster } from "./components/cluster";
import { ProviderCopies, sweepAtExit } from "./components/cluster/tempfiles";
import { readLabConfig } from "./components/config";
import { Dashboard } from "./components/dashboard/headlamp";
import { withBuilder } from "./components/image/builder";
import { checkRegistryLogin, speaksPlainHttp } from "./components/image/login";
import { RosDemoImage } from "./components/image/image";
import { requireDocker } from "./components/image/imported";
import { checkPublishedImage } from "./components/image/published";
import { DeliveryCheck } from "./components/ros/check";
import { labRosEnv } from "./components/ros/lab-env";
import { RosWorkloads } from "./components/ros/workloads";

/** The program: async so that what `up` must check first (the registry login) is checked before
 * any resource is declared. Its result is the stack's outputs. */
export = async (): Promise<Record<string, unknown>> => {
  // Stage 1 — config: validated whole before any resource is declared, the image's builder too
  // (a builder that cannot build what the lab needs fails here, not halfway through `up`).
  const lab = await readLabConfig();
  const imageSettings = withBuilder(lab.image);
  requireDocker(imageSettings.importInto);
  // A login the registry refuses fails `up` here, before anything changes (preview stays offline).
  // Plain HTTP only to a registry on loopback or declared as HTTP in k3s.registries.
  const plainHttp = speaksPlainHttp(lab.k3s?.registries);
  if (!pulumi.runtime.isDryRun())
    await checkRegistryLogin(
      imageSettings,
      lab.registryUsername,
      lab.registryPassword,
      undefined,
      plainHttp,
    );
  // A published image (image.build: false) that lacks an arch of the lab fails here, at preview
  // too, instead of as an exec format error on the nodes of that arch.
  await checkPublishedImage(
    lab.image,
    lab.nodes,
    lab.registryUsername,
    lab.registryPassword,
    undefined,
    plainHttp,
  );

  // Stages 2–3 — machine and k3s over SSH, or the lab's existing cluster (cluster.kubeconfig).
  const cluster = labCluster(lab, `rosfleet-${pulumi.getStack()}`);
  const inCluster = { providers: [cluster.provider] };
  // The kubernetes provider leaves a plaintext copy of the kubeconfig in $TMPDIR on every
  // command: rosfleet removes this command's (components/cluster/tempfiles.ts).
  const copies = new ProviderCopies(os.tmpdir(), cluster.copies);
  sweepAtExit(copies);

  // Stage 4 — image: ros_demo for every platform of the lab, referenced by digest: pushed to
  // image.repository, or, in a lab of this one machine without one, imported into its k3s.
  const rosDemo = new RosDemoImage("ros-demo", {
    image: imageSettings,
    distro: lab.ros.distro,
    registryUsername: lab.registryUsername,
    registryPassword: lab.registryPassword,
    host: cluster.imageHost,
  });

  // Stage 5 — ros: discovery for the chosen mode, the workloads, the cross-node delivery check.
  // The nodes pull with the registry login that pushes the build, when the stack has one.
  const schedulable = lab.schedulable;
  for (const [node, taints] of Object.entries(lab.tainted))
    pulumi.log.warn(
      `${node} runs no ROS pod and is left out of the delivery check: its taint ${taints.join(", ")} keeps pods without a toleration off it (remove the taint, or use PreferNoSchedule, to have ROS pods there)`,
    );
  const ros = new RosWorkloads(
    "ros",
    {
      ros: lab.ros,
      image: rosDemo.ref,
      k3sVersion: lab.k3s?.version,
      access: cluster.access,
      pull: lab.pull,
      nodes: schedulable,
      apiAccess: apiAccess(cluster),
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
            limits: {
              maxLossPercent: lab.deliveryCheck.maxLossPercent,
              maxLatencyMs: lab.deliveryCheck.maxLatencyMs,
              largeMessageBytes: lab.deliveryCheck.largeMessageBytes,
            },
            after: [...ros.discovery, ...ros.workloads],
            access: apiAccess(cluster),
          },
          inCluster,
        )
      : undefined;

  // Stage 6 — dashboard: Headlamp and a token of the chosen access.
  const headlamp = lab.dashboard.enabled
    ? new Dashboard(
        "dashboard",
        {
          access: lab.dashboard.access,
          labNamespaces: [ros.namespace.metadata.name],
          tokenHours: lab.dashboard.tokenHours,
          clusterAccess: apiAccess(cluster),
        },
        inCluster,
      )
    : undefined;

  // Only what the lab has: an output that is not there is left out, not exported as undefined.
  const outputs: Record<string, unknown> = {
    kubeconfig: cluster.kubeconfig,
    serverUrl: cluster.serverUrl,
    nodes: cluster.nodes,
    image: rosDemo.ref,
    delivery: check?.results,
    rosEnv: pulumi
      .output(ros.context.discoveryServer)
      .apply((servers) => labRosEnv(lab.ros.discovery, lab.ros.domainId, servers)),
    dashboard: headlamp?.info,
  };
  return Object.fromEntries(Object.entries(outputs).filter(([, v]) => v !== undefined));
};
