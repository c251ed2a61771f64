// Renders what a machine runs. Scripts are files next to the component that sends them; their
// parameters are prepended as shell assignments (not `environment`, which needs sshd AcceptEnv),
// so the text sent is exactly the text the script tests run. Secrets never go in here: they go
// by stdin (the command line is visible in `ps`).
import * as fs from "node:fs";

/** Parameters of a script: shell variable name → value (non-secret). */
export type ScriptParams = Readonly<Record<string, string | number | boolean>>;

/** Quotes a value for POSIX shells: the result is one word with exactly this content. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

const scriptCache = new Map<string, string>();

/**
 * The body of a script file without comment-only and blank lines: they document the file,
 * and would only lengthen the command line and the diffs of every step that sends it.
 */
export function readScript(file: string): string {
  const cached = scriptCache.get(file);
  if (cached !== undefined) return cached;
  const body = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => !/^\s*(#.*)?$/.test(line))
    .join("\n");
  scriptCache.set(file, body);
  return body;
}

/**
 * The script text with its parameters assigned first, then the function files it uses
 * (`libs`). Variable names must be shell names.
 */
export function renderScript(
  file: string,
  params: ScriptParams,
  libs: readonly string[] = [],
): string {
  const assignments = Object.entries(params).map(([name, value]) => {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(name)) throw new Error(`bad script parameter name ${name}`);
    return `${name}=${shellQuote(String(value))}`;
  });
  return ["set -euo pipefail", ...assignments, ...libs.map(readScript), readScript(file)].join(
    "\n",
  );
}

/**
 * The command line that runs `script` with bash on the target, as root unless `asUser`.
 * `sudo -n` never prompts: preflight has already checked that sudo needs no password.
 */
export function commandLine(script: string, opts: { asRoot: boolean; user?: string }): string {
  const bash = `bash -c ${shellQuote(script)}`;
  return opts.asRoot && opts.user !== "root" ? `sudo -n ${bash}` : bash;
}
