// The config stage: read the `rosfleet:` namespace, validate it whole, apply defaults, and hand
// the rest of the program one typed `LabConfig`. Nothing is declared before this succeeds.
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import * as pulumiRuntimeConfig from "@pulumi/pulumi/runtime/config";
import { describeIssue } from "./describe";
import { ReadFile, applyDefaults } from "./defaults";
import { crossChecks, isLocalHost } from "./checks";
import { previousLab } from "./previous";
import { PreviousLab, continuity } from "./last-update";
import { leavingServers } from "./quorum";
import { pinHostKeys } from "./host-keys";
import { hostKeyScanner } from "../common/ssh-host-keys";
import type { AgentState } from "./ssh-checks";
import type { Problem } from "./problem";
import type { Workload } from "./workloads";
import { pullCredentials, registriesWithSecrets, schedulableNodes, taintedNodes } from "./derived";
import { labSchema } from "./schema";
import { machineViews } from "./raw";
import type { LabConfig, LabSettings } from "./settings";

export { Problem, Workload, isLocalHost };
export { configFlags } from "./k3s-args";
export * from "./schema";
export * from "./settings";

/** The configuration namespace of the contract (`rosfleet:machines`, ...). */
export const NAMESPACE = "rosfleet";

export type ParseResult =
  | { readonly ok: true; readonly settings: LabSettings }
  | { readonly ok: false; readonly problems: readonly Problem[] };

// Pulumi hands structured values over as JSON text and plain strings as they are.
const STRUCTURED_KEYS = new Set([
  "machines",
  "ssh",
  "k3s",
  "cluster",
  "image",
  "ros",
  "dashboard",
  "deliveryCheck",
]);

function decode(values: Readonly<Record<string, string>>): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const [key, text] of Object.entries(values)) {
    if (!STRUCTURED_KEYS.has(key)) {
      raw[key] = text;
      continue;
    }
    try {
      raw[key] = JSON.parse(text) as unknown;
    } catch {
      // A bare word such as `k3s: v1.33` is not JSON: let the schema say what shape it wants.
      raw[key] = text;
    }
  }
  return raw;
}

/** What parsing may ask of the world: which keys Pulumi decrypted, which files exist, what
 * lab the stack's state holds since its last update (`previous`). */
export interface ParseEnv {
  readonly isSecret: (key: string) => boolean;
  readonly isFile: (path: string) => boolean;
  readonly readFile: ReadFile;
  /** Whether the SSH agent the machines would be logged in with is there. */
  readonly sshAgent: () => AgentState;
  /** The lab since the stack's last update (last-update.ts); undefined: a first update. */
  readonly previous?: PreviousLab;
}

