import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { checkScript } from "../components/ros/check-spec";
import { REPORT_PREFIX, acceptedReports, parseReport, reportsOf } from "../components/ros/delivery";
import {
  DeliveryLimits,
  deliveryPairs,
  deliveryTable,
  evaluateDelivery,
  sizeText,
} from "../components/ros/verdict";
import { FakeApi, fakeApiForSuite, serviceAccountDir } from "./helpers/apiserver";
import { run } from "./helpers/run";

const NO_LIMITS: DeliveryLimits = { maxLossPercent: 0, maxLatencyMs: 0, largeMessageBytes: 0 };
const line = (listener: string, pairs: Record<string, (number | null)[]>, large = 0) =>
  `${REPORT_PREFIX} ${JSON.stringify({ listener, run: "r", job: "u", rmw: "rmw_fastrtps_cpp", distro: "jazzy", large, pairs })}`;
const clean = (large = 0) => [1, 400, 400, 50, 0.8, 1.6, large > 0 ? 3 : 0, large > 0 ? 90 : null];
const reports = (...lines: string[]) =>
  reportsOf(Object.fromEntries(lines.map((l, i) => [String(i), l])));

describe("delivery: reports and the verdict", () => {
  it("pairs every node with every node, itself included", () => {
    assert.deepEqual(
      deliveryPairs(["a", "b"]).map((p) => `${p.talker}->${p.listener}`),
      ["a->a", "b->a", "a->b", "b->b"],
    );
  });

  it("parses the probe's report lines and ignores everything else, the old format too", () => {
    const r = reports(
      line("a", { a: clean(), b: [1, 190, 200, 23.8, 41, 48, 0, null] }),
      "ROSFLEET_DELIVERY listener=b heard=a run=r job=u",
      "ROSFLEET_DELIVERY {not json",
      `${REPORT_PREFIX} {"listener":"c","pairs":{}}`,
    );
    assert.deepEqual([...r.keys()], ["a"]);
    assert.deepEqual(
      parseReport(line("a", { b: [1, 190, 200, 23.8, 41, 48, 0, null] }))?.pairs.get("b"),
      {
        heard: true,
        got: 190,
        span: 200,
        ratePerSecond: 23.8,
        rttP50Ms: 41,
        rttP99Ms: 48,
        largeGot: 0,
      },
    );
    assert.deepEqual([...acceptedReports(r, (x) => x.job === "other").keys()], []);
  });

  it("passes with every figure in the table, and says how many pairs crossed nodes", () => {
    const v = evaluateDelivery(
      ["a", "b"],
      reports(line("a", { a: clean(), b: clean() }), line("b", { a: clean(), b: clean() })),
      "discovery-server",
      NO_LIMITS,
    );
    assert.equal(v.ok, true);
    assert.equal(
      v.message.split("\n")[0],
      "ROS 2 messages delivered in all 4 pairs (2 across nodes, 2 within one) with ros.discovery = discovery-server",
    );
    assert.deepEqual(deliveryTable(v.rows, NO_LIMITS), [
      "talker -> listener  received  loss  rtt p50  rtt p99  rate  verdict",
      "a -> a              yes       0 %   0.8 ms   1.6 ms   50/s  ok",
      "b -> a              yes       0 %   0.8 ms   1.6 ms   50/s  ok",
      "a -> b              yes       0 %   0.8 ms   1.6 ms   50/s  ok",
      "b -> b              yes       0 %   0.8 ms   1.6 ms   50/s  ok",
    ]);
  });

  it("fails a pair over each limit, naming the figure and the limit; 0 turns a limit off", () => {
    const lossy = [1, 180, 200, 22.5, 41.5, 62.25, 1, 0.1];
    const r = reports(
      line("a", { a: clean(1 << 20), b: lossy }, 1 << 20),
      line("b", { a: clean(1 << 20), b: clean(1 << 20) }, 1 << 20),
    );
    const limits = { maxLossPercent: 5, maxLatencyMs: 50, largeMessageBytes: 1 << 20 };
    const v = evaluateDelivery(["a", "b"], r, "discovery-server", limits);
    assert.equal(v.ok, false);
    assert.deepEqual(v.rows.find((x) => x.talker === "b" && x.listener === "a")?.problems, [
      "b -> a: 10 % of messages lost (limit 5 %)",
      "b -> a: round trip p99 62.25 ms (limit 50 ms)",
      "b -> a: 1 of 3 messages of 1 MiB arrived within the check",
    ]);
    assert.match(
      v.message,
      /^ROS 2 delivery check failed with ros.discovery = discovery-server: 1 of 4 node pairs failed:/,
    );
    // The same figures under looser limits pass.
    assert.equal(
      evaluateDelivery(["a", "b"], r, "discovery-server", {
        ...limits,
        maxLossPercent: 10,
        maxLatencyMs: 0,
        largeMessageBytes: 0,
      }).ok,
      true,
    );
  });

  it("names a listener that reported nothing, and a pair that was never heard", () => {
    const v = evaluateDelivery(
      ["a", "b"],
      reports(line("a", { a: clean() })),
      "multicast",
      NO_LIMITS,
    );
    assert.deepEqual(v.message.split("\n").slice(0, 5), [
      "ROS 2 delivery check failed with ros.discovery = multicast: 3 of 4 node pairs failed:",
      "  - no ROS 2 message from b reached a",
      "  - no ROS 2 message from a reached b",
      "  - no ROS 2 message from b reached b",
      "  (the check on b reported nothing; its log: kubectl -n rosfleet logs $(kubectl -n rosfleet get pods -l app.kubernetes.io/name=delivery-check --field-selector spec.nodeName=b -o name))",
    ]);
  });

  it("writes sizes as a person does", () => {
    assert.deepEqual([1 << 20, 64 << 10, 1000].map(sizeText), ["1 MiB", "64 KiB", "1000 B"]);
  });
});

