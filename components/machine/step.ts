// One remote step on one machine: a `@pulumi/command` Command over SSH, or a local Command when
// the machine is the one running pulumi (host: localhost), with the same script either way.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { Machine } from "../config";
import { commandLine } from "../shell";

/** How to reach a machine: SSH connection, or undefined for this machine. */
export interface Target {
  readonly machine: Machine;
  readonly connection: command.types.input.remote.ConnectionArgs | undefined;
}

/** The SSH connection of a machine; the private key stays a secret output. */
export function connectionFor(
  machine: Machine,
  sshPrivateKey: pulumi.Input<string> | undefined,
): command.types.input.remote.ConnectionArgs | undefined {
  if (machine.local) return undefined;
  return {
    host: machine.host,
    port: machine.port,
    user: machine.user,
    // Without a key the provider uses the SSH agent at SSH_AUTH_SOCK.
    ...(sshPrivateKey === undefined ? {} : { privateKey: pulumi.secret(sshPrivateKey) }),
    ...(machine.hostKey === undefined ? {} : { hostKey: machine.hostKey }),
    perDialTimeout: 15,
    dialErrorLimit: 10,
  };
}

export interface StepArgs {
  /** Script run on create and on every change of the step's inputs (scripts are idempotent). */
  readonly script: pulumi.Input<string>;
  /** Script run when the step is deleted: the undo. */
  readonly deleteScript?: string;
  /** Run as root (through `sudo -n` unless the SSH user is root). */
  readonly asRoot: boolean;
  /** Fed to the script's stdin: the only way secrets reach a machine. */
  readonly stdin?: pulumi.Input<string>;
  /** stdout is a secret (token, kubeconfig): never logged, encrypted in state. */
  readonly secretStdout?: boolean;
  /** A change of any of these runs the step anew (replaces it). */
  readonly triggers?: pulumi.Input<unknown>[];
}

export type Step = command.local.Command | command.remote.Command;

/** Declares the step `name` on `target`. */
export function step(
  name: string,
  target: Target,
  args: StepArgs,
  opts: pulumi.CustomResourceOptions,
): Step {
  const user = target.machine.user;
  const line = (script: string) => commandLine(script, { asRoot: args.asRoot, user });
  const common = {
    create: pulumi.output(args.script).apply(line),
    ...(args.deleteScript === undefined ? {} : { delete: line(args.deleteScript) }),
    ...(args.stdin === undefined ? {} : { stdin: args.stdin }),
    ...(args.triggers === undefined ? {} : { triggers: args.triggers }),
    // Previous output would be passed by environment (SSH Setenv needs AcceptEnv), and for
    // secret steps it would put the secret in the environment.
    addPreviousOutputInEnv: false,
    ...(args.secretStdout ? { logging: "none" as const } : {}),
  };
  const stepOpts = args.secretStdout
    ? pulumi.mergeOptions(opts, { additionalSecretOutputs: ["stdout", "stderr"] })
    : opts;
  return target.connection === undefined
    ? new command.local.Command(name, { ...common, interpreter: ["/bin/sh", "-c"] }, stepOpts)
    : new command.remote.Command(name, { ...common, connection: target.connection }, stepOpts);
}
