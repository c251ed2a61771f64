// `npm run bench:cluster` (root): on the cluster tier's lab (three real nodes, the ROS 2 test
// image), for each discovery mode from an empty stack: the wall time of `pulumi up` until the
// delivery check's verdict (pass, or the failure that names the pairs), how much of that the
// check itself took (its gate's start to its wait's end), the same for a second `up` with nothing
// changed, then `destroy`. Prints one table, and where the check's time went: each of its Jobs'
// pods, from created to their container's end (the cluster's own timestamps, whole seconds).
// docs/reference.md's "ROS 2 across nodes" quotes it. Not a test, not in CI.
import type { EngineEvent, Stack } from "@pulumi/pulumi/automation";
import { ClusterLab, Mode } from "../test/cluster/lab";

interface PodTimes {
  metadata: { creationTimestamp: string; labels?: Record<string, string> };
  spec: { nodeName?: string };
  status: {
    containerStatuses?: {
      state: { terminated?: { startedAt: string; finishedAt: string } };
    }[];
  };
}

/** "delivery-check on cluster-vm: started +3 s, ended +21 s" for each probe pod. */
async function probeTimes(lab: ClusterLab, since: number): Promise<string[]> {
  const list = await lab.cp?.api.get<{ items: PodTimes[] }>(
    "/api/v1/namespaces/rosfleet/pods?labelSelector=app.kubernetes.io%2Fname%20in%20(delivery-check%2Crosfleet-beacon)",
  );
  const at = (t: string) => `+${Math.round((Date.parse(t) - since) / 1000)} s`;
  return (list?.items ?? []).map((p) => {
    const done = p.status.containerStatuses?.[0]?.state.terminated;
    const app = p.metadata.labels?.["app.kubernetes.io/name"] ?? "?";
    const times =
      done === undefined
        ? "still running"
        : `started ${at(done.startedAt)}, ended ${at(done.finishedAt)}`;
    return `${app} on ${p.spec.nodeName ?? "?"}: created ${at(p.metadata.creationTimestamp)}, ${times}`;
  });
}

const MODES: Mode[] = ["discovery-server", "host-network", "multicast"];
const BIN = process.env.ROSFLEET_TOOLCHAIN_BIN ?? "";
const TIMEOUT_S = 60;

/** `pulumi up`, timed: seconds to its end, the check's own seconds (from the gate's start to
 * the wait's outputs, the engine's timestamps), and the verdict or the failure's message. */
async function timedUp(stack: Stack): Promise<{
  seconds: number;
  check: number | undefined;
  verdict: string;
  message: string;
}> {
  const at: Record<string, number> = {};
  const onEvent = (e: EngineEvent) => {
    const urn = e.resourcePreEvent?.metadata.urn ?? e.resOutputsEvent?.metadata.urn ?? "";
    const key = e.resourcePreEvent !== undefined ? "pre" : "out";
    if (urn.endsWith("::delivery-gate") && key === "pre") at["gate"] = e.timestamp;
    if (urn.endsWith("::delivery-wait") && key === "out") at["wait"] = e.timestamp;
  };
  const start = Date.now();
  const { verdict, message } = await stack.up({ color: "never", onEvent }).then(
    (r) => ({ verdict: "passed", message: JSON.stringify(r.outputs.delivery?.value?.table) }),
    (e: unknown) => {
      const text = String(e);
      // The engine's diagnostics, at the end, carry the whole message once.
      const from = text.lastIndexOf("ROS 2 delivery check failed");
      if (from < 0) return { verdict: `error: ${text.slice(0, 200)}`, message: text };
      const m = text.slice(from, text.indexOf("\n", text.indexOf("The next pulumi up", from)));
      const pairs = (/(\d+ of \d+) node pairs/.exec(m) ?? ["", "?"])[1];
      return { verdict: `failed: ${pairs} pairs`, message: m };
    },
  );
  const seconds = (Date.now() - start) / 1000;
  const check =
    at["gate"] !== undefined && at["wait"] !== undefined ? at["wait"] - at["gate"] : undefined;
  return { seconds, check, verdict, message };
}

async function main(): Promise<void> {
  const lab = new ClusterLab(BIN);
  const rows: string[] = [];
  const seen: string[] = [];
  try {
    await lab.start();
    const stack = lab.pulumi?.stack;
    if (stack === undefined) throw new Error("no stack");
    // Once, untimed: the image built and pushed, and pulled by every node. What follows is
    // measured with it there, as on a lab's every `up` after its first.
    await stack.setAllConfig(lab.config("discovery-server", TIMEOUT_S));
    await stack.up({ color: "never" });
    await stack.destroy();
    for (const mode of MODES) {
      await stack.setAllConfig(lab.config(mode, TIMEOUT_S));
      const first = await timedUp(stack);
      seen.push(
        `${mode}: ${first.message.replace(/\n {4}/g, "\n")}`,
        `${mode}, the check's pods from the start of up:\n  ${(await probeTimes(lab, Date.now() - first.seconds * 1000)).join("\n  ")}`,
      );
      // Nothing changed: a passing check is not run again; a failed one is.
      const again = await timedUp(stack);
      const cell = (v: number | undefined) => (v === undefined ? "-" : v.toFixed(0)).padStart(5);
      rows.push(
        `| ${mode.padEnd(16)} | ${cell(first.seconds)} | ${cell(first.check)} | ${cell(again.seconds)} | ${cell(again.check)} | ${first.verdict} |`,
      );
      await stack.destroy();
    }
  } finally {
    await lab.stop();
  }
  console.log(
    `cluster bench, ${new Date().toISOString().slice(0, 10)}, 3 nodes, delivery check timeout ${TIMEOUT_S} s, image already built and pulled`,
  );
  console.log(
    "| mode             | up, empty stack, s | of it the check, s | next up, nothing changed, s | of it the check, s | verdict |",
  );
  console.log("| ---------------- | ----: | ----: | ----: | ----: | ------- |");
  for (const row of rows) console.log(row);
  for (const line of seen) console.log(`\n${line}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
