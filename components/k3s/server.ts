// The k3s steps of a server machine, declared in its machine component: install (config.yaml +
// pinned version; joining HA servers then get the token by `<name>-join`), its node reconciled
// through the API, and on the first server the cluster token and kubeconfig read back as
// secrets.
import * as pulumi from "@pulumi/pulumi";
import { K3sSettings, Registries } from "../config";
import { Step, Target, step } from "../machine/step";
import { installSteps } from "./install";
import { AGENT_TOKEN, KUBECONFIG_FILE, SERVER_TOKEN, apiHost } from "./render";
import { nodeScript, readFileProgram, removeNodeScript } from "./scripts";

export interface K3sServerArgs {
  /** The machine this server runs on. */
  readonly target: Target;
  /** `k3s.version`, `k3s.serverArgs`, `k3s.airgap` and `k3s.registries` (shown). */
  readonly k3s: K3sSettings;
  /** `k3s.registries` with its credentials. */
  readonly registries: pulumi.Output<Registries> | undefined;
  /** HA: the first server to join, its install and what it joins with (the server token, then
   * the agent token on a second line); undefined for the first server. */
  readonly join?: {
    readonly primary: Target;
    readonly primaryInstall: Step;
    readonly token: pulumi.Input<string>;
  };
  /** First server of an HA cluster: `cluster-init`. */
  readonly clusterInit: boolean;
  /** Installed only after these: every machine's preflight, and the previous server. */
  readonly after: readonly pulumi.Resource[];
  /** The previous server's registries step (see InstallStepArgs). */
  readonly registriesAfter?: pulumi.Resource;
}

/** One k3s server. */
export class K3sServer {
  public readonly install: Step;
  /** `<name>-registries`, when the lab has `k3s.registries`. */
  public readonly registries: Step | undefined;
  /** Joining servers only: the token handed over, k3s started with it. */
  public readonly join: Step | undefined;
  /** Waits for the node to be Ready, then applies labels, taints, cordon. */
  public readonly node: Step;
  /** First server only: the server token, for joining servers only (secret). */
  public readonly token: pulumi.Output<string> | undefined;
  /** First server only: the agent token, all an agent is given (secret). */
  public readonly agentToken: pulumi.Output<string> | undefined;
  /** First server only: `/etc/rancher/k3s/k3s.yaml` as written by k3s (secret). */
  public readonly rawKubeconfig: pulumi.Output<string> | undefined;

  /** Declares `<name>-install`, `<name>-node` (and reads) under `parent`, the machine's component. */
  constructor(name: string, args: K3sServerArgs, parent: pulumi.Resource) {
    const { machine } = args.target;
    const steps = installSteps(
      name,
      {
        target: args.target,
        k3s: args.k3s,
        registries: args.registries,
        join:
          args.join === undefined
            ? undefined
            : { host: apiHost(args.k3s, args.join.primary.machine), token: args.join.token },
        clusterInit: args.clusterInit,
        after: args.after,
        registriesAfter: args.registriesAfter,
      },
      parent,
    );
    this.install = steps.install;
    this.registries = steps.registries;
    this.join = steps.join;
    const primary = args.join?.primary ?? args.target;
    this.node = step(
      `${name}-node`,
      primary,
      {
        script: nodeScript(machine),
        // A joined server that leaves (or is reinstalled): its Node is deleted on the first
        // server, which removes its etcd member, before its uninstall runs.
        ...(args.join === undefined ? {} : { deleteScript: removeNodeScript(machine) }),
        asRoot: true,
        // A reinstalled server registers its node anew: apply labels, taints, cordon again.
        triggers:
          args.join === undefined
            ? steps.identity
            : [...steps.identity, args.join.primaryInstall.id],
      },
      { parent, dependsOn: [steps.join ?? this.install], deleteBeforeReplace: true },
    );

    if (args.join === undefined) {
      const read = (suffix: string, file: string) =>
        pulumi.secret(
          step(
            `${name}-${suffix}`,
            args.target,
            {
              program: readFileProgram(file),
              asRoot: true,
              secretStdout: true,
              // A reinstall makes a new token and kubeconfig: read them again.
              triggers: [this.install.id],
            },
            { parent, dependsOn: [this.install] },
          ).stdout,
        );
      this.token = read("token", SERVER_TOKEN).apply((t) => t.trim());
      this.agentToken = read("agent-token", AGENT_TOKEN).apply((t) => t.trim());
      this.rawKubeconfig = read("kubeconfig", KUBECONFIG_FILE);
    }
  }
}
