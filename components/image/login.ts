// The registry login, tried before the build: a wrong registryPassword otherwise fails `up` only
// after the whole multi-platform build, in the provider's words ("401 Unauthorized" deep in a
// push error). The registry API's own handshake (distribution spec, "token" auth): GET /v2/,
// and on a 401 answer the login it asks for — Basic on /v2/ itself, or a Bearer token from the
// realm it names, for the repository's push scope.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, LabSettings } from "../config";
import { imageRegistry, parseImageReference } from "../common/image-reference";

/** A fetch like the global one (a parameter so tests can stand in a registry of their own). */
export type Fetch = (
  url: string,
  init?: { headers?: Record<string, string>; signal?: AbortSignal },
) => Promise<Response>;

/** A registry that takes the connection but never answers must not hold `up`. */
const ANSWER_WITHIN_MS = 15_000;

export interface LoginArgs {
  /** host[:port] of image.repository. */
  readonly registry: string;
  /** The repository's path in it (the token scope). */
  readonly path: string;
  readonly username: string;
  readonly password: string;
  /** The stack says this registry speaks plain HTTP (see `speaksPlainHttp`). */
  readonly plainHttp?: boolean;
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/;

/**
 * Whether a registry may be asked over plain HTTP: only one on this machine's loopback, or one
 * the stack declares as HTTP (an `http://` endpoint in `k3s.registries`). Anything else is asked
 * over HTTPS alone: a failed TLS handshake (a captive portal, an interception) must not turn
 * into the password sent in clear.
 */
export function speaksPlainHttp(
  registries:
    | { readonly mirrors: Readonly<Record<string, { readonly endpoint: readonly string[] }>> }
    | undefined,
): (registry: string) => boolean {
  const declared = new Set(
    Object.values(registries?.mirrors ?? {}).flatMap((m) =>
      m.endpoint.filter((e) => e.startsWith("http://")).map((e) => new URL(e).host),
    ),
  );
  return (registry) => LOOPBACK.test(registry) || declared.has(registry);
}

/** `WWW-Authenticate: Bearer realm="…",service="…"` → its parameters. */
export function challenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(" ");
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.slice(space + 1).matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
  return { scheme, params };
}

/** Docker Hub's API lives at registry-1.docker.io. */
const apiHost = (registry: string): string =>
  registry === "docker.io" || registry === "index.docker.io" ? "registry-1.docker.io" : registry;

/** The registry API's base URL and the headers that authorize a request to it. */
export interface Session {
  readonly base: string;
  readonly headers: Record<string, string>;
  /** What the token grants on the repository, when the registry says (its JWT `access`). */
  readonly granted?: readonly string[];
}

/**
 * The actions a registry token grants on repository `path`, from its JWT claims as the
 * distribution token spec writes them (`access: [{type, name, actions}]`: Docker Hub, Harbor,
 * the reference token servers) — a token server grants what the login may, not what was asked.
 * Undefined when the token says nothing (not a JWT, no `access` claim): opaque tokens.
 */
export function grantedActions(token: string, path: string): string[] | undefined {
  const [, payload] = token.split(".");
  if (payload === undefined || token.split(".").length !== 3) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  const access = (claims as { access?: unknown } | null)?.access;
  if (!Array.isArray(access)) return undefined;
  return access
    .filter(
      (a): a is { actions: unknown[] } =>
        typeof a === "object" &&
        a !== null &&
        (a as { type?: unknown }).type === "repository" &&
        (a as { name?: unknown }).name === path &&
        Array.isArray((a as { actions?: unknown }).actions),
    )
    .flatMap((a) => a.actions.filter((x): x is string => typeof x === "string"));
}

