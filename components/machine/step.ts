// One remote step on one machine: a `@pulumi/command` Command over SSH, or a local Command when
// the machine is the one running pulumi (host: localhost), with the same command line and stdin
// either way. Command lines are short and fixed (see shell.ts): a failure shows the step's name,
// `running "sudo -n bash -s -- create"` and the script's own message, not the script.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { Machine } from "../config";
import { bundleLine, programLine, scriptBundle } from "../shell";

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

interface StepCommon {
  /** Run as root (through `sudo -n` unless the SSH user is root). */
  readonly asRoot: boolean;
  /** stdout is a secret (token, kubeconfig): never logged, encrypted in state. */
  readonly secretStdout?: boolean;
  /** A change of any of these runs the step anew (replaces it). */
  readonly triggers?: pulumi.Input<unknown>[];
}

/** A step that runs a script (sent on stdin, so `preview --diff` shows a change of it). */
export interface ScriptStepArgs extends StepCommon {
  /** Script run on create and on every change of the step's inputs (scripts are idempotent). */
  readonly script: pulumi.Input<string>;
  /** Script run when the step is deleted: the undo. */
  readonly deleteScript?: string;
}

/** A step that runs one short fixed program, with a secret (or nothing) on its stdin. */
export interface ProgramStepArgs extends StepCommon {
  /** argv of the program, e.g. `["cat", "/var/lib/rancher/k3s/server/token"]`. */
  readonly program: readonly string[];
  /** Fed to the program's stdin: the only way secrets reach a machine. */
  readonly stdin?: pulumi.Input<string>;
}

export type StepArgs = ScriptStepArgs | ProgramStepArgs;

export type Step = command.local.Command | command.remote.Command;

/** The command lines and stdin a step sends (pure). */
export function stepCommands(
  args: StepArgs,
  user: string | undefined,
): { create: pulumi.Input<string>; delete?: string; stdin?: pulumi.Input<string> } {
  const as = { asRoot: args.asRoot, user };
  if ("program" in args)
    return {
      create: programLine(args.program, as),
      ...(args.stdin === undefined ? {} : { stdin: args.stdin }),
    };
  return {
    create: bundleLine("create", as),
    ...(args.deleteScript === undefined ? {} : { delete: bundleLine("delete", as) }),
    stdin: pulumi
      .output(args.script)
      .apply((create) => scriptBundle({ create, delete: args.deleteScript })),
  };
}

/** Declares the step `name` on `target`. */
export function step(
  name: string,
  target: Target,
  args: StepArgs,
  opts: pulumi.CustomResourceOptions,
): Step {
  const common = {
    ...stepCommands(args, target.machine.user),
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
