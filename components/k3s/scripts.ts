// The k3s stage's scripts with their parameters: pure, so tests run exactly what is sent.
import * as path from "node:path";
import { Machine } from "../config";
import { AirgapPlan } from "./airgap";
import { renderScript, shellQuote } from "../shell";

/** The official installer; it downloads the pinned release from GitHub. */
export const INSTALL_URL = "https://get.k3s.io";
/** How long a server or node may take to become Ready before the step fails. */
export const READY_SECONDS = 300;
/** How long draining a removed agent may take before its node is deleted anyway. */
export const DRAIN_SECONDS = 120;

const script = (file: string) => path.join(__dirname, file);
/** Shell functions install.sh and node.sh share. */
const LIB = [script("lib.sh")];

export interface InstallScriptArgs {
  readonly machine: Machine;
  readonly version: string;
  /** From `renderK3sConfig`. */
  readonly configYaml: string;
  /** The server to join (agents and joining servers; the token then comes on stdin). */
  readonly joinHost: string | undefined;
  /** Air-gapped install: where the files are on the machine (`AirgapPlan.params`). */
  readonly airgap?: AirgapPlan["params"];
}

const NO_AIRGAP: AirgapPlan["params"] = {
  AIRGAP_INSTALLER: "",
  AIRGAP_BINARY: "",
  AIRGAP_IMAGES: "",
  AIRGAP_SHA256: "",
};

export function installScript(args: InstallScriptArgs): string {
  return renderScript(
    script("install.sh"),
    {
      NODE_NAME: args.machine.name,
      ROLE: args.machine.role,
      K3S_VERSION: args.version,
      CONFIG_YAML: args.configYaml,
      READ_TOKEN: args.joinHost !== undefined,
      JOIN_HOST: args.joinHost ?? "",
      INSTALL_URL,
      ...(args.airgap ?? NO_AIRGAP),
      WAIT_SECONDS: READY_SECONDS,
      ROOT: "",
    },
    LIB,
  );
}

/** Removes k3s; `airgap` lists the copied air-gap files to remove from the SSH user's home. */
export function uninstallScript(machine: Machine, airgap?: AirgapPlan): string {
  return renderScript(script("uninstall.sh"), {
    NODE_NAME: machine.name,
    ROLE: machine.role,
    ROOT: "",
    AIRGAP_FILES: (airgap?.copies ?? []).map((f) => f.remote).join(" "),
  });
}

/** Reconciles labels, taints and cordon of `machine`'s node; run on the first server. */
export function nodeScript(machine: Machine): string {
  return renderScript(
    script("node.sh"),
    {
      NODE_NAME: machine.name,
      LABELS: Object.entries(machine.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join("\n"),
      TAINTS: machine.taints.join("\n"),
      CORDON: machine.cordon,
      WAIT_SECONDS: READY_SECONDS,
    },
    LIB,
  );
}

/** Drains and deletes `machine`'s node; run on the first server when the agent goes. */
export function removeNodeScript(machine: Machine): string {
  return renderScript(script("remove-node.sh"), {
    NODE_NAME: machine.name,
    DRAIN_SECONDS,
  });
}

/** Prints a root-only file (token, kubeconfig): its step's stdout is secret. */
export function readFileScript(file: string): string {
  return `set -euo pipefail\ncat ${shellQuote(file)}`;
}