interface SimReport {
  pairs: Record<string, (number | null)[]>;
  endedAt: number | null;
}
/** Runs probe.py's Beacon and Listener over test/fixtures/probe-sim.py's simulated network. */
function simulate(scenario: object): {
  reports: Record<string, SimReport>;
  beaconsEndedAt: number;
  beaconsFinished: string[];
} {
  const r = spawnSync(
    "python3",
    [
      path.join(__dirname, "fixtures", "probe-sim.py"),
      path.join(__dirname, "..", "components", "ros", "probe.py"),
    ],
    { input: JSON.stringify(scenario), encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as ReturnType<typeof simulate>;
}
const both = (a: string, b: string, l: object) => [
  { from: a, to: b, ...l },
  { from: b, to: a, ...l },
];

describe("delivery: the probe's measuring (probe.py over a simulated network)", function () {
  this.timeout(60_000);
  const nodes = ["laptop", "robot", "vm"];
  const wifi = { loss: 0.05, delayMs: 20, mbit: 2 };
  const sim = simulate({
    nodes,
    timeout: 60,
    largeBytes: 1 << 20,
    seed: 7,
    links: [...both("robot", "laptop", wifi), ...both("robot", "vm", wifi)],
  });
  const fig = (talker: string, listener: string) => sim.reports[listener].pairs[talker];
  const loss = (f: (number | null)[]) => 100 * (1 - Number(f[1]) / Number(f[2]));

  it("measures every pair, a node with itself included", () => {
    for (const l of nodes)
      assert.deepEqual(Object.keys(sim.reports[l].pairs).sort(), [...nodes].sort());
  });

  it("gives the robot's pairs the injected loss, within a few points, and the others none", () => {
    for (const other of ["laptop", "vm"]) {
      for (const f of [fig("robot", other), fig(other, "robot")]) {
        assert.ok(Math.abs(loss(f) - 5) <= 3, `loss ${loss(f)} %`);
        assert.ok(Number(f[2]) >= 300, "a window of hundreds of heartbeats");
      }
      assert.equal(loss(fig(other, other)), 0);
    }
    assert.equal(loss(fig("laptop", "vm")), 0);
  });

  it("shows the robot's delay in its round trips, on the listener's own clock", () => {
    const p50 = (t: string, l: string) => Number(fig(t, l)[4]);
    assert.ok(
      p50("robot", "laptop") >= 40 && p50("robot", "laptop") < 50,
      String(p50("robot", "laptop")),
    );
    assert.ok(p50("vm", "laptop") < 10, String(p50("vm", "laptop")));
  });

  it("gets the large messages through at the link's rate, and everyone ends", () => {
    assert.equal(fig("robot", "laptop")[6], 3);
    const slow = Number(fig("robot", "laptop")[7]);
    assert.ok(slow > 0.15 && slow < 0.25, `2 Mbit/s is 0.24 MiB/s at most: ${slow}`);
    assert.ok(Number(fig("vm", "laptop")[7]) > 10 * slow);
    assert.deepEqual(sim.beaconsFinished.sort(), [...nodes].sort());
    for (const l of nodes) assert.ok(Number(sim.reports[l].endedAt) < 40);
  });

  it("bounds a pair it never hears by the timeout, and the beacons by theirs", () => {
    const cut = simulate({
      nodes: ["a", "b"],
      timeout: 20,
      largeBytes: 0,
      links: both("a", "b", { loss: 1, delayMs: 1, mbit: 100 }),
    });
    assert.equal(cut.reports["a"].pairs["b"][0], 0);
    assert.equal(cut.reports["a"].pairs["a"][0], 1);
    const ended = Number(cut.reports["a"].endedAt);
    assert.ok(ended >= 20 && ended < 24, String(ended));
    assert.ok(cut.beaconsEndedAt < 20 + 30 + 1);
  });
});

describe("delivery: the check script (bash and python3, the probe stood in for, a TLS API)", () => {
  // The probe needs rclpy (ROS): here a stand-in prints the report line the real one would.
  const fakeApi = fakeApiForSuite();
  let api: FakeApi;
  beforeEach(() => (api = fakeApi()));
  const report = line("laptop", { laptop: clean(), vm1: clean() });

  async function check(probe: string) {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "rosfleet-check-"));
    return run("bash", ["-c", checkScript(probe)], {
      PATH: process.env["PATH"] ?? "",
      NODE_NAME: "laptop",
      ROSFLEET_CHECK_RUN: "r",
      ROSFLEET_JOB_UID: "u",
      HOME: home,
      KUBERNETES_SERVICE_HOST: "127.0.0.1",
      KUBERNETES_SERVICE_PORT: String(api.port),
      ROSFLEET_SA_DIR: serviceAccountDir(api, "sa-token-for-tests"),
    });
  }

  it("writes the probe's report to its node's key of the reports ConfigMap, as its ServiceAccount", async () => {
    const r = await check(
      `import sys\nassert sys.argv[1:] == ["listener"]\nprint("rclpy says hi")\nprint(${JSON.stringify(report)})`,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${report}\n`);
    // First: did this node report in this run already? (No: the ConfigMap has no such key.)
    assert.deepEqual(
      api.requests.map((q) => [q.method, q.url]),
      [
        ["GET", "/api/v1/namespaces/rosfleet/configmaps/rosfleet-delivery"],
        ["PATCH", "/api/v1/namespaces/rosfleet/configmaps/rosfleet-delivery"],
      ],
    );
    const req = api.requests[1];
    assert.equal(req.method, "PATCH");
    assert.equal(req.url, "/api/v1/namespaces/rosfleet/configmaps/rosfleet-delivery");
    assert.equal(req.headers["authorization"], "Bearer sa-token-for-tests");
    const body = JSON.parse(req.body) as { data: Record<string, string> };
    assert.deepEqual(body, { data: { laptop: report } });
    assert.deepEqual(
      [...(reportsOf(body.data).get("laptop")?.pairs.keys() ?? [])],
      ["laptop", "vm1"],
    );
  });

  it("says so and writes nothing when the probe printed no report, and still exits 0", async () => {
    const r = await check(`import sys\nsys.exit("no rclpy here")`);
    assert.equal(r.status, 0);
    assert.match(r.stderr, /no rclpy here/);
    assert.match(r.stderr, /the probe printed no report/);
    assert.deepEqual(
      api.requests.map((q) => q.method),
      ["GET"],
    );
  });

  it("leaves at once, measuring and writing nothing, on a node that reported in this run and Job", async () => {
    const probe = `import sys\nsys.exit("the probe ran")`;
    // This node's report of this run and Job is there: a second pod of the Job (placed here
    // once the first ended, as it was meant for a node that could take none) leaves.
    api.body = (req) => (req.method === "GET" ? { data: { laptop: report } } : undefined);
    const again = await check(probe);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /laptop already reported in this check/);
    assert.doesNotMatch(again.stderr, /the probe ran/);
    assert.deepEqual(
      api.requests.map((q) => q.method),
      ["GET"],
    );
    // A report of another run, or of another Job of this run, is no reason to leave.
    for (const stale of [
      report.replace('"run":"r"', '"run":"old"'),
      report.replace('"job":"u"', '"job":"other"'),
    ]) {
      api.requests.length = 0;
      api.body = (req) => (req.method === "GET" ? { data: { laptop: stale } } : undefined);
      const r = await check(probe);
      assert.match(r.stderr, /the probe ran/);
    }
    // Nor an API that does not answer the read: it measures.
    api.requests.length = 0;
    api.body = undefined;
    api.status = (req) => (req.method === "GET" ? 500 : 200);
    assert.match((await check(probe)).stderr, /the probe ran/);
  });

  it("says why when it may not write the report (a denial is not retried)", async () => {
    api.status = () => 403;
    const r = await check(`print(${JSON.stringify(report)})`);
    assert.equal(r.status, 0);
    // The read denied too: it measures, and the one write is not retried.
    assert.deepEqual(
      api.requests.map((q) => q.method),
      ["GET", "PATCH"],
    );
    assert.match(r.stderr, /could not write the report to configmap\/rosfleet-delivery: HTTP 403/);
  });
});
