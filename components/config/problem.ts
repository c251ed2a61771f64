// The one shape every config rule reports in: a leaf module, so that the rule modules (checks,
// raw, mode-checks, stage-checks) depend on it and not on each other in a circle.

/** One problem: the key path it concerns and what is wrong there. */
export interface Problem {
  readonly path: string;
  readonly message: string;
}