function readTextFile(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** The agent the command provider would ask (it reads SSH_AUTH_SOCK, as ssh does). */
export function sshAgentState(socket: string | undefined): AgentState {
  if (socket === undefined || socket === "") return "unset";
  return fs.statSync(socket, { throwIfNoEntry: false })?.isSocket() === true ? "running" : "stale";
}

const DEFAULT_ENV: ParseEnv = {
  isSecret: () => true,
  isFile: (file) => fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false,
  readFile: readTextFile,
  sshAgent: () => sshAgentState(process.env["SSH_AUTH_SOCK"]),
};

const SECRET_KEYS = ["sshPrivateKey", "registryPassword"] as const;

function plaintextSecrets(
  values: Readonly<Record<string, string>>,
  isSecret: (key: string) => boolean,
): Problem[] {
  return SECRET_KEYS.filter((key) => key in values && !isSecret(key)).map((key) => ({
    path: key,
    message: `is stored in plaintext in the stack file: run pulumi config rm ${key}, then pulumi config set --secret ${key}`,
  }));
}

/**
 * Validates the stack configuration given as Pulumi stores it (key without namespace → text).
 * Pure: returns every problem at once, or the settings with defaults applied.
 */
export function parseLab(
  values: Readonly<Record<string, string>>,
  env: Partial<ParseEnv> = {},
): ParseResult {
  const { isSecret, isFile, readFile, sshAgent, previous } = {
    ...DEFAULT_ENV,
    ...env,
  };
  const raw = decode(values);
  const parsed = labSchema.safeParse(raw, { reportInput: true });
  const problems = [
    ...(parsed.success ? [] : parsed.error.issues.flatMap(describeIssue)),
    ...crossChecks(raw, {
      isFile,
      isSecret,
      readFile,
      sshAgent,
      previous,
    }),
    ...plaintextSecrets(values, isSecret),
  ];
  if (problems.length > 0 || !parsed.success) return { ok: false, problems };
  return { ok: true, settings: applyDefaults(parsed.data, readFile) };
}

/** The one error for bad configuration: every problem, one per line, before anything runs. */
export class ConfigError extends pulumi.RunError {
  constructor(public readonly problems: readonly Problem[]) {
    super(formatProblems(problems));
  }
}

export function formatProblems(problems: readonly Problem[]): string {
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  const lines = problems.map((p) => `  ${p.path === "" ? "(stack config)" : p.path}: ${p.message}`);
  return [`invalid ${NAMESPACE} stack configuration (${count}):`, ...lines].join("\n");
}

// The SDK knows which keys the engine decrypted but keeps `isConfigSecret` out of its typings.
const runtimeConfig = pulumiRuntimeConfig as unknown as {
  isConfigSecret?: (key: string) => boolean;
};
const configKeyIsSecret = (key: string): boolean => runtimeConfig.isConfigSecret?.(key) ?? true;

/**
 * Reads and validates this stack's configuration; throws `ConfigError` with every problem.
 * When rosfleet installs k3s, the lab of the last update (read from the stack's state) is
 * checked against the new one too.
 */
export async function readLabConfig(): Promise<LabConfig> {
  const prefix = `${NAMESPACE}:`;
  const values = Object.fromEntries(
    Object.entries(pulumi.runtime.allConfig())
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), value]),
  );
  // Also on an existing cluster: a switch to cluster.kubeconfig is judged against it.
  const raw = decode(values);
  const previous = await previousLab((lab) =>
    raw["cluster"] === undefined ? leavingServers(machineViews(raw), lab.servers) : [],
  );
  // Files are read once: the key file checked is the key file used.
  const files = new Map<string, string | undefined>();
  const readOnce = (file: string): string | undefined => {
    if (!files.has(file)) files.set(file, readTextFile(file));
    return files.get(file);
  };
  const result = parseLab(values, {
    isSecret: (key) => configKeyIsSecret(`${prefix}${key}`),
    readFile: readOnce,
    previous,
  });
  if (!result.ok) throw new ConfigError(result.problems);
  // Every machine's SSH host key, pinned on first use and checked before any step (host-keys.ts).
  const pinned = await pinHostKeys(
    result.settings.machines,
    previous.hostKeys ?? {},
    hostKeyScanner(),
    pulumi.runtime.isDryRun(),
  );
  if (pinned.problems.length > 0) throw new ConfigError(pinned.problems);
  pinned.warnings.forEach((w) => void pulumi.log.warn(w));
  const settings: LabSettings = { ...result.settings, machines: pinned.machines };
  const config = new pulumi.Config(NAMESPACE);
  const registryPassword = config.getSecret("registryPassword");
  return {
    ...settings,
    sshPrivateKey:
      settings.sshPrivateKeyFile === undefined
        ? config.getSecret("sshPrivateKey")
        : pulumi.secret(readOnce(settings.sshPrivateKeyFile) ?? ""),
    clusterKubeconfig:
      settings.cluster !== undefined && settings.cluster.kubeconfigPath === undefined
        ? pulumi.secret(config.requireObject<{ kubeconfig: string }>("cluster").kubeconfig)
        : undefined,
    registryPassword,
    k3sRegistries:
      settings.k3s === undefined
        ? undefined
        : registriesWithSecrets(config.getObject<{ registries?: unknown }>("k3s")),
    pull: pullCredentials(settings, registryPassword),
    schedulable: schedulableNodes(settings),
    tainted: taintedNodes(settings),
    continuity: continuity(previous, {
      existing: settings.cluster !== undefined,
      first: settings.machines.find((m) => m.role === "server")?.name,
    }),
  };
}
