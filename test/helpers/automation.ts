// rosfleet's program under the real Pulumi CLI through the Automation API, for the engine and
// e2e tiers: an inline program (no nodejs language host needed), a file backend and passphrase
// secrets in a temp dir, and the toolchain's CLI; providers are found on PATH (ambient plugins).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  ConfigMap,
  EngineEvent,
  LocalWorkspace,
  OpType,
  PulumiCommand,
  Stack,
} from "@pulumi/pulumi/automation";
import { REPO_ROOT } from "./stack";

/** Each run loads the program afresh (index.ts exports the async program: its result is the
 * stack's outputs). */
export function program(): Promise<Record<string, unknown>> {
  for (const file of Object.keys(require.cache))
    if (file.startsWith(REPO_ROOT) && !file.includes(`${path.sep}node_modules${path.sep}`))
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- a module cache entry
      delete require.cache[file];
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(path.join(REPO_ROOT, "index.ts")) as () => Promise<Record<string, unknown>>)();
}

/** What an operation did: resource URN → op, without reads and unchanged resources. */
export function changesOf(events: readonly EngineEvent[]): Map<string, OpType> {
  const changes = new Map<string, OpType>();
  for (const e of events) {
    const m = e.resourcePreEvent?.metadata;
    if (m === undefined || m.type === "pulumi:pulumi:Stack") continue;
    if (m.op === "same" || m.op === "read" || m.op === "refresh") continue;
    // A replacement is reported as its steps (create-replacement, replace, delete-replaced).
    changes.set(
      m.urn,
      m.op.endsWith("replacement") || m.op.endsWith("replaced") ? "replace" : m.op,
    );
  }
  return changes;
}

export const nameOf = (urn: string) => urn.split("::").at(-1) ?? urn;

/** "<resource name>:<op>" of each change, sorted. */
export const changeList = (changes: Map<string, OpType>): string[] =>
  [...changes].map(([urn, op]) => `${nameOf(urn)}:${op}`).sort();

/** Runs `op` with an event sink; returns its result and what it changed. */
export async function withChanges<T>(op: (onEvent: (e: EngineEvent) => void) => Promise<T>) {
  const events: EngineEvent[] = [];
  const result = await op((e) => events.push(e));
  return { result, changes: changesOf(events) };
}

/** Stack config of rosfleet keys: strings as they are, other values as JSON (what `--path` sets). */
export function rosfleetConfig(
  values: Record<string, unknown>,
  secrets: Record<string, string> = {},
): ConfigMap {
  return {
    ...Object.fromEntries(
      Object.entries(values).map(([k, v]) => [
        `rosfleet:${k}`,
        { value: typeof v === "string" ? v : JSON.stringify(v) },
      ]),
    ),
    ...Object.fromEntries(
      Object.entries(secrets).map(([k, v]) => [`rosfleet:${k}`, { value: v, secret: true }]),
    ),
  };
}

export interface AutomationStack {
  readonly stack: Stack;
  /** The environment the CLI runs with (backend, passphrase, PATH). */
  readonly env: Readonly<Record<string, string>>;
  /** Where the file backend keeps state. */
  readonly stateDir: string;
  /** Removes the backend, Pulumi home and workspace. */
  cleanup(): void;
}

/**
 * A stack `stackName` of the program on the CLI in `bin`, with `pathDirs` (provider plugins)
 * first on PATH and `extraEnv`, in a temp dir of its own.
 */
export async function automationStack(
  bin: string,
  stackName: string,
  pathDirs: readonly string[],
  extraEnv: Readonly<Record<string, string>> = {},
  run: () => Promise<Record<string, unknown>> = program,
): Promise<AutomationStack> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-pulumi-"));
  const stateDir = path.join(home, "state");
  fs.mkdirSync(stateDir);
  const env = {
    PULUMI_HOME: path.join(home, "home"),
    PULUMI_BACKEND_URL: `file://${stateDir}`,
    PULUMI_CONFIG_PASSPHRASE: `rosfleet-${stackName}-test`,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    // The dynamic-provider host the Pulumi CLI's distribution has beside it (plugins/).
    PATH: [...pathDirs, path.join(__dirname, "plugins"), process.env.PATH ?? ""].join(
      path.delimiter,
    ),
    ...extraEnv,
  };
  const pulumiCommand = await PulumiCommand.get({
    root: path.dirname(bin),
    skipVersionCheck: true,
  });
  // Providers run in the workspace dir: the image's build context (images/ros_demo, relative to
  // the project as in a user's checkout) is the repository's own, through a link.
  const workDir = fs.mkdtempSync(path.join(home, "work-"));
  fs.symlinkSync(path.join(REPO_ROOT, "images"), path.join(workDir, "images"));
  // Plugins run in the workspace dir, as in a user's checkout: the dynamic resources' code
  // finds its packages there.
  fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(workDir, "node_modules"));
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName, projectName: "rosfleet", program: run },
    {
      workDir,
      envVars: env,
      pulumiCommand,
      secretsProvider: "passphrase",
      projectSettings: {
        name: "rosfleet",
        runtime: "nodejs",
        backend: { url: env.PULUMI_BACKEND_URL },
      },
    },
  );
  return {
    stack,
    env,
    stateDir,
    cleanup: () => fs.rmSync(home, { recursive: true, force: true }),
  };
}

/**
 * Everything the stack's state shows: what `pulumi stack export` prints (the Automation API's
 * exportStack shows secrets) and the backend's files themselves.
 */
export function stateText(a: AutomationStack, bin: string): string {
  const exported = execFileSync(
    path.join(bin, "pulumi"),
    ["stack", "export", "--stack", a.stack.name],
    { cwd: a.stack.workspace.workDir, env: { ...process.env, ...a.env }, encoding: "utf8" },
  );
  const files = fs
    .readdirSync(a.stateDir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".json") && f.includes(`stacks${path.sep}rosfleet${path.sep}`));
  if (files.length === 0) throw new Error(`no stack state under ${a.stateDir}`);
  return [exported, ...files.map((f) => fs.readFileSync(path.join(a.stateDir, f), "utf8"))].join(
    "\n",
  );
}

/** A Kubernetes object rosfleet declared, as its state records it. */
export interface StateObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

/** The Kubernetes objects the stack created (not the ones it only reads, like Nodes). */
export async function stateObjects(stack: Stack): Promise<StateObject[]> {
  const state = (await stack.exportStack()).deployment as {
    resources?: { type: string; external?: boolean; outputs?: StateObject }[];
  };
  return (state.resources ?? [])
    .filter((r) => r.type.startsWith("kubernetes:") && r.external !== true)
    .map((r) => r.outputs)
    .filter((o): o is StateObject => o?.kind !== undefined && o.metadata?.name !== undefined);
}

/** The API paths of `objects` that still answer (anything but 404) through `get`. */
export async function leftInCluster(
  objects: readonly StateObject[],
  get: (url: string) => Promise<{ status: number } | undefined> | undefined,
): Promise<string[]> {
  const left: string[] = [];
  for (const o of objects) {
    const group = o.apiVersion?.includes("/") ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
    // Every kind rosfleet declares has the regular plural.
    const plural = `${o.kind?.toLowerCase()}s`;
    const ns = o.metadata?.namespace === undefined ? "" : `/namespaces/${o.metadata.namespace}`;
    const url = `${group}${ns}/${plural}/${o.metadata?.name}`;
    if ((await get(url))?.status !== 404) left.push(url);
  }
  return left;
}
