// `npm run bench:cluster` (root): on the cluster tier's lab (three real nodes, the ROS 2 test
// image), for each discovery mode from an empty stack: the wall time of `pulumi up` until the
// delivery check's verdict (pass, or the failure that names the pairs), then `destroy`. Prints
// one table; docs/reference.md's "ROS 2 across nodes" quotes it. Not a test, not in CI.
import { ClusterLab, Mode } from "../test/cluster/lab";

const MODES: Mode[] = ["discovery-server", "host-network", "multicast"];
const BIN = process.env.ROSFLEET_TOOLCHAIN_BIN ?? "";

async function main(): Promise<void> {
  const lab = new ClusterLab(BIN);
  const rows: string[] = [];
  const seen: string[] = [];
  try {
    await lab.start();
    const stack = lab.pulumi?.stack;
    if (stack === undefined) throw new Error("no stack");
    for (const mode of MODES) {
      await stack.setAllConfig(lab.config(mode, 60));
      const start = Date.now();
      const verdict = await stack.up({ color: "never" }).then(
        (r) => {
          seen.push(`${mode}: delivery = ${JSON.stringify(r.outputs.delivery?.value)}`);
          return "passed";
        },
        (e: unknown) => {
          const text = String(e);
          // The engine's diagnostics, at the end, carry the whole message once.
          const at = text.lastIndexOf("ROS 2 delivery check failed");
          if (at < 0) return `error: ${text.slice(0, 200)}`;
          const message = text.slice(
            at,
            text.indexOf("\n", text.indexOf("The next pulumi up", at)),
          );
          seen.push(`${mode}: ${message.replace(/\n {4}/g, "\n")}`);
          return `failed: ${(/(\d+ of \d+) node pairs/.exec(message) ?? ["", "?"])[1]} pairs`;
        },
      );
      const seconds = (Date.now() - start) / 1000;
      rows.push(`| ${mode.padEnd(16)} | ${seconds.toFixed(0).padStart(7)} | ${verdict} |`);
      await stack.destroy();
    }
  } finally {
    await lab.stop();
  }
  console.log(
    `cluster bench, ${new Date().toISOString().slice(0, 10)}, 3 nodes, delivery check timeout 60 s`,
  );
  console.log("| mode             | up to verdict, s | verdict |");
  console.log("| ---------------- | ---------------: | ------- |");
  for (const row of rows) console.log(row);
  for (const line of seen) console.log(`\n${line}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
