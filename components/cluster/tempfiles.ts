// The kubernetes provider copies the kubeconfig it is given to a temp file for Helm
// (`os.CreateTemp("", "kubeconfig")` in pulumi-kubernetes' provider.go, at every Configure) and
// never removes it: each command left one file per provider, 0600 but with the cluster's client
// key, in $TMPDIR — `preview` and `up`, and also `refresh` and `destroy`, which run no program.
// rosfleet uses none of the provider's Helm resources, so it removes the copies this command's
// providers made, and only those: named as Go names them, of this user, written since this
// `pulumi` command started, naming the lab's server — and, for the k3s rosfleet installs, with
// the stack's own context as current (`rosfleet-<stack>`, k3s/render.ts), which a kubeconfig
// another program was given has not. A copy an earlier command left, or one another program or
// the user made, is not touched.
// Who removes them: the program when its command ends (`preview`, `up`), and the
// ProviderCopiesSweeper dynamic resource when `refresh` reads it and `destroy` deletes it —
// last, since every kubernetes provider depends on it: after the providers have written theirs.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

/** Go's CreateTemp("", "kubeconfig") names: the prefix and a random number. */
const COPY_NAME = /^kubeconfig\d+$/;
/** A kubeconfig written by client-go is at most a few KiB; anything large is not one. */
const MAX_SIZE = 1 << 20;
/** A file's times and a process's start are read at a coarser grain than each other. */
const SLACK_MS = 2000;

/** What identifies a copy of rosfleet's kubeconfig: its server, and its context where it has one. */
export interface CopyMatch {
  readonly servers: readonly string[];
  /** The kubeconfig's current-context as rosfleet names it; undefined: any. */
  readonly context?: string;
}

// Not `escape`: a global of that name would stand in for it in the serialized provider.
const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The provider's copies in `dir` of a kubeconfig matching `match`, owned by this user, written
 * since `since` (ms since the epoch). */
export function providerCopies(dir: string, match: CopyMatch, since: number): string[] {
  if (match.servers.length === 0) return [];
  const server = new RegExp(
    `^\\s*server:\\s*(?:${match.servers.map(escapeRegExp).join("|")})\\s*$`,
    "m",
  );
  const context =
    match.context === undefined
      ? undefined
      : new RegExp(`^current-context:\\s*"?${escapeRegExp(match.context)}"?\\s*$`, "m");
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => COPY_NAME.test(name))
    .map((name) => path.join(dir, name))
    .filter((file) => {
      try {
        const stat = fs.lstatSync(file);
        if (!stat.isFile() || stat.size > MAX_SIZE) return false;
        if (process.getuid !== undefined && stat.uid !== process.getuid()) return false;
        if (stat.mtimeMs < since - SLACK_MS) return false;
        const text = fs.readFileSync(file, "utf8");
        return server.test(text) && (context === undefined || context.test(text));
      } catch {
        return false;
      }
    });
}

/** Removes `files`; returns how many it removed (one gone already was another sweep's). */
function remove(files: readonly string[]): number {
  let removed = 0;
  for (const file of files) {
    try {
      fs.unlinkSync(file);
      removed += 1;
    } catch {
      // Gone already.
    }
  }
  return removed;
}

/** A process as /proc/<pid>/stat has it: its name, parent, and start (ticks since boot). */
function procStat(pid: number): { name: string; ppid: number; start: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The name is in parentheses and may hold spaces or parentheses itself.
    const open = text.indexOf("(");
    const close = text.lastIndexOf(")");
    const fields = text.slice(close + 2).split(" ");
    return {
      name: text.slice(open + 1, close),
      ppid: Number(fields[1]),
      start: Number(fields[19]),
    };
  } catch {
    return undefined;
  }
}

/** Linux's USER_HZ, the unit of a process's start time in /proc (100 on every architecture
 * a lab machine has). */
const TICKS_PER_SECOND = 100;

function bootTime(): number | undefined {
  try {
    const line = /^btime (\d+)$/m.exec(fs.readFileSync("/proc/stat", "utf8"));
    return line === null ? undefined : Number(line[1]) * 1000;
  } catch {
    return undefined;
  }
}

/** The `pulumi` process this one runs under: an ancestor (a program the CLI runs, the
 * dynamic-provider host), else a child (an Automation API inline program, which runs the CLI). */
export function pulumiCommand(): number | undefined {
  let pid = process.ppid;
  for (let depth = 0; depth < 8 && pid > 1; depth += 1) {
    const stat = procStat(pid);
    if (stat === undefined) break;
    if (stat.name === "pulumi") return pid;
    pid = stat.ppid;
  }
  let names: string[];
  try {
    names = fs.readdirSync("/proc");
  } catch {
    return undefined;
  }
  const children = names
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((p) => {
      const stat = procStat(p);
      return stat?.name === "pulumi" && stat.ppid === process.pid;
    });
  return children.at(-1);
}

