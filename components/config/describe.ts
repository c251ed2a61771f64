// Zod's issues as the config stage's problems: each at the path `pulumi config set --path` takes,
// in words that say what the key expects (and, for a required key, what to put there).
import { closest, distance } from "fastest-levenshtein";
import type { z } from "zod";
import type { Problem } from "./problem";
import { keyPath } from "./raw";
import { labSchema } from "./schema";

/** The page that lists every key of the contract. */
const KEYS_PAGE = "docs/reference.md lists every key";

/** Zod 4's definition of a schema: enough to walk wrappers, lists and maps down to an object. */
interface Def {
  readonly type: string;
  readonly shape?: Readonly<Record<string, { readonly _zod: { readonly def: Def } }>>;
  readonly innerType?: { readonly _zod: { readonly def: Def } };
  readonly element?: { readonly _zod: { readonly def: Def } };
  readonly valueType?: { readonly _zod: { readonly def: Def } };
  readonly out?: { readonly _zod: { readonly def: Def } };
}

/** The keys the object at `path` of the stack config takes (empty when it is no object). */
function keysAt(path: readonly PropertyKey[]): string[] {
  let def: Def | undefined = (labSchema as unknown as { _zod: { def: Def } })._zod.def;
  const unwrap = (d: Def | undefined): Def | undefined => {
    while (d !== undefined && d.type !== "object" && d.type !== "array" && d.type !== "record") {
      const inner: Def | undefined = (d.innerType ?? d.out)?._zod.def;
      if (inner === undefined) return d;
      d = inner;
    }
    return d;
  };
  for (const p of path) {
    def = unwrap(def);
    if (def === undefined) return [];
    if (def.type === "object") def = def.shape?.[String(p)]?._zod.def;
    else if (def.type === "array") def = def.element?._zod.def;
    else if (def.type === "record") def = def.valueType?._zod.def;
    else return [];
  }
  def = unwrap(def);
  return def?.type === "object" && def.shape !== undefined ? Object.keys(def.shape) : [];
}

/** The known key `key` most likely meant: same letters in another case, or a close spelling. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined;
  const sameLetters = known.find((k) => k.toLowerCase() === key.toLowerCase());
  if (sameLetters !== undefined) return sameLetters;
  const best = closest(key, [...known]);
  return distance(key, best) <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

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
    case "unrecognized_keys": {
      const known = keysAt(issue.path);
      return issue.keys.map((key) => {
        const meant = suggestKey(key, known);
        return {
          path: keyPath(path, key),
          message:
            meant === undefined
              ? `unknown key (${KEYS_PAGE})`
              : `unknown key: did you mean ${meant}? (${KEYS_PAGE})`,
        };
      });
    }
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
