// Runs the whole Pulumi program (index.ts) under `pulumi.runtime.setMocks`, recording every
// resource registration with its parent and dependencies. The mocks stand for the engine and
// providers: Commands "run" by returning canned stdout (a k3s token and kubeconfig).
import { createHash } from "node:crypto";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { provideSshAgent } from "./agent";
import { REPO_ROOT, configValues } from "./stack";
import type { StateResource } from "../../components/config/last-update";
import {
  HostKey,
  HostKeyScanner,
  keyLine,
  setHostKeyScanner,
} from "../../components/common/ssh-host-keys";
import { setDockerLookup } from "../../components/image/imported";

/** The cluster IP the fake API server gives a Service: its own for each name. */
export const fakeClusterIp = (service: string): string =>
  `10.43.0.${17 + (createHash("sha256").update(service).digest()[0] % 200)}`;

/** What a fake k3s server prints for `cat /var/lib/rancher/k3s/server/token`. */
export const FAKE_TOKEN = "K10fakefakefakefake::server:fake-secret-for-tests";
/** What it prints for `cat /var/lib/rancher/k3s/server/agent-token`: agents only. */
export const FAKE_AGENT_TOKEN = "K10fakefakefakefake::node:fake-agent-password";
/** A k3s.yaml as k3s writes it (the credentials are placeholders). */
export const FAKE_K3S_YAML = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EtREFUQQ==
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
`;

/** The token Kubernetes puts in a service-account-token Secret, here. */
export const FAKE_SA_TOKEN = "eyJfake.service-account.token";
/** When the mocks' dashboard token expires (ms since the epoch). */
export const FAKE_TOKEN_EXPIRES = Date.UTC(2026, 11, 5, 12);
/** The dynamic resource that mints the dashboard's token (components/dashboard/token.ts). */
export const DASHBOARD_TOKEN = "pulumi-nodejs:dynamic/dashboard:Token";
/** The delivery check's wait for its listeners (components/ros/check-wait.ts). */
export const CHECK_WAIT = "pulumi-nodejs:dynamic/ros:CheckWait";

export interface Registration {
  readonly type: string;
  readonly name: string;
  /** Its URN, as the mocks' engine made it. */
  readonly urn: string;
  /** URN of the parent component. */
  readonly parent: string;
  /** Inputs, secrets unwrapped. */
  readonly inputs: Record<string, unknown>;
  /** Input names whose value is a secret. */
  readonly secretInputs: readonly string[];
  /** URNs this resource depends on (dependsOn and data flow). */
  readonly dependencies: readonly string[];
  /** Resource options the engine acts on when the resource is replaced or deleted. */
  readonly deleteBeforeReplace: boolean;
  readonly retainOnDelete: boolean;
}

export interface ProgramRun {
  /** URLs the program itself requested (the registry login check), in order. */
  readonly fetches: readonly string[];
  readonly resources: readonly Registration[];
  /** Reads of existing objects (`Resource.get`), in order. */
  readonly reads: readonly Read[];
  /** The delivery reports ConfigMap's data after this run: `lastReports` of the next one. */
  readonly reports: Readonly<Record<string, string>>;
  readonly outputs: Record<string, unknown>;
  /** Outputs that failed to resolve (an error raised while computing them), by name. */
  readonly outputErrors: Record<string, Error>;
  /** Resources whose inputs failed to resolve, so they were never registered (their errors). */
  readonly registrationErrors: readonly Error[];
  readonly secretOutputs: readonly string[];
  /** The one resource of `type` named `name`; fails the test if absent. */
  get(type: string, name: string): Registration;
  /** Names of the resources of `type`, in registration order. */
  names(type: string): string[];
  /** The registrations `r` depends on directly. */
  directDependencies(r: Registration): Registration[];
  /** True if `from` depends on `to`, directly or through other resources. */
  dependsOn(from: Registration, to: Registration): boolean;
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const isSecretValue = (v: unknown): v is { value: unknown } =>
  typeof v === "object" &&
  v !== null &&
  (v as Record<string, unknown>)[SECRET_SIG] === "1b47061264138c4ac30d75fd1eb44270";

/** A docker-build Image's outputs: its first tag with a digest of its inputs (a new build → new digest). */
function builtImage(inputs: Record<string, unknown>, options: RunOptions): Record<string, unknown> {
  // At preview docker-build leaves digest and ref unknown (buildOnPreview: false): the mocks
  // make a property the state lacks unknown.
  if (options.preview === true) return inputs;
  const digest =
    options.imageDigest ??
    `sha256:${createHash("sha256").update(JSON.stringify(inputs)).digest("hex")}`;
  const tags = (inputs["tags"] as string[] | undefined) ?? [];
  return { ...inputs, digest, ref: `${tags[0]}@${digest}` };
}

/** The value with every secret wrapper removed, and whether it held a secret anywhere. */
function unwrapSecrets(v: unknown): { value: unknown; secret: boolean } {
  if (isSecretValue(v)) return { value: unwrapSecrets(v.value).value, secret: true };
  if (Array.isArray(v)) {
    const items = v.map(unwrapSecrets);
    return { value: items.map((i) => i.value), secret: items.some((i) => i.secret) };
  }
  if (typeof v === "object" && v !== null) {
    const entries = Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)] as const);
    return {
      value: Object.fromEntries(entries.map(([k, x]) => [k, x.value])),
      secret: entries.some(([, x]) => x.secret),
    };
  }
  return { value: v, secret: false };
}

/**
 * The ROS side of a fake cluster: every listener of the check Job hears the beacons of the nodes
 * the beacons' Job runs on (its own node's included), except pairs listed in `deaf`
 * ("talker->listener"), and writes its report with its own run key and uid, as check.sh does:
 * a clean link's figures, or those `figures` gives a pair (probe.py's tuple). Built from what the
 * program declared, so a program that pins a Job or the beacons wrongly, or reads reports it
 * should not trust, fails.
 */

/** probe.py's figures of a clean pair: [heard, got, span, rate, p50, p99, large got, MiB/s]. */
export const CLEAN_FIGURES = (largeBytes: number): (number | null)[] => [
  1,
  400,
  400,
  50,
  0.8,
  1.6,
  largeBytes > 0 ? 3 : 0,
  largeBytes > 0 ? 95.2 : null,
];

export class FakeRos {
  private beaconNodes: string[] = [];
  private readonly jobs: { node: string; run: string; uid: string; large: number }[] = [];

  constructor(
    private readonly deaf: readonly string[],
    /** Which Jobs write no report (their pods never got to it). */
    private readonly silent: readonly string[] = [],
    private readonly figures: Readonly<Record<string, (number | null)[]>> = {},
  ) {}

  /** Called for each registration; returns the state the fake cluster gives it. */
  created(type: string, inputs: Record<string, unknown>): Record<string, unknown> {
    const template = (inputs["spec"] as Obj | undefined)?.["template"] as Obj | undefined;
    const pod = template?.["spec"] as Obj | undefined;
    const name = (inputs["metadata"] as Obj | undefined)?.["name"];
    // The API server gives a ClusterIP Service its address.
    if (type === "kubernetes:core/v1:Service")
      return {
        ...inputs,
        spec: {
          ...(inputs["spec"] as Obj),
          clusterIP: fakeClusterIp(String(name)),
        },
      };
    if (type !== "kubernetes:batch/v1:Job") return inputs;
    // A Job's uid changes exactly when it is made anew, i.e. when anything of it changes (a Job
    // is replaced, never updated): a hash of what it was declared with.
    const uid = `job-uid-${createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 12)}`;
    const env = ((pod?.["containers"] as Obj[])[0]["env"] as Obj[]) ?? [];
    const value = (n: string) => env.find((e) => e["name"] === n)?.["value"];
    if (name === "rosfleet-beacon") this.beaconNodes = affinityNodes(pod);
    // Only the check's listeners report, from a pod on each node its affinity names; other
    // Jobs (the beacons, Multus's waits) just run.
    if (name === "delivery-check")
      for (const node of affinityNodes(pod))
        this.jobs.push({
          node,
          run: String(value("ROSFLEET_CHECK_RUN")),
          uid,
          large: Number(value("ROSFLEET_LARGE_BYTES") ?? 0),
        });
    return { ...inputs, metadata: { ...(inputs["metadata"] as Obj), uid } };
  }

  /** The reports ConfigMap's data after every Job ran. */
  reports(): Record<string, string> {
    const data: Record<string, string> = {};
    for (const job of this.jobs) {
      if (this.silent.includes(job.node)) continue;
      const pairs = Object.fromEntries(
        this.beaconNodes
          .filter((t) => !this.deaf.includes(`${t}->${job.node}`))
          .map((t) => [t, this.figures[`${t}->${job.node}`] ?? CLEAN_FIGURES(job.large)]),
      );
      const report = {
        listener: job.node,
        run: job.run,
        job: job.uid,
        rmw: "rmw_fastrtps_cpp",
        distro: "jazzy",
        large: job.large,
        pairs,
      };
      data[job.node] = `ROSFLEET_DELIVERY ${JSON.stringify(report)}`;
    }
    return data;
  }
}

type Obj = Record<string, unknown>;

/** The nodes a pod spec's required node affinity allows (`kubernetes.io/hostname In …`). */
function affinityNodes(pod: Obj | undefined): string[] {
  const terms = JSON.stringify((pod?.["affinity"] as Obj | undefined)?.["nodeAffinity"] ?? {});
  const values = /"values":\[([^\]]*)\]/.exec(terms)?.[1];
  return values === undefined || values === ""
    ? []
    : values.split(",").map((v) => JSON.parse(v) as string);
}

function cannedStdout(name: string, inputs: Record<string, unknown>): string {
  const create = String(inputs["create"] ?? "");
  if (create.includes("/var/lib/rancher/k3s/server/token")) return `${FAKE_TOKEN}\n`;
  if (create.includes("/var/lib/rancher/k3s/server/agent-token")) return `${FAKE_AGENT_TOKEN}\n`;
  if (create.includes("/etc/rancher/k3s/k3s.yaml")) return FAKE_K3S_YAML;
  const imported = importedImage(inputs);
  if (imported !== undefined) return `${imported}\n`;
  return `${name}: ok\n`;
}

/** What the dev stack's build-and-import step (components/image/import.sh) prints: its
 * repository by a digest of what it was sent (other sources → another digest). */
function importedImage(inputs: Record<string, unknown>): string | undefined {
  const stdin = String(inputs["stdin"] ?? "");
  const repository = /^REPOSITORY='([^']+)'$/m.exec(stdin)?.[1];
  if (repository === undefined || !stdin.includes("ctr images import")) return undefined;
  return `${repository}@sha256:${createHash("sha256").update(stdin).digest("hex")}`;
}

interface MonitorRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getDependenciesList(): string[];
  getPropertydependenciesMap(): { forEach(cb: (deps: { getUrnsList(): string[] }) => void): void };
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
  getDeletebeforereplace(): boolean;
  getRetainondelete(): boolean | undefined;
}
interface ReadRequest {
  getType(): string;
  getName(): string;
  getId(): string;
  getParent(): string;
  getDependenciesList(): string[];
}
interface Monitor {
  registerResource(req: MonitorRequest, cb: unknown): Promise<void>;
  readResource(req: ReadRequest, cb: unknown): Promise<void>;
}

export interface RunOptions {
  readonly stack?: string;
  readonly preview?: boolean;
  /** The digest the registry gives the pushed build (default: a hash of the build's inputs). */
  readonly imageDigest?: string;
  /** Short config keys to mark secret (as `pulumi config set --secret` would). */
  readonly secretKeys?: readonly string[];
  /** Delivery check pairs ("talker->listener") whose /chatter the fake cluster loses. */
  readonly deafPairs?: readonly string[];
  /** Nodes whose check Job writes no report. */
  readonly silentChecks?: readonly string[];
  /** A pair's ("talker->listener") figures as probe.py reports them, instead of a clean link's. */
  readonly pairFigures?: Readonly<Record<string, (number | null)[]>>;
  /** The reports ConfigMap's data before this run (what the last run's Jobs wrote). */
  readonly lastReports?: Readonly<Record<string, string>>;
  /** How the check's listeners ended, as CheckWait saw it (default: complete, no notes). */
  readonly checkEnd?: { readonly outcome: string; readonly notes: Record<string, string> };
  /** The stack's state (URN → type and outputs), as readStackResourceOutputs reads it: what an
   * earlier run left (`stateOf`). Default: none, a first update. */
  readonly previousState?: Readonly<Record<string, StateResource>>;
  /** buildx's state dir (BUILDX_CONFIG) the program finds the builders in. */
  readonly buildx?: string;
  /** Answers the program's own HTTP requests (the registry login check); by default none is
   * answered, as if offline: unit tests send nothing over the network. */
  readonly fetch?: (url: string, init?: RequestInit) => Promise<Response>;
  /** Reads the machines' SSH host keys (the program's ssh-keyscan); by default each host
   * answers with its own made-up key (fakeHostKey): unit tests reach no machine. */
  readonly hostKeys?: HostKeyScanner;
  /** Whether this machine has a docker command, as the program's dev-stack check finds it
   * (default: it has; unit tests do not depend on the machine's Docker). */
  readonly docker?: boolean;
}

/** An SSH string: its length, then its bytes. */
const sshString = (b: Buffer): Buffer => {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(b.length);
  return Buffer.concat([length, b]);
};

/** The ECDSA host key a made-up machine at `host` offers (well-formed, not a real curve point). */
export function fakeHostKey(host: string, seed = ""): HostKey {
  const digest = (text: string) => createHash("sha256").update(text).digest();
  const point = Buffer.concat([
    Buffer.from([4]),
    digest(`${seed}${host}x`),
    digest(`${seed}${host}y`),
  ]);
  const type = "ecdsa-sha2-nistp256";
  const blob = Buffer.concat([
    sshString(Buffer.from(type)),
    sshString(Buffer.from("nistp256")),
    sshString(point),
  ]);
  return { type, blob: blob.toString("base64") };
}

export const fakeHostKeyLine = (host: string, seed = ""): string =>
  keyLine(fakeHostKey(host, seed));

/** A read (`Resource.get`): what was read, by which name, after what. */
export interface Read {
  readonly type: string;
  readonly name: string;
  readonly id: string;
  readonly parent: string;
  readonly dependencies: readonly string[];
}

/** What the fake cluster answers a read with. */
function readState(type: string, name: string, options: RunOptions): Record<string, unknown> {
  // The reports ConfigMap as the last run's Jobs left it (read before this run's are declared).
  if (type === "kubernetes:core/v1:ConfigMap" && name.endsWith("-last"))
    return { data: options.lastReports ?? {} };
  return {};
}

/** Runs index.ts with `config` (short keys, as in a stack file) and records what it declares. */
export async function runProgram(
  config: Readonly<Record<string, unknown>>,
  options: RunOptions = {},
): Promise<ProgramRun> {
  const stack = options.stack ?? "test";
  provideSshAgent();
  setHostKeyScanner(
    options.hostKeys ?? ((host) => Promise.resolve({ ok: true, keys: [fakeHostKey(host)] })),
  );
  setDockerLookup(() => options.docker ?? true);
  // The laptop's buildx builders, as the program reads them (test/fixtures/buildx by default).
  process.env.BUILDX_CONFIG = options.buildx ?? path.join(REPO_ROOT, "test", "fixtures", "buildx");
  // The program's own HTTP requests go to the test, never to the network.
  const fetches: string[] = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input);
    fetches.push(url);
    return options.fetch?.(url, init) ?? Promise.reject(new TypeError("fetch failed (offline)"));
  }) as typeof fetch;
  const registrations: Registration[] = [];
  const reads: Read[] = [];
  // A resource whose input fails is never registered; the SDK leaves that error unhandled.
  const registrationErrors: Error[] = [];
  const onRejection = (err: unknown) =>
    registrationErrors.push(err instanceof Error ? err : new Error(String(err)));
  process.on("unhandledRejection", onRejection);
  const ros = new FakeRos(options.deafPairs ?? [], options.silentChecks ?? [], options.pairFigures);
  await pulumi.runtime.setMocks(
    {
      newResource: (args) =>
        args.id !== undefined && args.id !== ""
          ? { id: args.id, state: readState(args.type, args.name, options) }
          : {
              id: `${args.name}-id`,
              state: args.type.startsWith("command:")
                ? // At preview a new import has not run: its output is unknown (left out).
                  options.preview === true && importedImage(args.inputs) !== undefined
                  ? args.inputs
                  : { ...args.inputs, stdout: cannedStdout(args.name, args.inputs), stderr: "" }
                : args.type === "docker-build:index:Image"
                  ? builtImage(args.inputs, options)
                  : args.type === DASHBOARD_TOKEN
                    ? // The API server mints a token of the ServiceAccount (TokenRequest).
                      { ...args.inputs, token: FAKE_SA_TOKEN, expiresAt: FAKE_TOKEN_EXPIRES }
                    : args.type === CHECK_WAIT
                      ? // The listeners ended: what the ConfigMap then holds.
                        {
                          ...args.inputs,
                          reports: { ...options.lastReports, ...ros.reports() },
                          ...(options.checkEnd ?? { outcome: "complete", notes: {} }),
                        }
                      : ros.created(args.type, args.inputs),
            },
      call: (args) =>
        args.token === "pulumi:pulumi:readStackResourceOutputs"
          ? { name: args.inputs["stackName"], outputs: options.previousState ?? {} }
          : args.inputs,
    },
    "rosfleet",
    stack,
    options.preview ?? false,
    "organization",
  );
  const monitor = pulumi.runtime.getMonitor() as unknown as Monitor;
  const read = monitor.readResource.bind(monitor);
  monitor.readResource = async (req, cb) => {
    reads.push({
      type: req.getType(),
      name: req.getName(),
      id: req.getId(),
      parent: req.getParent(),
      dependencies: req.getDependenciesList(),
    });
    return read(req, cb);
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = async (req, cb) => {
    const raw = req.getObject()?.toJavaScript() ?? {};
    const inputs: Record<string, unknown> = {};
    const secretInputs: string[] = [];
    for (const [k, v] of Object.entries(raw)) {
      const { value, secret } = unwrapSecrets(v);
      if (secret) secretInputs.push(k);
      inputs[k] = value;
    }
    const dependencies = new Set(req.getDependenciesList());
    req
      .getPropertydependenciesMap()
      .forEach((deps) => deps.getUrnsList().forEach((u) => dependencies.add(u)));
    const parent = req.getParent();
    const registration = {
      type: req.getType(),
      name: req.getName(),
      urn: "",
      parent,
      inputs,
      secretInputs,
      dependencies: [...dependencies],
      deleteBeforeReplace: req.getDeletebeforereplace(),
      retainOnDelete: req.getRetainondelete() ?? false,
    };
    registrations.push(registration);
    return register(req, (err: unknown, response?: { getUrn(): string }) => {
      if (response !== undefined) registration.urn = response.getUrn();
      (cb as (e: unknown, r?: unknown) => void)(err, response);
    });
  };
  const prefixed = Object.fromEntries(
    Object.entries(configValues(config)).map(([k, v]) => [`rosfleet:${k}`, v]),
  );
  pulumi.runtime.setAllConfig(
    prefixed,
    (options.secretKeys ?? []).map((k) => `rosfleet:${k}`),
  );

  for (const file of Object.keys(require.cache)) {
    if (
      file.startsWith(REPO_ROOT) &&
      !file.includes(`${path.sep}node_modules${path.sep}`) &&
      !file.includes(`${path.sep}test${path.sep}`)
    )
      Reflect.deleteProperty(require.cache, file);
  }
  // CommonJS: this require is a fresh load once the cache is cleared above; the module is the
  // async program, and what it resolves to the stack's outputs.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const main = require(path.join(REPO_ROOT, "index.ts")) as () => Promise<Record<string, unknown>>;
  let program: Record<string, unknown>;
  try {
    program = await main();
  } finally {
    // The login check runs before any resource is declared: nothing fetches after this.
    globalThis.fetch = realFetch;
  }
  const outputs: Record<string, unknown> = {};
  const outputErrors: Record<string, Error> = {};
  const secretOutputs: string[] = [];
  for (const [key, value] of Object.entries(program)) {
    if (!pulumi.Output.isInstance(value)) continue;
    // The SDK's own (untyped) promise of an output: it rejects when an apply throws.
    const settled = (value as unknown as { promise(): Promise<unknown> }).promise();
    try {
      outputs[key] = await settled;
      if (await pulumi.isSecret(value)) secretOutputs.push(key);
    } catch (err) {
      outputErrors[key] = err as Error;
    }
  }
  await pulumi.runtime.disconnect();
  // Rejections are reported after the microtask that dropped them.
  await new Promise((resolve) => setImmediate(resolve));
  process.off("unhandledRejection", onRejection);
  return makeRun(
    fetches,
    registrations,
    reads,
    ros.reports(),
    outputs,
    outputErrors,
    secretOutputs,
    registrationErrors,
  );
}

function makeRun(
  fetches: readonly string[],
  resources: readonly Registration[],
  reads: readonly Read[],
  reports: Readonly<Record<string, string>>,
  outputs: Record<string, unknown>,
  outputErrors: Record<string, Error>,
  secretOutputs: readonly string[],
  registrationErrors: readonly Error[],
): ProgramRun {
  // Match dependency URNs to registrations by their own type (last of the type chain) and name.
  const key = (urn: string) => {
    const [, , types, name] = urn.split("::");
    return `${types.split("$").pop()}::${name}`;
  };
  const byKey = new Map(resources.map((r) => [`${r.type.split("$").pop()}::${r.name}`, r]));
  const deps = (r: Registration) =>
    r.dependencies.map((u) => byKey.get(key(u))).filter((d): d is Registration => d !== undefined);
  return {
    fetches,
    resources,
    reads,
    reports,
    outputs,
    outputErrors,
    registrationErrors,
    secretOutputs,
    get(type, name) {
      const found = resources.filter((r) => r.type === type && r.name === name);
      if (found.length !== 1)
        throw new Error(`expected one ${type} named ${name}, found ${found.length}`);
      return found[0];
    },
    names: (type) => resources.filter((r) => r.type === type).map((r) => r.name),
    directDependencies: deps,
    dependsOn(from, to) {
      const seen = new Set<Registration>();
      const queue = [...deps(from)];
      while (queue.length > 0) {
        const next = queue.shift() as Registration;
        if (next === to) return true;
        if (seen.has(next)) continue;
        seen.add(next);
        queue.push(...deps(next));
      }
      return false;
    },
  };
}

/**
 * What `run` leaves in the stack's state as the next run reads it (readStackResourceOutputs):
 * each resource's outputs are its inputs, as the command provider's are (stdin, connection…),
 * with `extra` outputs by resource name (a component's registered outputs).
 */
export function stateOf(
  run: ProgramRun,
  extra: Readonly<Record<string, Record<string, unknown>>> = {},
): Record<string, StateResource> {
  return Object.fromEntries(
    run.resources.map((r) => [
      r.urn,
      { type: r.type, outputs: { ...r.inputs, ...(extra[r.name] ?? {}) } },
    ]),
  );
}
