// The k3s stage's scripts with their parameters: pure, so tests run exactly what is sent.
import * as path from "node:path";
import { Machine } from "../config";
import { AirgapPlan } from "./airgap";
import { renderScript } from "../shell";

/** The official installer; it downloads the pinned release from GitHub. */
export const INSTALL_URL = "https://get.k3s.io";
/** How long k3s may take to start, and a server or node to become Ready, before a step fails. */
export const READY_SECONDS = 300;
/** How long draining a removed agent may take before its node is deleted anyway. */
export const DRAIN_SECONDS = 120;
/** Where install.sh writes the join script that `<name>-join` runs with the token on stdin. */
export const JOIN_SCRIPT_FILE = "/etc/rancher/k3s/rosfleet-join.sh";

const script = (file: string) => path.join(__dirname, file);
/** Shell functions and paths the k3s scripts share (`$K3S`, `owner`, waits). */
export const K3S_LIB = [script("lib.sh")];

export interface InstallScriptArgs {
  readonly machine: Machine;
  readonly version: string;
  /** From `renderK3sConfig`. */
  readonly configYaml: string;
  /** The server to join (agents and joining servers; the token then comes by `<name>-join`). */
  readonly joinHost: string | undefined;
  /** Air-gapped install: where the files are on the machine (`AirgapPlan.params`). */
  readonly airgap?: AirgapPlan["params"];
  /** registries.yaml with its credentials as `[secret]`, when `k3s.registries` is set. */
  readonly registries?: string;
  /** An agent's cluster: the first server's install (its id). When the first server is
   * installed anew (a new cluster), the agent's old token is dropped until its join step hands
   * it the new cluster's. */
  readonly cluster?: string;
}

const NO_AIRGAP: AirgapPlan["params"] = {
  AIRGAP_INSTALLER: "",
  AIRGAP_BINARY: "",
  AIRGAP_IMAGES: "",
  AIRGAP_SHA256: "",
};

/** The script `<name>-join` runs: token from stdin to its file, then k3s (re)started with it. */
export function joinScript(machine: Machine): string {
  return renderScript(
    script("join.sh"),
    { NODE_NAME: machine.name, ROLE: machine.role, WAIT_SECONDS: READY_SECONDS, ROOT: "" },
    K3S_LIB,
  );
}

/** The command `<name>-join` runs (its stdin is the cluster token). */
export const joinProgram = (root = ""): string[] => ["bash", `${root}${JOIN_SCRIPT_FILE}`];

export function installScript(args: InstallScriptArgs): string {
  return renderScript(
    script("install.sh"),
    {
      NODE_NAME: args.machine.name,
      ROLE: args.machine.role,
      K3S_VERSION: args.version,
      CONFIG_YAML: args.configYaml,
      JOIN_HOST: args.joinHost ?? "",
      JOIN_SCRIPT: args.joinHost === undefined ? "" : joinScript(args.machine),
      INSTALL_URL,
      ...(args.airgap ?? NO_AIRGAP),
      REGISTRIES: args.registries ?? "",
      // Only agents have it (a server's script stays as it was).
      ...(args.cluster === undefined ? {} : { CLUSTER: args.cluster }),
      WAIT_SECONDS: READY_SECONDS,
      ROOT: "",
    },
    K3S_LIB,
  );
}

/**
 * Removes k3s; `airgap` lists the copied air-gap files to remove from the SSH user's home;
 * with `keepRegistries` (k3s.registries set), registries.yaml stays for `<name>-registries`.
 */
export function uninstallScript(
  machine: Machine,
  airgap?: AirgapPlan,
  keepRegistries = false,
): string {
  return renderScript(
    script("uninstall.sh"),
    {
      NODE_NAME: machine.name,
      ROLE: machine.role,
      ROOT: "",
      AIRGAP_FILES: (airgap?.copies ?? []).map((f) => f.remote).join(" "),
      KEEP_REGISTRIES: keepRegistries,
    },
    K3S_LIB,
  );
}

/** Writes registries.yaml (`yaml`; "" removes it) and restarts k3s when it changed. */
export function registriesScript(machine: Machine, yaml: string): string {
  return renderScript(
    script("registries.sh"),
    {
      NODE_NAME: machine.name,
      ROLE: machine.role,
      REGISTRIES_YAML: yaml,
      WAIT_SECONDS: READY_SECONDS,
      ROOT: "",
    },
    K3S_LIB,
  );
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
      ROOT: "",
    },
    K3S_LIB,
  );
}

/**
 * Drains and deletes `machine`'s node; run on the first server when the machine goes. For a
 * server, the delete removes its etcd member, and etcd must be healthy after it.
 */
export function removeNodeScript(machine: Machine): string {
  return renderScript(
    script("remove-node.sh"),
    {
      NODE_NAME: machine.name,
      ROLE: machine.role,
      DRAIN_SECONDS,
      WAIT_SECONDS: READY_SECONDS,
      ROOT: "",
    },
    K3S_LIB,
  );
}

/** Prints a root-only file (token, kubeconfig): its step's stdout is secret. */
export const readFileProgram = (file: string): string[] => ["cat", file];
