// Stack configuration as Pulumi hands it to a program: `rosfleet:<key>` → text, with structured
// values as JSON. Lets tests use the real example stack files and plain objects alike.
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** Short key → the text Pulumi would pass for it. */
export function configValues(config: Readonly<Record<string, unknown>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) => [
      key,
      typeof value === "string" ? value : JSON.stringify(value),
    ]),
  );
}

/** The `rosfleet:` keys of `Pulumi.<stack>.yaml`, without the namespace, as parsed YAML. */
export function readStackConfig(stack: string): Record<string, unknown> {
  const file = path.join(REPO_ROOT, `Pulumi.${stack}.yaml`);
  const doc = parse(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
  return Object.fromEntries(
    Object.entries(doc.config ?? {})
      .filter(([key]) => key.startsWith("rosfleet:"))
      .map(([key, value]) => [key.slice("rosfleet:".length), value]),
  );
}

/** Every example stack shipped with the project (`Pulumi.<stack>.yaml`). */
export function exampleStacks(): string[] {
  return fs
    .readdirSync(REPO_ROOT)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}
