// Reading the raw (not yet validated) configuration defensively, for the cross-key rules: they
// must run even where the schema already rejected a field, so that every problem is reported.
import * as os from "node:os";
import * as path from "node:path";
import type { Problem } from "./problem";
import { defaultArch } from "./schema";

export type Dict = Readonly<Record<string, unknown>>;

export const isDict = (v: unknown): v is Dict =>
  typeof v === "object" && v !== null && !Array.isArray(v);
export const str = (d: Dict | undefined, key: string): string | undefined =>
  d !== undefined && typeof d[key] === "string" ? (d[key] as string) : undefined;
export const dict = (d: Dict | undefined, key: string): Dict | undefined =>
  d !== undefined && isDict(d[key]) ? (d[key] as Dict) : undefined;

/**
 * `base.key`, or `base["key"]` for a map key with other characters (a registry such as
 * `10.0.0.5:5000`, a label such as `example.com/robot`): the path `pulumi config set --path` takes.
 */
export const keyPath = (base: string, key: string): string =>
  /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)
    ? base === ""
      ? key
      : `${base}.${key}`
    : `${base}[${JSON.stringify(key)}]`;

export interface MachineView {
  readonly path: string;
  readonly name?: string;
  readonly host?: string;
  readonly role?: string;
  readonly kind: string;
  /** As declared, or the kind's default. */
  readonly arch: string;
  readonly user?: string;
  readonly nodeIp?: string;
  readonly flannelIface?: string;
  readonly cordon: boolean;
  /** `docker`: k3s runs its pods with Docker, not its containerd. */
  readonly docker: boolean;
}

export function machineViews(raw: Dict): MachineView[] {
  const list = raw["machines"];
  if (!Array.isArray(list)) return [];
  return list.flatMap((m: unknown, i) => {
    if (!isDict(m)) return [];
    const kind = str(m, "kind") ?? "vm";
    return [
      {
        path: `machines[${i}]`,
        name: str(m, "name"),
        host: str(m, "host"),
        role: str(m, "role"),
        kind,
        arch: str(m, "arch") ?? defaultArch(kind),
        user: str(m, "user"),
        nodeIp: str(m, "nodeIp"),
        flannelIface: str(m, "flannelIface"),
        cordon: m["cordon"] === true || m["cordon"] === "true",
        docker: m["docker"] === true || m["docker"] === "true",
      },
    ];
  });
}

/** Where a list entry keeps one value: `entry` is the entry's path, e.g. `machines[2]`. */
export interface Use {
  readonly entry: string;
  readonly key: string;
  readonly value: string | undefined;
}

/** Reports each value that an earlier entry already used, naming that entry. */
export function duplicates(
  uses: readonly Use[],
  normalise: (v: string) => string = (v) => v,
): Problem[] {
  const firstSeen = new Map<string, string>();
  const problems: Problem[] = [];
  for (const use of uses) {
    if (use.value === undefined) continue;
    const seen = normalise(use.value);
    const earlier = firstSeen.get(seen);
    if (earlier === undefined) firstSeen.set(seen, use.entry);
    else
      problems.push({
        path: `${use.entry}.${use.key}`,
        message: `${JSON.stringify(use.value)} is already used by ${earlier}`,
      });
  }
  return problems;
}

export const uses = (views: readonly MachineView[], key: "name" | "host" | "nodeIp"): Use[] =>
  views.map((v) => ({ entry: v.path, key, value: v[key] }));

/** Hosts that mean "the machine that runs pulumi": reached with local commands, not SSH. */
export const LOCAL_HOSTS: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "::1"]);

export const isLocalHost = (host: string): boolean => LOCAL_HOSTS.has(host.trim().toLowerCase());

/**
 * Whether the lab's image goes without a registry: built with no `image.repository` for a lab of
 * one machine, the one running pulumi, on which rosfleet installs k3s. Docker builds it there and
 * k3s imports it (components/image/imported.ts); every other lab's nodes pull from a registry.
 */
export function importsImage(lab: {
  readonly installsK3s: boolean;
  readonly hosts: readonly (string | undefined)[];
  readonly build: boolean;
  readonly repository: string | undefined;
}): boolean {
  const [only, ...others] = lab.hosts;
  return (
    lab.installsK3s &&
    lab.build &&
    lab.repository === undefined &&
    others.length === 0 &&
    only !== undefined &&
    isLocalHost(only)
  );
}

/** A file path as the user wrote it in the stack: `~/` is their home, relative is the project's. */
export function resolveUserPath(value: string, home: string = os.homedir()): string {
  const expanded =
    value === "~" ? home : value.startsWith("~/") ? path.join(home, value.slice(2)) : value;
  return path.resolve(expanded);
}
