// Renders what a machine runs. Scripts are files next to the component that sends them; their
// parameters are prepended as shell assignments (not `environment`, which needs sshd AcceptEnv),
// so the text sent is exactly the text the script tests run.
//
// A script never travels on the command line: the command line is what `ps` shows on the
// machine, what `pgrep -f` matches, and what @pulumi/command prints in front of every failure.
// Scripts go on stdin to `bash -s`, bundled with their undo (the provider feeds a step's stdin
// to its delete command too), and the command line only says which of them to run. Secrets
// never go in a script: steps that carry one run a short fixed program with the secret as stdin.
import * as fs from "node:fs";

/** Parameters of a script: shell variable name → value (non-secret). */
export type ScriptParams = Readonly<Record<string, string | number | boolean>>;

/** Quotes a value for POSIX shells: the result is one word with exactly this content. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A word as the shell reads it: left bare when that is unambiguous, quoted otherwise. */
export function shellWord(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : shellQuote(value);
}

const scriptCache = new Map<string, string>();

/**
 * The body of a script file without comment-only and blank lines: they document the file,
 * and would only lengthen the stdin and the diffs of every step that sends it.
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

/** What a step does: its script, and the script that undoes it. */
export interface StepScripts {
  readonly create: string;
  readonly delete?: string;
}
export type Action = keyof StepScripts;

/**
 * The stdin of a step: each action's script as a bash function, then a call of the one the
 * command line names. Bash reads a script from a pipe line by line and runs the call only
 * once it has read it, so nothing of the script is left for the commands it runs to read.
 */
export function scriptBundle(scripts: StepScripts): string {
  const fn = (action: Action, script: string) => `rosfleet_${action}() {\n${script}\n}`;
  return [
    fn("create", scripts.create),
    ...(scripts.delete === undefined ? [] : [fn("delete", scripts.delete)]),
    `"rosfleet_$1" </dev/null`,
    "",
  ].join("\n");
}

/** Who runs a command: the SSH user, or root (through `sudo -n` unless the user is root). */
export interface RunAs {
  readonly asRoot: boolean;
  readonly user?: string;
}

/**
 * The command line of a program (argv), as root unless not `asRoot`. `sudo -n` never prompts:
 * preflight has already checked that sudo needs no password.
 */
export function programLine(argv: readonly string[], as: RunAs): string {
  const line = argv.map(shellWord).join(" ");
  return as.asRoot && as.user !== "root" ? `sudo -n ${line}` : line;
}

/** The command line that runs `action` of the script bundle a step sends on stdin. */
export function bundleLine(action: Action, as: RunAs): string {
  return programLine(["bash", "-s", "--", action], as);
}
