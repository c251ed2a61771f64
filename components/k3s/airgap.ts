// Air-gapped installs (`k3s.airgap`): which files of the laptop each machine gets, where, and
// the install parameters that point at them — a pure plan — plus the copies themselves.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { Airgap, Machine } from "../config";
import { Target } from "../machine/step";

/** One laptop file a machine needs; `remote` is a name in the SSH user's home. */
export interface AirgapFile {
  readonly role: "installer" | "binary" | "images";
  readonly local: string;
  readonly remote: string;
}

/** What one machine installs k3s from. */
export interface AirgapPlan {
  /** Files to copy (none for a local machine: it reads them where they are). */
  readonly copies: readonly AirgapFile[];
  /** install.sh parameters: paths on the machine ("" for none) and the files' digest. */
  readonly params: {
    readonly AIRGAP_INSTALLER: string;
    readonly AIRGAP_BINARY: string;
    readonly AIRGAP_IMAGES: string;
    readonly AIRGAP_SHA256: string;
  };
}

/** A digest of files' contents: a new binary or installer is a visible change of the install. */
export function filesDigest(files: readonly string[]): string {
  const hash = createHash("sha256");
  for (const file of files) hash.update(fs.readFileSync(file));
  return hash.digest("hex");
}

/** The plan for `machine`, or undefined when k3s is downloaded. */
export function airgapPlan(
  airgap: Airgap | undefined,
  machine: Machine,
  digest: (files: readonly string[]) => string = filesDigest,
): AirgapPlan | undefined {
  if (airgap === undefined) return undefined;
  const binary = airgap.binaries[machine.arch];
  if (binary === undefined) throw new Error(`k3s.airgap.binaries.${machine.arch} is validated`);
  const images = airgap.images[machine.arch];
  const files: AirgapFile[] = [
    { role: "installer", local: airgap.installScript, remote: "rosfleet-k3s-install.sh" },
    { role: "binary", local: binary, remote: "rosfleet-k3s" },
    ...(images === undefined
      ? []
      : [{ role: "images" as const, local: images, remote: `rosfleet-${path.basename(images)}` }]),
  ];
  // Relative names are resolved in the SSH user's home by install.sh.
  const where = (role: AirgapFile["role"]) => {
    const file = files.find((f) => f.role === role);
    if (file === undefined) return "";
    return machine.local ? path.resolve(file.local) : file.remote;
  };
  return {
    copies: machine.local ? [] : files,
    params: {
      AIRGAP_INSTALLER: where("installer"),
      AIRGAP_BINARY: where("binary"),
      AIRGAP_IMAGES: where("images"),
      AIRGAP_SHA256: digest(files.map((f) => f.local)),
    },
  };
}

/** Copies a plan's files to a remote machine (`<name>-airgap-<role>`). */
export function copyAirgapFiles(
  name: string,
  target: Target,
  plan: AirgapPlan | undefined,
  opts: pulumi.CustomResourceOptions,
): command.remote.CopyToRemote[] {
  const connection = target.connection;
  if (plan === undefined || connection === undefined) return [];
  return plan.copies.map(
    (file) =>
      new command.remote.CopyToRemote(
        `${name}-airgap-${file.role}`,
        { connection, source: new pulumi.asset.FileAsset(file.local), remotePath: file.remote },
        opts,
      ),
  );
}
