// The step that installs k3s on one machine — server or agent — with its air-gap copies and
// its undo, shared by K3sServer and K3sAgent.
import * as pulumi from "@pulumi/pulumi";
import { LabSettings } from "../config";
import { Step, Target, step } from "../machine/step";
import { airgapPlan, copyAirgapFiles } from "./airgap";
import { renderK3sConfig } from "./render";
import { installScript, uninstallScript } from "./scripts";

export interface InstallStepArgs {
  /** The machine k3s goes on. */
  readonly target: Target;
  /** `k3s.*`; `extraArgs` is `serverArgs` or `agentArgs` by role. */
  readonly k3s: LabSettings["k3s"];
  /** The server to join with `token`; undefined for the first server. */
  readonly join?: { readonly host: string; readonly token: pulumi.Input<string> };
  /** First server of an HA cluster: `cluster-init`. */
  readonly clusterInit: boolean;
  /** Nothing is copied or installed before these. */
  readonly after: readonly pulumi.Resource[];
}

/** Declares `name` (install on create/update, uninstall on delete) under `parent`. */
export function installStep(name: string, args: InstallStepArgs, parent: pulumi.Resource): Step {
  const { machine } = args.target;
  const configYaml = renderK3sConfig({
    machine,
    joinHost: args.join?.host,
    clusterInit: args.clusterInit,
    extraArgs: machine.role === "server" ? args.k3s.serverArgs : args.k3s.agentArgs,
  });
  const airgap = airgapPlan(args.k3s.airgap, machine);
  const copies = copyAirgapFiles(machine.name, args.target, airgap, {
    parent,
    dependsOn: [...args.after],
  });
  return step(
    name,
    args.target,
    {
      script: installScript({
        machine,
        version: args.k3s.version,
        configYaml,
        joinHost: args.join?.host,
        airgap: airgap?.params,
      }),
      deleteScript: uninstallScript(machine, airgap),
      asRoot: true,
      ...(args.join === undefined ? {} : { stdin: args.join.token }),
    },
    { parent, dependsOn: [...args.after, ...copies] },
  );
}
