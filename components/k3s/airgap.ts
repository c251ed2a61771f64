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

/** Read size for digests: an images tarball is GBs, and never wholly in memory. */
const CHUNK_BYTES = 1 << 20;

/** The sha256 of files' contents concatenated, read a chunk at a time. */
export function hashFiles(files: readonly string[]): string {
  const hash = createHash("sha256");
  const buffer = Buffer.alloc(CHUNK_BYTES);
  for (const file of files) {
    const fd = fs.openSync(file, "r");
    try {
      for (let n = fs.readSync(fd, buffer); n > 0; n = fs.readSync(fd, buffer)) {
        hash.update(buffer.subarray(0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return hash.digest("hex");
}

/**
 * Digests already computed in this run, by file list and each file's size and mtime: every
 * machine of an arch shares one list, and reading GBs of images once per Pi is minutes.
 */
const digestMemo = new Map<string, string>();

/** The key a digest is remembered under: a rewritten file is read again. */
function memoKey(files: readonly string[]): string {
  return JSON.stringify(
    files.map((file) => {
      const st = fs.statSync(file);
      return [path.resolve(file), st.size, st.mtimeMs];
    }),
  );
}

/**
 * A digest of files' contents (sha256 of them concatenated): a new binary or installer is a
 * visible change of the install. Computed once per file list per run.
 */
export function filesDigest(
  files: readonly string[],
  hash: (files: readonly string[]) => string = hashFiles,
): string {
  const key = memoKey(files);
  let digest = digestMemo.get(key);
  if (digest === undefined) {
    digest = hash(files);
    digestMemo.set(key, digest);
  }
  return digest;
}

/** The name a laptop file gets in the SSH user's home: rosfleet-<basename>, shell-safe. */
export function remoteName(local: string): string {
  return `rosfleet-${path.basename(local).replace(/[^A-Za-z0-9._+-]/g, "_")}`;
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
      : [{ role: "images" as const, local: images, remote: remoteName(images) }]),
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
