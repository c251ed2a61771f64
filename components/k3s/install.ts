// The steps that install k3s on one machine — server or agent — with its air-gap copies and
// its undo, shared by K3sServer and K3sAgent: `<name>-registries` before it when the lab has
// `k3s.registries`, `<name>-install` (no secret: the script travels on stdin and shows in
// preview diffs) and, on a joining machine, `<name>-join`, which hands the cluster token to the
// join script install.sh wrote and starts k3s with it.
import * as pulumi from "@pulumi/pulumi";
import { K3sSettings, Registries } from "../config";
import { Step, Target, step } from "../machine/step";
import { airgapPlan, copyAirgapFiles } from "./airgap";
import { registriesStep, renderRegistries } from "./registries";
import { renderK3sConfig } from "./render";
import { installScript, joinProgram, uninstallScript } from "./scripts";

export interface InstallStepArgs {
  /** The machine k3s goes on. */
  readonly target: Target;
  /** `k3s.*`; `extraArgs` is `serverArgs` or `agentArgs` by role. */
  readonly k3s: K3sSettings;
  /** `k3s.registries` with its credentials (secret when it has any). */
  readonly registries: pulumi.Output<Registries> | undefined;
  /** The server to join with `token`; undefined for the first server. `cluster` (agents):
   * the first server's install id, so that a new cluster drops the old token (install.sh). */
  readonly join?: {
    readonly host: string;
    readonly token: pulumi.Input<string>;
    readonly cluster?: pulumi.Input<string>;
  };
  /** First server of an HA cluster: `cluster-init`. */
  readonly clusterInit: boolean;
  /** Nothing is copied or installed before these. */
  readonly after: readonly pulumi.Resource[];
  /** The previous server's registries step: servers restart for it, or its removal, in turn. */
  readonly registriesAfter?: pulumi.Resource;
}

export interface InstallSteps {
  readonly install: Step;
  /** `<name>-registries`, when the lab has `k3s.registries`. */
  readonly registries: Step | undefined;
  /** Joining machines only: the token handed over, k3s started with it. */
  readonly join: Step | undefined;
  /** What the machine's later steps re-run on: a reinstall (replacement) of either. */
  readonly identity: pulumi.Output<string>[];
}

/** Declares `<name>-install` (and `<name>-join`) under `parent`, the machine's component. */
export function installSteps(
  name: string,
  args: InstallStepArgs,
  parent: pulumi.Resource,
): InstallSteps {
  const { machine } = args.target;
  const configYaml = renderK3sConfig({
    machine,
    joinHost: args.join?.host,
    clusterInit: args.clusterInit,
    extraArgs: machine.role === "server" ? args.k3s.serverArgs : args.k3s.agentArgs,
    apiEndpoint: args.k3s.apiEndpoint,
  });
  const airgap = airgapPlan(args.k3s.airgap, machine);
  const copies = copyAirgapFiles(machine.name, args.target, airgap, {
    parent,
    dependsOn: [...args.after],
  });
  // Before the install (k3s starts with it), after what the install waits for (a server's
  // restart for a changed file comes in its turn, after the previous server is Ready). It
  // depends on the previous server's registries step itself too: deletes are ordered only by
  // direct dependencies, so removing k3s.registries would otherwise restart every server at once.
  const registries =
    args.registries === undefined
      ? []
      : [
          registriesStep(name, args.target, args.registries, {
            parent,
            dependsOn: [
              ...args.after,
              ...(args.registriesAfter === undefined ? [] : [args.registriesAfter]),
            ],
          }),
        ];
  const shown =
    args.k3s.registries === undefined ? undefined : renderRegistries(args.k3s.registries);
  const install = step(
    `${name}-install`,
    args.target,
    {
      script: pulumi.output(args.join?.cluster).apply((cluster) =>
        installScript({
          machine,
          version: args.k3s.version,
          configYaml,
          joinHost: args.join?.host,
          airgap: airgap?.params,
          registries: shown,
          cluster,
        }),
      ),
      deleteScript: uninstallScript(machine, airgap, shown !== undefined),
      asRoot: true,
    },
    {
      parent,
      dependsOn: [...args.after, ...copies, ...registries],
      // The step owns the machine's k3s: a replacement (`pulumi up --replace`) uninstalls the
      // old one before installing anew, never after (which would remove the new install).
      deleteBeforeReplace: true,
      // A dead machine's uninstall cannot run; `skipUninstall` lets it leave the stack.
      retainOnDelete: machine.skipUninstall,
    },
  );
  const [registriesStepOf] = registries;
  if (args.join === undefined)
    return { install, registries: registriesStepOf, join: undefined, identity: [install.id] };
  const join = step(
    `${name}-join`,
    args.target,
    {
      program: joinProgram(),
      stdin: args.join.token,
      asRoot: true,
      // A reinstall removed the token file with k3s: hand it over again.
      triggers: [install.id],
    },
    { parent, dependsOn: [install] },
  );
  return { install, registries: registriesStepOf, join, identity: [install.id, join.id] };
}
