// The dashboard's login token, with a lifetime (`dashboard.tokenHours`): minted by the API
// server's TokenRequest (the `serviceaccounts/<name>/token` subresource) on `up`, kept in the
// state as a secret, and minted anew by the first `up` after it has expired (or nearly: within a
// tenth of its lifetime) — `preview` shows that replacement. A legacy token Secret never expires,
// and the kubernetes provider has no resource for a TokenRequest: this is a dynamic resource.
//
// The provider's functions are serialized into the state and run in Pulumi's dynamic-provider
// host (components/common/dynamic.ts): they use only the pure helpers below and coreApi.
import * as pulumi from "@pulumi/pulumi";
import { coreApi } from "../common/dynamic";
import type { ClusterAccess } from "../common/kubeconfig";

/** What the resource is asked for. */
export interface DashboardTokenArgs {
  /** The API server and credentials to ask with (secret). */
  readonly access: pulumi.Input<ClusterAccess>;
  readonly namespace: pulumi.Input<string>;
  readonly serviceAccount: pulumi.Input<string>;
  /** The ServiceAccount's UID: deleting the account (revoking its tokens) mints a new one. */
  readonly serviceAccountUid: pulumi.Input<string>;
  /** `dashboard.tokenHours`. */
  readonly hours: pulumi.Input<number>;
}

/** What the state keeps besides the inputs. */
interface TokenOuts {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly serviceAccountUid: string;
  readonly hours: number;
  readonly token: string;
  /** When the token expires, ms since the epoch (the API server's expirationTimestamp). */
  readonly expiresAt: number;
}

/** A token is renewed once less than a tenth of its lifetime is left (or it has expired). */
export function renewalDue(expiresAt: number, hours: number, now: number): boolean {
  return now >= expiresAt - (hours * 3_600_000) / 10;
}

/** The inputs whose change replaces the token: it was minted for them. */
export function replacedBy(olds: Record<string, unknown>, news: Record<string, unknown>): string[] {
  return ["namespace", "serviceAccount", "serviceAccountUid", "hours"].filter(
    (k) => olds[k] !== news[k],
  );
}

const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult<TokenOuts>> {
    const api = coreApi(inputs["access"] as ClusterAccess);
    const namespace = String(inputs["namespace"]);
    const serviceAccount = String(inputs["serviceAccount"]);
    const hours = Number(inputs["hours"]);
    const answer = await api.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: { spec: { audiences: [], expirationSeconds: hours * 3600 } },
    });
    const token = answer.status?.token;
    const expires = answer.status?.expirationTimestamp;
    if (token === undefined || expires === undefined)
      throw new Error(`the API server minted no token for ${namespace}/${serviceAccount}`);
    const expiresAt = new Date(expires).getTime();
    return {
      id: `${namespace}/${serviceAccount}@${expiresAt}`,
      outs: {
        namespace,
        serviceAccount,
        serviceAccountUid: String(inputs["serviceAccountUid"]),
        hours,
        token,
        expiresAt,
      },
    };
  },

  async diff(
    _id: string,
    olds: TokenOuts,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.DiffResult> {
    const replaces = replacedBy({ ...olds }, news);
    if (renewalDue(olds.expiresAt, olds.hours, Date.now())) replaces.push("expiresAt");
    // A new kubeconfig to ask with changes nothing about a token already minted.
    return { changes: replaces.length > 0, replaces };
  },

  // A token cannot be revoked alone (deleting its ServiceAccount revokes them all); it expires.
  async delete(): Promise<void> {},
};

/** A token of `serviceAccount` that expires after `hours` (give it a DynamicHost). */
export class DashboardToken extends pulumi.dynamic.Resource {
  /** The bearer token (secret). */
  declare public readonly token: pulumi.Output<string>;
  /** When it expires, ms since the epoch. */
  declare public readonly expiresAt: pulumi.Output<number>;

  constructor(name: string, args: DashboardTokenArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      { ...args, access: pulumi.secret(args.access), token: undefined, expiresAt: undefined },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["token", "access"] }),
      "dashboard",
      "Token",
    );
  }
}
