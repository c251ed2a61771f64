// A one-context kubeconfig file, as tests of rosfleet's own API requests write them.
import * as fs from "node:fs";
import { stringify } from "yaml";

/** Writes `file` (0600): one cluster `lab`, one user, their context current. */
export function writeKubeconfig(
  file: string,
  cluster: Readonly<Record<string, unknown>>,
  user: Readonly<Record<string, unknown>>,
  userName = "admin",
): string {
  fs.writeFileSync(
    file,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "lab", cluster }],
      users: [{ name: userName, user }],
      contexts: [{ name: "lab", context: { cluster: "lab", user: userName } }],
      "current-context": "lab",
    }),
    { mode: 0o600 },
  );
  return file;
}
