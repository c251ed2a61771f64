// Makes, ahead of the tiers that use them, what they would otherwise make on first use: the lab
// tier's machine images (Docker images from debootstrapped roots, amd64 and arm64) and the
// image and cluster tiers' base roots, apt repository and pod sandbox (test/image/images.sh).
// Both are cached the way the tiers cache them, so running this is never required; .ci/run runs
// it while the toolchain compiles in the background, which on a cold machine overlaps work bound
// by the network, the disk and emulation with work bound by Go's compiler.
// Usage (as root): npx ts-node --transpile-only test/prepare.ts
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureEmulation } from "./helpers/emulation";
import { ensureDockerd, hostImage, LAB_MACHINES, missingPrerequisite } from "./e2e/lab";
import { materials } from "./image/world";
import { stopProcess } from "./engine/controlplane";

async function main(): Promise<void> {
  const missing = missingPrerequisite(LAB_MACHINES);
  if (missing !== undefined) {
    console.log(`prepare: nothing prepared: ${missing}`);
    return;
  }
  ensureEmulation();
  const started = Date.now();
  const seconds = () => Math.round((Date.now() - started) / 1000);
  materials();
  console.log(`prepare: image tier roots ready after ${seconds()} s`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-prepare-"));
  const dockerd = await ensureDockerd(path.join(dir, "dockerd.log"));
  try {
    for (const arch of new Set(LAB_MACHINES.map((m) => m.arch)))
      console.log(`prepare: ${hostImage(arch, (line) => console.log(`prepare: ${line}`))}`);
  } finally {
    if (dockerd !== undefined) await stopProcess(dockerd, 15000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`prepare: lab machine images ready after ${seconds()} s`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
