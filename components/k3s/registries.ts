// `k3s.registries` on a machine: k3s's own registries.yaml (mirrors, endpoints without TLS,
// private registries' credentials), written by the `<name>-registries` step before the install
// so that k3s starts with it, and kept by reinstalls and role changes (install.sh,
// uninstall.sh). Its credentials travel in the step's stdin, a secret; the install step shows
// the file with `[secret]` in their place, so `preview --diff` shows every change but those.
import * as pulumi from "@pulumi/pulumi";
import { stringify } from "yaml";
import { Registries } from "../config";
import { Step, Target, step } from "../machine/step";
import { registriesScript } from "./scripts";

/** The text of registries.yaml: k3s's keys as given, empty sections left out. */
export function renderRegistries(r: Registries): string {
  const doc: Record<string, unknown> = {};
  if (Object.keys(r.mirrors).length > 0) doc["mirrors"] = r.mirrors;
  if (Object.keys(r.configs).length > 0) doc["configs"] = r.configs;
  return stringify(doc);
}

/** Declares `<name>-registries` on `target`: writes the file (restarting k3s when it changed);
 * its undo removes it. */
export function registriesStep(
  name: string,
  target: Target,
  registries: pulumi.Output<Registries>,
  opts: pulumi.CustomResourceOptions,
): Step {
  const { machine } = target;
  return step(
    `${name}-registries`,
    target,
    {
      // A secret when `registries` holds credentials: the apply keeps it one.
      script: registries.apply((r) => registriesScript(machine, renderRegistries(r))),
      deleteScript: registriesScript(machine, ""),
      asRoot: true,
    },
    // A dead machine (`skipUninstall`) cannot run the undo either.
    pulumi.mergeOptions(opts, { retainOnDelete: machine.skipUninstall }),
  );
}