/** One request, its body read; undefined when there is no answer. */
async function ask(
  fetchImpl: Fetch,
  url: string,
  headers?: Record<string, string>,
): Promise<Response | undefined> {
  try {
    const r = await fetchImpl(url, { headers, signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
    await r.arrayBuffer();
    return r;
  } catch {
    return undefined;
  }
}

/**
 * The registry's handshake for `scope` (`pull` or `pull,push` on `path`), with the login when one
 * is given: a session, "refused" (the login, or anonymous access, is not taken), or undefined when
 * the registry cannot be asked here (unreachable, or no /v2/ API). Over HTTPS; then over plain
 * HTTP only when `plainHttp` (the stack declares the registry as HTTP: `speaksPlainHttp`).
 */
export async function openSession(
  registry: string,
  path: string,
  scope: "pull" | "pull,push",
  login: { readonly username: string; readonly password: string } | undefined,
  fetchImpl: Fetch = fetch,
  plainHttp = false,
): Promise<Session | "refused" | undefined> {
  const basic =
    login === undefined
      ? undefined
      : `Basic ${Buffer.from(`${login.username}:${login.password}`, "utf8").toString("base64")}`;
  const auth: Record<string, string> = basic === undefined ? {} : { Authorization: basic };
  for (const scheme of plainHttp ? ["https", "http"] : ["https"]) {
    const base = `${scheme}://${apiHost(registry)}/v2/`;
    const first = await ask(fetchImpl, base);
    if (first === undefined) continue;
    if (first.status !== 401) return first.ok ? { base, headers: {} } : undefined;
    const { scheme: kind, params } = challenge(first.headers.get("www-authenticate") ?? "");
    if (kind === "basic") {
      const answer = await ask(fetchImpl, base, auth);
      if (answer === undefined) return undefined;
      if (answer.status === 401 || answer.status === 403) return "refused";
      return answer.ok ? { base, headers: auth } : undefined;
    }
    if (kind !== "bearer" || params.realm === undefined) return undefined;
    const query = new URLSearchParams({
      ...(params.service === undefined ? {} : { service: params.service }),
      scope: `repository:${path}:${scope}`,
    });
    try {
      const r = await fetchImpl(`${params.realm}?${query}`, {
        headers: auth,
        signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
      });
      if (r.status === 401 || r.status === 403) return "refused";
      if (!r.ok) return undefined;
      const body = (await r.json()) as { token?: string; access_token?: string };
      const token = body.token ?? body.access_token;
      if (token === undefined) return undefined;
      const granted = grantedActions(token, path);
      return {
        base,
        headers: { Authorization: `Bearer ${token}` },
        ...(granted === undefined ? {} : { granted }),
      };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Whether the registry takes the login: "refused" (the problem to report), "read-only" (taken,
 * but its token grants no push on the repository: a pull-only token), "accepted", or "unknown"
 * when the registry cannot be asked here: then the build says what it finds.
 */
export async function tryLogin(
  args: LoginArgs,
  fetchImpl: Fetch = fetch,
): Promise<"accepted" | "read-only" | "refused" | "unknown"> {
  const session = await openSession(
    args.registry,
    args.path,
    "pull,push",
    args,
    fetchImpl,
    args.plainHttp ?? false,
  );
  if (session === undefined) return "unknown";
  if (session === "refused") return "refused";
  return session.granted !== undefined && !session.granted.includes("push")
    ? "read-only"
    : "accepted";
}

/** The one message for a refused login: the registry, and the keys to fix. */
export const refusedLogin = (args: Omit<LoginArgs, "password">): string =>
  `registry ${args.registry} (image.repository) refused the login of registryUsername ${JSON.stringify(args.username)}: ` +
  "set the right registryUsername and registryPassword (pulumi config set registryUsername …; " +
  "pulumi config set --secret registryPassword …)";

/** The message for a login the registry takes but lets only pull: the build could not push. */
export const readOnlyLogin = (args: Omit<LoginArgs, "password">): string =>
  `registry ${args.registry} (image.repository) takes the login of registryUsername ${JSON.stringify(args.username)} but grants it no push on ${args.path} (a read-only token): ` +
  "the built image could not be pushed. Use a token or account with write access to that repository " +
  "(pulumi config set --secret registryPassword …), or image.build false to deploy it as published";

/** The value of a (secret) config output, for this check only: it is never exported. */
export const valueOf = (secret: pulumi.Input<string>): Promise<string> =>
  new Promise((resolve) => pulumi.output(secret).apply((v) => resolve(v)));

/**
 * Throws the one config error when the registry refuses the stack's login: before anything is
 * declared, instead of after a whole multi-platform build. Nothing to check without a build or
 * without a login.
 */
export async function checkRegistryLogin(
  image: LabSettings["image"],
  username: string | undefined,
  password: pulumi.Input<string> | undefined,
  fetchImpl: Fetch = fetch,
  plainHttp: (registry: string) => boolean = () => false,
): Promise<void> {
  if (
    !image.build ||
    image.importInto !== undefined ||
    username === undefined ||
    password === undefined
  )
    return;
  const login = {
    registry: imageRegistry(image.repository),
    path: parseImageReference(image.repository)?.path ?? image.repository,
    username,
  };
  const answer = await tryLogin(
    { ...login, password: await valueOf(password), plainHttp: plainHttp(login.registry) },
    fetchImpl,
  );
  if (answer === "refused")
    throw new ConfigError([{ path: "registryPassword", message: refusedLogin(login) }]);
  if (answer === "read-only")
    throw new ConfigError([{ path: "registryPassword", message: readOnlyLogin(login) }]);
}
