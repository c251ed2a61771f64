// Stage "k3s": the lab's machines become one cluster. Servers install one at a time (HA keeps
// quorum on upgrades), agents join in parallel once every server is done, and nothing is
// installed anywhere before every machine has passed preflight. Each server comes after the
// previous one's node step, so servers also leave one at a time (deletes run in reverse):
// the last one's Node deleted (its etcd member removed), uninstalled, then the one before.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { K3sSettings, LabSettings, Registries } from "../config";
import { LabMachine } from "../machine/machine";
import { Target } from "../machine/step";
import { K3sAgent } from "./agent";
import { apiHost, rewriteKubeconfig, serverUrl } from "./render";
import { K3sServer } from "./server";

/** The step after which a server runs Ready: its join (HA joiners), else its install. */
const running = (server: K3sServer): pulumi.Resource => server.join ?? server.install;

export interface K3sClusterArgs {
  /** The validated lab (machines, `k3s.*`). */
  readonly lab: {
    readonly machines: LabSettings["machines"];
    readonly k3s: K3sSettings;
    /** `k3s.registries` with its credentials (secret when it has any). */
    readonly registries: pulumi.Output<Registries> | undefined;
  };
  /** One per machine of `lab.machines`, in the same order. */
  readonly machines: readonly LabMachine[];
  /** Names the cluster, context and user of the kubeconfig. */
  readonly clusterName: string;
  /** The provider's `clusterIdentifier`: a new one replaces every object (a new cluster). */
  readonly identity: string;
  /** What the kubernetes provider is created after and deleted before (its copies' sweeper). */
  readonly providerAfter?: readonly pulumi.Resource[];
}

/** One node of the cluster, as the `nodes` output lists it. */
export interface NodeInfo {
  readonly name: string;
  readonly role: string;
  readonly arch: string;
}

/** The lab's k3s cluster (`rosfleet:k3s:Cluster`). */
export class K3sCluster extends pulumi.ComponentResource {
  /** Admin kubeconfig pointing at the first server's host (secret). */
  public readonly kubeconfig: pulumi.Output<string>;
  public readonly serverUrl: pulumi.Output<string>;
  public readonly nodes: pulumi.Output<NodeInfo[]>;
  /** For the stages that declare Kubernetes resources in this cluster. */
  public readonly provider: k8s.Provider;
  public readonly servers: readonly K3sServer[];
  /** The first server: where cluster-wide steps run (`k3s kubectl`). */
  public readonly primary: Target;
  public readonly agents: readonly K3sAgent[];

  constructor(name: string, args: K3sClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rosfleet:k3s:Cluster", name, {}, opts);
    const serverMachines = args.machines.filter((m) => m.target.machine.role === "server");
    const agentMachines = args.machines.filter((m) => m.target.machine.role === "agent");
    const [first, ...others] = serverMachines;
    if (first === undefined) throw new Error("a cluster needs a server (config validation)");
    const preflights = args.machines.map((m) => m.preflight);
    const ha = serverMachines.length > 1;
    this.primary = first.target;

    const primary = new K3sServer(
      first.target.machine.name,
      {
        target: first.target,
        k3s: args.lab.k3s,
        registries: args.lab.registries,
        clusterInit: ha,
        after: preflights,
      },
      first,
    );
    if (
      primary.token === undefined ||
      primary.agentToken === undefined ||
      primary.rawKubeconfig === undefined
    )
      throw new Error("the first server reads back the tokens and kubeconfig");
    // A joining server needs the server token (and the agents' password, every server admits
    // agents with it); an agent only the agent token, which cannot make a server.
    const serverJoin = pulumi.secret(
      pulumi.all([primary.token, primary.agentToken]).apply(([t, a]) => `${t}\n${a}\n`),
    );
    const agentToken = primary.agentToken;

    const servers = [primary];
    for (const m of others) {
      const previous = servers[servers.length - 1];
      servers.push(
        new K3sServer(
          m.target.machine.name,
          {
            target: m.target,
            k3s: args.lab.k3s,
            registries: args.lab.registries,
            join: { primary: first.target, primaryInstall: primary.install, token: serverJoin },
            clusterInit: false,
            // Every preflight is already behind the first server's install. After the previous
            // server's node step (behind its Ready join): on removal, this server is gone
            // before the previous one's Node is deleted.
            after: [previous.node],
            registriesAfter: previous.registries,
          },
          m,
        ),
      );
    }
    this.servers = servers;

    const serversRunning = servers.map(running);
    this.agents = agentMachines.map(
      (m) =>
        new K3sAgent(
          m.target.machine.name,
          {
            target: m.target,
            primary: first.target,
            primaryInstall: primary.install,
            token: agentToken,
            k3s: args.lab.k3s,
            registries: args.lab.registries,
            after: serversRunning,
          },
          m,
        ),
    );

    const host = apiHost(args.lab.k3s, first.target.machine);
    this.serverUrl = pulumi.output(serverUrl(host));
    this.kubeconfig = pulumi.secret(
      primary.rawKubeconfig.apply((text) => rewriteKubeconfig(text, host, args.clusterName)),
    );
    this.nodes = pulumi.output(
      args.lab.machines.map((m) => ({ name: m.name, role: m.role, arch: m.arch })),
    );
    this.provider = new k8s.Provider(
      `${name}-provider`,
      // A stable identity: the kubeconfig is unknown during preview and would otherwise
      // make every preview replace the provider and everything it manages.
      { kubeconfig: this.kubeconfig, clusterIdentifier: args.identity },
      {
        parent: this,
        dependsOn: [
          ...servers.map((s) => s.node),
          ...this.agents.map((a) => a.node),
          ...(args.providerAfter ?? []),
        ],
      },
    );
    this.registerOutputs({
      kubeconfig: this.kubeconfig,
      serverUrl: this.serverUrl,
      nodes: this.nodes,
    });
  }
}
