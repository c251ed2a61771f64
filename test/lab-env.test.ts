// The `rosEnv` output: a lab machine's settings to join the graph, per discovery mode.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { labRosEnv } from "../components/ros/lab-env";
import { fastddsProfiles, serverAddresses } from "../components/ros/render";
import { fakeClusterIp, runProgram } from "./helpers/program";
import { readStackConfig } from "./helpers/stack";

const SERVERS = "10.43.0.10:11811;10.43.0.11:11811";

describe("rosEnv: how a lab machine's ROS 2 joins the lab's graph", () => {
  it("discovery-server: both servers, the CLI's super client, UDP only, and the profile for Humble", () => {
    const r = labRosEnv("discovery-server", 7, SERVERS);
    assert.deepEqual(r.env, {
      ROS_DOMAIN_ID: "7",
      ROS_DISCOVERY_SERVER: SERVERS,
      ROS_SUPER_CLIENT: "TRUE",
      FASTDDS_BUILTIN_TRANSPORTS: "UDPv4",
    });
    // What the lab's own toolbox loads: the same servers.
    assert.equal(
      r.profile,
      fastddsProfiles("discovery-server", serverAddresses(SERVERS))["super-client.xml"],
    );
    assert.match(r.where, /node of the cluster/);
  });

  it("gives a shell line that sets exactly those values (run by bash)", () => {
    const r = labRosEnv("discovery-server", 0, SERVERS);
    const out = execFileSync(
      "bash",
      ["-c", `${r.shell}; env | grep -E '^(ROS_|FASTDDS_)' | sort`],
      { encoding: "utf8", env: { PATH: process.env["PATH"] ?? "" } },
    );
    assert.deepEqual(
      out.trim().split("\n"),
      Object.entries(r.env)
        .map(([k, v]) => `${k}=${v}`)
        .sort(),
    );
  });

  it("host-network: UDP only; multus and multicast: the domain alone, and where that works", () => {
    const host = labRosEnv("host-network", 3, undefined);
    assert.deepEqual(host.env, { ROS_DOMAIN_ID: "3", FASTDDS_BUILTIN_TRANSPORTS: "UDPv4" });
    assert.match(host.profile ?? "", /<type>UDPv4<\/type>/);
    for (const mode of ["multus", "multicast"] as const) {
      const r = labRosEnv(mode, 3, undefined);
      assert.deepEqual(r.env, { ROS_DOMAIN_ID: "3" });
      assert.equal(r.profile, undefined);
    }
    assert.match(labRosEnv("multicast", 0, undefined).where, /^nowhere outside the pods/);
  });

  it("is a stack output with the lab's own servers", async () => {
    const run = await runProgram(readStackConfig("clover"));
    const r = run.outputs["rosEnv"] as ReturnType<typeof labRosEnv>;
    assert.equal(
      r.env["ROS_DISCOVERY_SERVER"],
      `${fakeClusterIp("ros-discovery")}:11811;${fakeClusterIp("ros-discovery-1")}:11811`,
    );
    assert.ok(!run.secretOutputs.includes("rosEnv"));
  });
});
