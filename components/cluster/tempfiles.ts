// The kubernetes provider copies the kubeconfig it is given to a temp file for Helm
// (`os.CreateTemp("", "kubeconfig")` in pulumi-kubernetes' provider.go) and never removes it:
// each run left one file per provider, 0600 but with the cluster's client key, in $TMPDIR.
// rosfleet uses none of the provider's Helm resources, so it removes the copies of its own
// cluster's kubeconfig: those left by earlier runs as soon as the server is known, and this
// run's when the program exits.
import * as fs from "node:fs";
import * as path from "node:path";

/** Go's CreateTemp("", "kubeconfig") names: the prefix and a random number. */
const COPY_NAME = /^kubeconfig\d+$/;
/** A kubeconfig written by client-go is at most a few KiB; anything large is not one. */
const MAX_SIZE = 1 << 20;

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The provider's copies in `dir` of a kubeconfig for one of `servers`, owned by this user. */
export function providerCopies(dir: string, servers: readonly string[]): string[] {
  if (servers.length === 0) return [];
  const server = new RegExp(`^\\s*server:\\s*(?:${servers.map(escape).join("|")})\\s*$`, "m");
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
        return server.test(fs.readFileSync(file, "utf8"));
      } catch {
        return false;
      }
    });
}

/** Removes the copies for the servers it is told of, now and when asked again (at exit). */
export class ProviderCopies {
  private readonly servers = new Set<string>();

  constructor(private readonly dir: string) {}

  /** Adds `server` and removes what earlier runs left for it. */
  watch(server: string): void {
    this.servers.add(server);
    this.sweep();
  }

  /** Removes every copy there is now; returns how many. Synchronous: it runs at exit. */
  sweep(): number {
    let removed = 0;
    for (const file of providerCopies(this.dir, [...this.servers])) {
      try {
        fs.unlinkSync(file);
        removed += 1;
      } catch {
        // Gone already (another run's sweep).
      }
    }
    return removed;
  }
}

/** One exit handler for the process, whichever runs of the program (tests run many) asked. */
const AT_EXIT = Symbol.for("rosfleet.providerCopies.atExit");
type ExitRegistry = { [AT_EXIT]?: Set<ProviderCopies> };

/** Sweeps `copies` once more when the process exits (after the providers have written theirs). */
export function sweepAtExit(copies: ProviderCopies): void {
  const registry = globalThis as ExitRegistry;
  if (registry[AT_EXIT] === undefined) {
    const all = new Set<ProviderCopies>();
    registry[AT_EXIT] = all;
    process.once("exit", () => all.forEach((c) => c.sweep()));
  }
  registry[AT_EXIT].add(copies);
}
