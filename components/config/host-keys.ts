// Trust on first use, as `ssh` does, for every machine reached over SSH: without a pinned key the
// join step would send the cluster token, and the registries step the registry password, to
// whatever answers at the machine's address (a re-used DHCP lease, a spoofed host). The first run
// that reaches a machine pins the key it offers; the pin is kept in the stack's state (the steps'
// `connection.hostKey`, read back through last-update.ts), never in the stack file; every step
// connects with it, and a machine that answers with another key stops the run here, before any
// step, with the one command that accepts a re-flashed machine's new key. `machines[].hostKey`
// in the stack still wins over the pin.
import {
  HostKey,
  HostKeyScanner,
  KeyScan,
  describeKey,
  keyLine,
  parseHostKey,
  preferredKey,
  sameKey,
} from "../common/ssh-host-keys";
import { shellQuote } from "../shell";
import type { Problem } from "./problem";
import type { Machine } from "./settings";

/** A host key the stack's state holds for a machine: where it was pinned, and the key line. */
export interface RecordedHostKey {
  readonly address: string;
  readonly key: string;
}

export interface PinnedMachines {
  /** The machines with `hostKey` set to the key their steps connect with. */
  readonly machines: readonly Machine[];
  /** Refusals (a changed key; an unknown key that cannot be read at `up`): nothing may run. */
  readonly problems: readonly Problem[];
  /** What the run goes on without (a machine that did not answer where a pin exists). */
  readonly warnings: readonly string[];
}

export const sshAddress = (host: string, port: number): string =>
  `${host.includes(":") ? `[${host}]` : host}:${port}`;

/** The stack config command that pins `key` for machine `index`. */
const acceptCommand = (index: number, key: HostKey): string =>
  `pulumi config set --path ${shellQuote(`machines[${index}].hostKey`)} ${shellQuote(keyLine(key))}`;

/** The recorded key of `m`: under its name, else one pinned at its address under another. */
function recordedFor(
  m: Machine,
  recorded: Readonly<Record<string, RecordedHostKey>>,
): { readonly key: HostKey; readonly from: string } | undefined {
  const address = sshAddress(m.host, m.port).toLowerCase();
  const entry =
    recorded[m.name] ?? Object.values(recorded).find((r) => r.address.toLowerCase() === address);
  const key = entry === undefined ? undefined : parseHostKey(entry.key);
  return key === undefined ? undefined : { key, from: "pinned on first use" };
}

/** The key `m` connects with, judged against what it offers now (`scan`). Pure. */
export function judgeHostKey(
  m: Machine,
  index: number,
  pinned: { readonly key: HostKey; readonly from: string } | undefined,
  scan: KeyScan,
  dryRun: boolean,
): { key?: HostKey; problem?: Problem; warning?: string } {
  const address = sshAddress(m.host, m.port);
  const path = `machines[${index}].hostKey`;
  if (pinned !== undefined) {
    if (!scan.ok)
      return {
        key: pinned.key,
        warning: `${m.name}: could not read its SSH host key at ${address} (${scan.reason}); its steps connect only if it still answers with the pinned ${describeKey(pinned.key)}`,
      };
    if (scan.keys.some((k) => sameKey(k, pinned.key))) return { key: pinned.key };
    const now = preferredKey(scan.keys) ?? scan.keys[0];
    const offered = scan.keys.map(describeKey).join(", ");
    return {
      problem: {
        path,
        message: `${m.name} at ${address} answers with other SSH host keys than the one ${pinned.from} (${describeKey(pinned.key)}; it now offers ${offered}): nothing was sent to it and no step ran. If ${m.name} was re-flashed or its SSH keys were made anew, accept its new key: ${acceptCommand(index, now ?? pinned.key)}; if not, another machine answers at that address (a re-used DHCP lease, a spoofed host): find out which before you run pulumi up again`,
      },
    };
  }
  if (scan.ok) return { key: preferredKey(scan.keys) ?? scan.keys[0] };
  if (dryRun)
    return {
      warning: `${m.name}: could not read its SSH host key at ${address} (${scan.reason}); pulumi up pins it on first use and sends nothing to ${m.name} before it has`,
    };
  return {
    problem: {
      path,
      message: `cannot read ${m.name}'s SSH host key at ${address} (${scan.reason}): rosfleet pins each machine's key on first use and sends it nothing before. Check that ${m.name} is on and reachable over SSH, or pin its key yourself with the line that cut -d' ' -f1,2 /etc/ssh/ssh_host_ecdsa_key.pub prints on it: pulumi config set --path ${shellQuote(path)} '<that line>'`,
    },
  };
}

/**
 * The machines of the lab with the host key each connects with: the stack's `hostKey`, else the
 * state's pin, else (first use) the key the machine offers now. Machines are asked in parallel;
 * `scan` is ssh-keyscan (common/ssh-host-keys.ts).
 */
export async function pinHostKeys(
  machines: readonly Machine[],
  recorded: Readonly<Record<string, RecordedHostKey>>,
  scan: HostKeyScanner,
  dryRun: boolean,
): Promise<PinnedMachines> {
  const judged = await Promise.all(
    machines.map(async (m, index) => {
      if (m.local) return { machine: m };
      const configured = m.hostKey === undefined ? undefined : parseHostKey(m.hostKey);
      // A configured key of a type rosfleet does not read (ssh-dss, a security key's) is used
      // as it is: the provider's SSH client checks it.
      if (m.hostKey !== undefined && configured === undefined) return { machine: m };
      const pinned =
        configured === undefined
          ? recordedFor(m, recorded)
          : { key: configured, from: `machines[${index}].hostKey pins` };
      const verdict = judgeHostKey(m, index, pinned, await scan(m.host, m.port), dryRun);
      return {
        machine: verdict.key === undefined ? m : { ...m, hostKey: keyLine(verdict.key) },
        ...verdict,
      };
    }),
  );
  return {
    machines: judged.map((j) => j.machine),
    problems: judged.flatMap((j) => (j.problem === undefined ? [] : [j.problem])),
    warnings: judged.flatMap((j) => (j.warning === undefined ? [] : [j.warning])),
  };
}
