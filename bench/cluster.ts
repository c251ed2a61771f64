// `npm run bench:cluster` (root): on the cluster tier's lab (three real nodes, the ROS 2 test
// image), for each discovery mode from an empty stack: the wall time of `pulumi up` until the
// delivery check's verdict (pass, or the failure that names the pairs), then `destroy`. Prints
// one table; README's "ROS 2 across nodes" quotes it. Not a test, not in CI.
import { ClusterLab, Mode } from "../test/cluster/lab";

const MODES: Mode[] = ["discovery-server", "host-network", "multicast"];
const BIN = process.env.ROSFLEET_TOOLCHAIN_BIN ?? "";

async function main(): Promise<void> {
  const lab = new ClusterLab(BIN);
  const rows: string[] = [];
  try {
    await lab.start();
    const stack = lab.pulumi?.stack;
    if (stack === undefined) throw new Error("no stack");
    for (const mode of MODES) {
      await stack.setAllConfig(lab.config(mode, 60));
      const start = Date.now();
      const verdict = await stack.up({ color: "never" }).then(
        () => "passed",
        (e: unknown) =>
          /delivery check failed/.test(String(e))
            ? `failed: ${(/(\d+ of \d+) node pairs/.exec(String(e)) ?? ["", "?"])[1]} pairs`
            : `error: ${String(e).slice(0, 200)}`,
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
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
