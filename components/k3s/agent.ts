// A k3s agent: joins the first server with the cluster token (by stdin), and is taken out
// cleanly — drained and deleted from the server, then uninstalled — when it leaves the stack.
import * as pulumi from "@pulumi/pulumi";
import { LabSettings } from "../config";
import { Step, Target, step } from "../machine/step";
import { airgapPlan, copyAirgapFiles } from "./airgap";
import { renderK3sConfig } from "./render";
import { installScript, nodeScript, removeNodeScript, uninstallScript } from "./scripts";

export interface K3sAgentArgs {
  /** The machine this agent runs on. */
  readonly target: Target;
  /** The first server: agents join it, and their node is managed from it. */
  readonly primary: Target;
  /** The cluster join token (secret). */
  readonly token: pulumi.Input<string>;
  /** `k3s.version`, `k3s.agentArgs` and `k3s.airgap`. */
  readonly k3s: LabSettings["k3s"];
  /** Joined only after these: the servers (so upgrades do servers first) and preflights. */
  readonly after: readonly pulumi.Resource[];
}

/** One k3s agent (`rosfleet:k3s:Agent`). */
export class K3sAgent extends pulumi.ComponentResource {
  public readonly join: Step;
  /** On the first server: waits for Ready, applies labels/taints/cordon; undo = drain + delete. */
  public readonly node: Step;

  constructor(name: string, args: K3sAgentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rosfleet:k3s:Agent", name, {}, opts);
    const { machine } = args.target;
    const configYaml = renderK3sConfig({
      machine,
      joinHost: args.primary.machine.host,
      clusterInit: false,
      extraArgs: args.k3s.agentArgs,
    });
    const airgap = airgapPlan(args.k3s.airgap, machine);
    const copies = copyAirgapFiles(name, args.target, airgap, {
      parent: this,
      dependsOn: [...args.after],
    });
    this.join = step(
      `${name}-join`,
      args.target,
      {
        script: installScript({
          machine,
          version: args.k3s.version,
          configYaml,
          joinHost: args.primary.machine.host,
          airgap: airgap?.params,
        }),
        deleteScript: uninstallScript(machine, airgap),
        asRoot: true,
        stdin: args.token,
      },
      { parent: this, dependsOn: [...args.after, ...copies] },
    );
    this.node = step(
      `${name}-node`,
      args.primary,
      { script: nodeScript(machine), deleteScript: removeNodeScript(machine), asRoot: true },
      { parent: this, dependsOn: [this.join] },
    );
    this.registerOutputs({});
  }
}
