// The delivery check's gate and wait: the pure reading of a Job's pods (check-progress.ts), and
// both dynamic providers' create against a TLS API stand-in, through the real client library.
import assert from "node:assert/strict";
import { listenersProgress, PodView, STALLED } from "../components/ros/check-progress";
import { gateProvider, waitProvider } from "../components/ros/check-wait";
import { cannotSchedule } from "../components/common/nodes";
import { fakeApiForSuite, kubeconfigFor } from "./helpers/apiserver";

const NOW = Date.parse("2026-12-04T12:00:00Z");
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();
const ready = { status: { conditions: [{ type: "Ready", status: "True" }] } };
const lost = {
  status: {
    conditions: [
      {
        type: "Ready",
        status: "Unknown",
        reason: "NodeStatusUnknown",
        message: "Kubelet stopped posting node status.",
      },
    ],
  },
};
const pod = (node: string | undefined, phase: string, extra: PodView["status"] = {}): PodView => ({
  metadata: { creationTimestamp: ago(60) },
  spec: node === undefined ? {} : { nodeName: node },
  status: { phase, ...extra },
});
const unschedulable = (age: number): PodView => ({
  metadata: { creationTimestamp: ago(age) },
  spec: {},
  status: {
    phase: "Pending",
    conditions: [
      {
        type: "PodScheduled",
        status: "False",
        reason: "Unschedulable",
        message: "0/3 nodes are available: 1 node(s) had untolerated taint {lab: full}.",
      },
    ],
  },
});
const failedJob = {
  status: {
    conditions: [
      {
        type: "Failed",
        status: "True",
        reason: "DeadlineExceeded",
        message: "Job was active longer than specified deadline",
      },
    ],
  },
};
const NODES = ["laptop", "pi", "vm"];

describe("delivery check: where its listeners are", () => {
  it("is done when the Job completed or failed, naming a pod that failed", () => {
    const done = { status: { conditions: [{ type: "Complete", status: "True" }] } };
    assert.deepEqual(
      listenersProgress(
        done,
        NODES.map((n) => pod(n, "Succeeded")),
        NODES,
        new Set(),
        NOW,
      ),
      { done: true, outcome: "complete", notes: {} },
    );
    // Every node's pod succeeded: complete, before the Job controller has said so.
    assert.deepEqual(
      listenersProgress(
        {},
        NODES.map((n) => pod(n, "Succeeded")),
        NODES,
        new Set(),
        NOW,
      ),
      { done: true, outcome: "complete", notes: {} },
    );
    const oom = pod("pi", "Failed", {
      containerStatuses: [{ state: { terminated: { reason: "OOMKilled", exitCode: 137 } } }],
    });
    assert.deepEqual(
      listenersProgress(failedJob, [pod("laptop", "Succeeded"), oom], NODES, new Set(), NOW),
      {
        done: true,
        outcome: "failed (DeadlineExceeded: Job was active longer than specified deadline)",
        notes: { pi: "its check pod failed (OOMKilled, exit 137)" },
      },
    );
  });

  it("stops waiting once the pods that ran ended and the rest cannot be scheduled", () => {
    const ran = [pod("laptop", "Succeeded"), pod("vm", "Succeeded")];
    // Just created: the scheduler may still place it (its reason is said already).
    const young = listenersProgress({}, [...ran, unschedulable(5)], NODES, new Set(), NOW);
    assert.equal(young.done, false);
    assert.match(young.notes["pi"] ?? "", /^no check pod could be scheduled there: 0\/3 nodes/);
    const old = listenersProgress({}, [...ran, unschedulable(30)], NODES, new Set(), NOW);
    assert.deepEqual(old, {
      done: true,
      outcome: STALLED,
      notes: {
        pi: "no check pod could be scheduled there: 0/3 nodes are available: 1 node(s) had untolerated taint {lab: full}.",
      },
    });
    // A pod still measuring keeps the wait going.
    const running = [pod("laptop", "Running"), pod("vm", "Succeeded"), unschedulable(30)];
    assert.equal(listenersProgress({}, running, NODES, new Set(), NOW).done, false);
    // Not every pod created yet: not done.
    assert.equal(listenersProgress({}, ran, NODES, new Set(), NOW).done, false);
  });

  it("counts a pod on a node that stopped being Ready as one that will not finish", () => {
    const pods = [pod("laptop", "Succeeded"), pod("pi", "Running"), pod("vm", "Succeeded")];
    assert.equal(listenersProgress({}, pods, NODES, new Set(), NOW).done, false);
    assert.deepEqual(listenersProgress({}, pods, NODES, new Set(["pi"]), NOW), {
      done: true,
      outcome: STALLED,
      notes: { pi: "its node stopped being Ready while the check ran there" },
    });
  });

  it("says why a node takes no pod: not Ready, or cordoned outside the stack", () => {
    assert.equal(cannotSchedule("pi", ready), undefined);
    assert.equal(
      cannotSchedule("pi", lost),
      "not Ready (NodeStatusUnknown: Kubelet stopped posting node status.)",
    );
    assert.match(
      cannotSchedule("pi", { ...ready, spec: { unschedulable: true } }) ?? "",
      /^cordoned, though not cordon: true in the stack \(kubectl uncordon pi, or set cordon: true on it\)$/,
    );
  });
});