/** When the `pulumi` command that runs this process started (ms since the epoch); this
 * process's own start where that cannot be read (no /proc). */
export function commandStart(pid: number | undefined = pulumiCommand()): number {
  const own = Date.now() - process.uptime() * 1000;
  const boot = bootTime();
  const stat = pid === undefined ? undefined : procStat(pid);
  if (boot === undefined || stat === undefined) return own;
  return boot + (stat.start * 1000) / TICKS_PER_SECOND;
}

/** The copies of the lab's kubeconfig this command's providers made. */
export class ProviderCopies {
  private readonly since: number;
  private readonly command: number | undefined;

  constructor(
    private readonly dir: string,
    private readonly match: CopyMatch,
  ) {
    this.command = pulumiCommand();
    this.since = commandStart(this.command);
  }

  /** Removes every copy this command's providers made until now; returns how many. Synchronous:
   * it runs at exit. */
  sweep(): number {
    return remove(providerCopies(this.dir, this.match, this.since));
  }

  /** An Automation API inline program outlives its `pulumi` command (a child of its process):
   * then the copies are removed when that command ends, not when the process does. */
  sweepWhenCommandEnds(): void {
    const command = this.command;
    if (command === undefined || procStat(command)?.ppid !== process.pid) return;
    const timer = setInterval(() => {
      try {
        process.kill(command, 0);
      } catch {
        clearInterval(timer);
        this.sweep();
      }
    }, 250);
    timer.unref();
  }
}

/** One exit handler for the process, whichever runs of the program (tests run many) asked. */
const AT_EXIT = Symbol.for("rosfleet.providerCopies.atExit");
type ExitRegistry = { [AT_EXIT]?: Set<ProviderCopies> };

/** Sweeps `copies` when this command ends (after the providers have written theirs). */
export function sweepAtExit(copies: ProviderCopies): void {
  const registry = globalThis as ExitRegistry;
  if (registry[AT_EXIT] === undefined) {
    const all = new Set<ProviderCopies>();
    registry[AT_EXIT] = all;
    process.once("exit", () => all.forEach((c) => c.sweep()));
  }
  registry[AT_EXIT].add(copies);
  copies.sweepWhenCommandEnds();
}

/** What the ProviderCopiesSweeper keeps: which copies are the lab's. */
type SweepInputs = { readonly servers: string[]; readonly context?: string };

/** Removes this command's copies in the temp dir of the provider (this process's: both are the
 * CLI's children, with its environment). */
function sweepNow(inputs: SweepInputs): number {
  return remove(
    providerCopies(
      os.tmpdir(),
      { servers: inputs.servers, context: inputs.context },
      commandStart(pulumiCommand()),
    ),
  );
}

const sweeper: pulumi.dynamic.ResourceProvider = {
  create(inputs: SweepInputs): Promise<pulumi.dynamic.CreateResult> {
    return Promise.resolve({ id: "provider-copies", outs: inputs });
  },
  diff(_id: string, olds: SweepInputs, news: SweepInputs): Promise<pulumi.dynamic.DiffResult> {
    const changes =
      JSON.stringify([olds.servers, olds.context]) !== JSON.stringify([news.servers, news.context]);
    return Promise.resolve({ changes });
  },
  update(_id: string, _olds: SweepInputs, news: SweepInputs): Promise<pulumi.dynamic.UpdateResult> {
    return Promise.resolve({ outs: news });
  },
  // `refresh` (also --preview-only) reads every resource: the providers it configured have
  // written their copies by then.
  read(id: string, props: SweepInputs): Promise<pulumi.dynamic.ReadResult> {
    sweepNow(props);
    return Promise.resolve({ id, props });
  },
  // `destroy` deletes it after every kubernetes provider (they depend on it).
  delete(_id: string, props: SweepInputs): Promise<void> {
    sweepNow(props);
    return Promise.resolve();
  },
};

/** Removes, in `refresh` and `destroy`, the copies that command's kubernetes providers made
 * (`pulumi-nodejs:dynamic/cluster:ProviderCopies`). The lab's kubernetes provider depends on it. */
export class ProviderCopiesSweeper extends pulumi.dynamic.Resource {
  constructor(name: string, match: CopyMatch, opts?: pulumi.CustomResourceOptions) {
    super(
      sweeper,
      name,
      { ...match, servers: [...match.servers] },
      opts,
      "cluster",
      "ProviderCopies",
    );
  }
}
