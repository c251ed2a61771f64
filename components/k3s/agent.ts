// The k3s steps of an agent machine, declared in its machine component (so `pulumi preview`
// shows all that happens to a machine under it): install k3s, join the first server with the
// cluster token (by stdin); when the machine leaves the stack, drain and delete its node from
// the server, then uninstall.
import * as pulumi from "@pulumi/pulumi";
import { K3sSettings, Registries } from "../config";
import { Step, Target, step } from "../machine/step";
import { installSteps } from "./install";
import { apiHost } from "./render";
import { nodeScript, removeNodeScript } from "./scripts";

export interface K3sAgentArgs {
  /** The machine this agent runs on. */
  readonly target: Target;
  /** The first server: agents join it, and their node is managed from it. */
  readonly primary: Target;
  /** The first server's install: reinstalling it makes a new cluster, which nodes rejoin. */
  readonly primaryInstall: Step;
  /** The agent token (secret): it admits agents only. */
  readonly token: pulumi.Input<string>;
  /** `k3s.version`, `k3s.agentArgs`, `k3s.airgap` and `k3s.registries` (shown). */
  readonly k3s: K3sSettings;
  /** `k3s.registries` with its credentials. */
  readonly registries: pulumi.Output<Registries> | undefined;
  /** Installed only after these: the servers (so upgrades do servers first) and preflights. */
  readonly after: readonly pulumi.Resource[];
}

/** One k3s agent. */
export class K3sAgent {
  public readonly install: Step;
  public readonly join: Step;
  /** On the first server: waits for Ready, applies labels/taints/cordon; undo = drain + delete. */
  public readonly node: Step;

  /** Declares `<name>-install`, `<name>-join` and `<name>-node` under `parent`. */
  constructor(name: string, args: K3sAgentArgs, parent: pulumi.Resource) {
    const { machine } = args.target;
    const steps = installSteps(
      name,
      {
        target: args.target,
        k3s: args.k3s,
        registries: args.registries,
        join: {
          host: apiHost(args.k3s, args.primary.machine),
          token: args.token,
          cluster: args.primaryInstall.id,
        },
        clusterInit: false,
        after: args.after,
      },
      parent,
    );
    if (steps.join === undefined) throw new Error("an agent always joins");
    this.install = steps.install;
    this.join = steps.join;
    this.node = step(
      `${name}-node`,
      args.primary,
      {
        script: nodeScript(machine),
        deleteScript: removeNodeScript(machine),
        asRoot: true,
        // A reinstalled machine or cluster registers the node anew: remove the old Node object
        // first (it holds the node password a re-flashed machine no longer has), then reapply.
        triggers: [...steps.identity, args.primaryInstall.id],
      },
      { parent, dependsOn: [this.join], deleteBeforeReplace: true },
    );
  }
}
