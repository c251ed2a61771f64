// Stage "machine": one component per machine of the lab — how to reach it, and the preflight
// that checks it before anything is installed anywhere.
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Machine } from "../config";
import { renderScript } from "../shell";
import { Step, Target, connectionFor, step } from "./step";

export interface LabMachineArgs {
  /** The validated machine from the stack config. */
  readonly machine: Machine;
  /** SSH private key (secret); unset: the SSH agent is used. */
  readonly sshPrivateKey?: pulumi.Input<string>;
  /** With `ros.discovery: multus`: the NIC every machine must route through (not Wi-Fi). */
  readonly multusInterface?: string;
  /** k3s comes from `k3s.airgap` files: the machine needs no curl (nor internet). */
  readonly airgapped?: boolean;
}

/** What preflight checks besides the machine itself. */
export interface PreflightOptions {
  readonly multusInterface?: string;
  readonly airgapped?: boolean;
}

/** The preflight script of a machine, with its parameters. */
export function preflightScript(machine: Machine, opts: PreflightOptions = {}): string {
  return renderScript(path.join(__dirname, "preflight.sh"), {
    NODE_NAME: machine.name,
    EXPECTED_ARCH: machine.arch,
    KIND: machine.kind,
    NEED_DOCKER: machine.docker,
    NEED_CURL: !(opts.airgapped ?? false),
    MULTUS_NIC: opts.multusInterface ?? "",
    NODE_IP: machine.nodeIp ?? "",
    FLANNEL_IFACE: machine.flannelIface ?? "",
    ADOPT: machine.adopt,
    ROOT: "",
  });
}

/** A laptop, Pi or VM of the lab (`rosfleet:machine:Machine`). */
export class LabMachine extends pulumi.ComponentResource {
  /** How later stages run steps on this machine. */
  public readonly target: Target;
  /** Passes only when the machine is fit for k3s: `preflight ok: <name> arch=… nic=…`. */
  public readonly preflight: Step;

  constructor(name: string, args: LabMachineArgs, opts?: pulumi.ComponentResourceOptions) {
    super("rosfleet:machine:Machine", name, {}, opts);
    this.target = {
      machine: args.machine,
      connection: connectionFor(args.machine, args.sshPrivateKey),
    };
    this.preflight = step(
      `${name}-preflight`,
      this.target,
      { script: preflightScript(args.machine, args), asRoot: false },
      { parent: this },
    );
    this.registerOutputs({ preflight: this.preflight.stdout });
  }
}
