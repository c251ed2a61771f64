// Zod's issues as the config stage's problems: each at the path `pulumi config set --path` takes,
// in words that say what the key expects (and, for a required key, what to put there).
import type { z } from "zod";
import type { Problem } from "./problem";
import { keyPath } from "./raw";

const REQUIRED_HINTS: Readonly<Record<string, string>> = {
  machines: "list every machine of the lab (README: Describing a lab)",
  "k3s.version": "a pinned k3s release tag such as v1.33.5+k3s1",
};

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (base, p) => (typeof p === "number" ? `${base}[${p}]` : keyPath(base, String(p))),
    "",
  );
}

const typeName = (expected: string): string =>
  expected === "array" ? "a list" : expected === "object" ? "a map" : expected;
const typeOf = (v: unknown): string =>
  Array.isArray(v) ? "a list" : v === null ? "null" : typeName(typeof v);

// Zod's own messages start "Invalid"; anything else was written in schema.ts for this key.
const isCustomMessage = (message: string): boolean => !/^Invalid/.test(message);

export function describeIssue(issue: z.core.$ZodIssue): Problem[] {
  const path = formatPath(issue.path);
  if (issue.code === "invalid_type" && issue.input === undefined) {
    const hint = REQUIRED_HINTS[path.replace(/\[\d+\]/g, "[]")];
    return [{ path, message: hint === undefined ? "required" : `required: ${hint}` }];
  }
  switch (issue.code) {
    case "invalid_key":
      // A bad map key: report its own issues at the key's path.
      return issue.issues.flatMap((inner) =>
        describeIssue({ ...inner, path: [...issue.path, ...inner.path] } as z.core.$ZodIssue),
      );
    case "unrecognized_keys":
      return issue.keys.map((key) => ({
        path: path === "" ? key : `${path}.${key}`,
        message: "unknown key (README: Describing a lab lists every key)",
      }));
    case "invalid_type":
      if (isCustomMessage(issue.message)) break;
      return [
        { path, message: `expected ${typeName(issue.expected)}, got ${typeOf(issue.input)}` },
      ];
    case "invalid_value":
      return [
        {
          path,
          message: `expected ${issue.values.map(String).join(" | ")}, got ${JSON.stringify(issue.input)}`,
        },
      ];
  }
  return [{ path, message: issue.message }];
}