describe("delivery check: the gate and the wait against the API (TLS stand-in)", () => {
  const fakeApi = fakeApiForSuite();
  const access = () => ({ kubeconfig: { file: kubeconfigFor(fakeApi()) }, context: undefined });

  it("fails the gate at once naming every node that cannot take a pod, and how to fix it", async () => {
    const api = fakeApi();
    const nodes: Record<string, unknown> = {
      laptop: ready,
      pi: lost,
      vm: { ...ready, spec: { unschedulable: true } },
    };
    api.body = (req) => nodes[req.url.replace("/api/v1/nodes/", "")];
    const err = await gateProvider.create({ access: access(), nodes: NODES, run: "r1" }).then(
      () => assert.fail("the gate passed a lost node"),
      (e: unknown) => e as Error,
    );
    assert.match(err.message, /^these machines' nodes cannot run pods now/);
    assert.match(err.message, /\n {2}- pi: not Ready \(NodeStatusUnknown: Kubelet stopped posting/);
    assert.match(err.message, /\n {2}- vm: cordoned, though not cordon: true in the stack/);
    assert.doesNotMatch(err.message, /laptop/);
    assert.match(err.message, /set cordon: true on it/);
    assert.deepEqual(
      api.requests.map((r) => [r.method, r.url, r.headers["authorization"]]),
      NODES.map((n) => ["GET", `/api/v1/nodes/${n}`, "Bearer admin-token-for-tests"]),
    );
    // All Ready: it passes, and keeps the run key as its id; the same run changes nothing.
    api.body = () => ready;
    const ok = await gateProvider.create({ access: access(), nodes: NODES, run: "r1" });
    assert.equal(ok.id, "r1");
    const again = { access: access(), nodes: NODES, run: "r1" };
    assert.deepEqual(await gateProvider.diff?.("r1", ok.outs, again), {
      changes: false,
      replaces: [],
    });
    assert.deepEqual(await gateProvider.diff?.("r1", ok.outs, { ...again, run: "r2" }), {
      changes: true,
      replaces: ["run"],
    });
  });

  /** CheckWait's inputs as the program gives them, for Job u1 of run r1. */
  const waitInputs = () => ({
    access: access(),
    namespace: "rosfleet",
    job: "delivery-check",
    beacons: "rosfleet-beacon",
    reportsConfigMap: "rosfleet-delivery",
    jobUid: "u1",
    run: "r1",
    nodes: NODES,
    waitSeconds: 60,
  });

  it("returns the reports that did arrive when the listeners' Job failed, and why the others did not", async () => {
    const api = fakeApi();
    const report = "ROSFLEET_DELIVERY {}";
    api.body = (req) => {
      if (req.url === "/apis/batch/v1/namespaces/rosfleet/jobs/delivery-check")
        return { metadata: { name: "delivery-check", uid: "u1" }, ...failedJob };
      if (req.url.startsWith("/api/v1/namespaces/rosfleet/pods?"))
        return {
          items: req.url.includes("batch.kubernetes.io%2Fcontroller-uid%3Du1")
            ? [pod("laptop", "Succeeded"), pod("vm", "Succeeded"), unschedulable(400)]
            : [],
        };
      if (req.url === "/api/v1/namespaces/rosfleet/configmaps/rosfleet-delivery")
        return { data: { laptop: report, vm: report } };
      return ready;
    };
    const made = await waitProvider.create(waitInputs());
    assert.deepEqual(made.outs, {
      namespace: "rosfleet",
      run: "r1",
      jobUid: "u1",
      reports: { laptop: report, vm: report },
      outcome: "failed (DeadlineExceeded: Job was active longer than specified deadline)",
      notes: {
        pi: "no check pod could be scheduled there: 0/3 nodes are available: 1 node(s) had untolerated taint {lab: full}.",
      },
    });
    // The engine diffs the next inputs against these outputs: the same check changes nothing
    // (a second `up` leaves it), another Job or run replaces it.
    const next = { access: access(), namespace: "rosfleet", jobUid: "u1", run: "r1", nodes: NODES };
    assert.deepEqual(await waitProvider.diff?.("rosfleet/u1", made.outs, next), {
      changes: false,
      replaces: [],
    });
    assert.deepEqual(
      await waitProvider.diff?.("rosfleet/u1", made.outs, { ...next, jobUid: "u2", run: "r2" }),
      { changes: true, replaces: ["run", "jobUid"] },
    );
    // A Job of another uid (deleted, made anew) is not this check's: nothing to wait for.
    api.body = (req) =>
      req.url.includes("/jobs/") ? { metadata: { uid: "other" } } : { data: {}, items: [] };
    const gone = await waitProvider.create(waitInputs());
    assert.equal((gone.outs as { outcome: string }).outcome, "was deleted before it ended");
  });
});
