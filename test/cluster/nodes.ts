// The cluster tier's machines: real Kubernetes nodes on this one host. Each node is a network
// namespace of its own with containerd (its own root, state and socket), a kubelet and
// kube-proxy from the toolchain, and a bridge CNI pod network (Debian's plugins, host-local
// IPAM, no masquerade). The nodes meet on a bridge in a hub namespace of its own (a bridge on
// the host would be subject to Docker's FORWARD DROP); the host joins it at HOST_IP, where the
// control plane listens. Each node routes the others' pod ranges to them: unicast crosses
// nodes, multicast does not (nothing routes it; like flannel's VXLAN), and within a node it
// does (one bridge). Host-network pods share their node's namespace, whose interface is on the
// hub bridge, so their multicast reaches the other nodes as on a lab's LAN.
//
// Everything made is undone by `stop()`, also after a failed start: containers, mounts,
// cgroups, namespaces, the host's routes, and the sysctls kubelet sets on the host.
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  ControlPlane,
  SERVICE_CIDR,
  issueCertificate,
  nodeIsReady,
  stopProcess,
  waitFor,
  writeKubeconfig,
} from "../engine/controlplane";

/** The hub network: the host at .1, nodes from .11. */
const HUB_NET = "10.201.0";
export const HOST_IP = `${HUB_NET}.1`;
/** Node i's pods: 10.202.<i+1>.0/24. */
const POD_NET = "10.202";
export const CLUSTER_CIDR = `${POD_NET}.0.0/16`;
const PREFIX = "rfc";
const HUB = `${PREFIX}-hub`;
const HOST_LINK = `${PREFIX}-host`;
const STATE = "/run/rosfleet-cluster";
/** cgroup v1 hierarchies kubelet needs its cgroup root in. */
const CGROUP_FS = "/sys/fs/cgroup";
/** Host sysctls kubelet sets (vm.overcommit_memory etc.): put back on stop. */
const KUBELET_SYSCTLS = ["vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"];
/** Host paths kubelet or the CNI plugins use whatever their flags: removed on stop when new. */
const HOST_PATHS = [
  "/var/lib/kubelet",
  "/var/log/containers",
  "/var/log/pods",
  "/var/lib/cni",
  "/run/containerd",
  "/opt/containerd",
];

export interface ClusterNode {
  readonly name: string;
  readonly ip: string;
  readonly podCidr: string;
  /** Its network namespace (`/run/netns/<netns>`). */
  readonly netns: string;
  /** Its containerd socket. */
  readonly socket: string;
}

const sh = (cmd: string, args: readonly string[]) =>
  execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const quiet = (cmd: string, args: readonly string[]) => spawnSync(cmd, args, { stdio: "ignore" });
const ip = (...args: string[]) => sh("ip", args);
const inNs = (netns: string, cmd: string, args: readonly string[]) =>
  sh("nsenter", [`--net=/run/netns/${netns}`, cmd, ...args]);

/** The first of (file, Debian package) pairs whose file is not there, as what to install. */
export function missingDebianFile(pairs: readonly [string, string][]): string | undefined {
  const absent = pairs.find(([file]) => !fs.existsSync(file));
  return absent === undefined
    ? undefined
    : `${absent[0]} is missing (apt-get install ${absent[1]})`;
}

/** What this host lacks for real nodes, or undefined. */
export function missingPrerequisite(bin: string): string | undefined {
  if (process.getuid?.() !== 0) return "it must run as root (namespaces, containerd, kubelet)";
  for (const tool of ["kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr"])
    if (!fs.existsSync(path.join(bin, tool)))
      return `the toolchain has no ${tool} (scripts/toolchain.sh node containerd)`;
  const missing = missingDebianFile([
    ["/usr/sbin/runc", "runc"],
    ["/usr/lib/cni/bridge", "containernetworking-plugins"],
    ["/usr/sbin/iptables", "iptables"],
    ["/usr/bin/nsenter", "util-linux"],
  ]);
  if (missing !== undefined) return missing;
  if (!fs.existsSync(path.join(CGROUP_FS, "memory")) && !fs.existsSync(`${CGROUP_FS}/cgroup.procs`))
    return "no cgroup hierarchy is mounted";
  return undefined;
}

/** The iptables chain of impair()'s drops, and where it hooks in (chain, in/out match). */
const IMPAIR_CHAIN = "ROSFLEET-IMPAIR";
const IMPAIR_HOOKS = [
  ["FORWARD", "-i"],
  ["FORWARD", "-o"],
  ["INPUT", "-i"],
  ["OUTPUT", "-o"],
] as const;

const MULTICAST_GROUP = "239.255.77.1";
const MULTICAST_RECEIVE = `import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 17400))
group = struct.pack("4s4s", socket.inet_aton("${MULTICAST_GROUP}"), socket.inet_aton(sys.argv[1]))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group)
s.settimeout(5)
try:
    print(s.recv(100).decode())
except socket.timeout:
    print("nothing")`;
const MULTICAST_SEND = `import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[1]))
for _ in range(10):
    s.sendto(b"rosfleet-probe", ("${MULTICAST_GROUP}", 17400))
    time.sleep(0.2)`;

/** A node's address on its pod bridge (the bridge plugin's gateway, `.1` of its range). */
export const podGateway = (n: ClusterNode): string => n.podCidr.replace(/\.0\/24$/, ".1");

const netnsNames = (): string[] =>
  fs.existsSync("/run/netns") ? fs.readdirSync("/run/netns") : [];

/** The cgroup hierarchies of this host: each v1 controller, or the one v2 root. */
function cgroupRoots(): string[] {
  if (fs.existsSync(`${CGROUP_FS}/cgroup.procs`)) return [CGROUP_FS];
  return fs
    .readdirSync(CGROUP_FS)
    .map((d) => path.join(CGROUP_FS, d))
    .filter(
      (d) => fs.existsSync(path.join(d, "cgroup.procs")) && !fs.lstatSync(d).isSymbolicLink(),
    );
}

/** Removes a cgroup and everything below it (processes must be gone). */
function removeCgroup(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }))
    if (entry.isDirectory()) removeCgroup(path.join(dir, entry.name));
  try {
    fs.rmdirSync(dir);
  } catch {
    // A process still in it: kill it and try once more.
    for (const pid of fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n"))
      if (pid !== "") quiet("kill", ["-9", pid]);
    spawnSync("sleep", ["0.5"]);
    fs.rmdirSync(dir);
  }
}

interface Proc {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly log: string;
}

export class Nodes {
  readonly nodes: readonly ClusterNode[];
  private readonly procs: Proc[] = [];
  private readonly sysctls = new Map<string, string>();
  private readonly newHostPaths = HOST_PATHS.filter((p) => !fs.existsSync(p));
  /** Pods' network namespaces (containerd's `cni-*`) that were there before. */
  private readonly oldNetns = new Set(netnsNames());

  constructor(
    names: readonly string[],
    private readonly bin: string,
    private readonly dir: string,
  ) {
    this.nodes = names.map((name, i) => ({
      name,
      ip: `${HUB_NET}.${11 + i}`,
      podCidr: `${POD_NET}.${i + 1}.0/24`,
      netns: `${PREFIX}-${i + 1}`,
      socket: `${STATE}/${name}/containerd.sock`,
    }));
    for (const s of KUBELET_SYSCTLS)
      this.sysctls.set(s, fs.readFileSync(`/proc/sys/${s}`, "utf8").trim());
  }

  /** The hub, the host's link to it, and each node's namespace, addresses and routes. */
  network(): void {
    this.removeNetwork();
    ip("netns", "add", HUB);
    inNs(HUB, "ip", ["link", "add", "br0", "type", "bridge"]);
    inNs(HUB, "ip", ["link", "set", "br0", "up"]);
    inNs(HUB, "ip", ["link", "set", "lo", "up"]);
    ip("link", "add", HOST_LINK, "type", "veth", "peer", "name", "h0", "netns", HUB);
    inNs(HUB, "ip", ["link", "set", "h0", "master", "br0", "up"]);
    ip("addr", "add", `${HOST_IP}/24`, "dev", HOST_LINK);
    ip("link", "set", HOST_LINK, "up");
    this.nodes.forEach((n, i) => {
      ip("netns", "add", n.netns);
      const port = `n${i + 1}`;
      ip(
        "link",
        "add",
        `${PREFIX}-${port}`,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        n.netns,
      );
      ip("link", "set", `${PREFIX}-${port}`, "netns", HUB);
      inNs(HUB, "ip", ["link", "set", `${PREFIX}-${port}`, "master", "br0", "up"]);
      inNs(n.netns, "ip", ["addr", "add", `${n.ip}/24`, "dev", "eth0"]);
      inNs(n.netns, "ip", ["link", "set", "eth0", "up"]);
      inNs(n.netns, "ip", ["link", "set", "lo", "up"]);
      // No default route: nothing on a node reaches past this host's test network. Multicast
      // (host-network pods' LAN) and Service addresses (rewritten by kube-proxy after the
      // route lookup) leave by eth0.
      inNs(n.netns, "ip", ["route", "add", "224.0.0.0/4", "dev", "eth0"]);
      inNs(n.netns, "ip", ["route", "add", SERVICE_CIDR, "dev", "eth0"]);
      inNs(n.netns, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
      // kube-proxy's Service rules must see bridged pod-to-pod traffic on the node.
      inNs(n.netns, "sysctl", ["-qw", "net.bridge.bridge-nf-call-iptables=1"]);
      // The API server answers pods by their own addresses (no masquerade).
      ip("route", "add", n.podCidr, "via", n.ip, "dev", HOST_LINK);
    });
    for (const n of this.nodes)
      for (const other of this.nodes)
        if (other !== n) inNs(n.netns, "ip", ["route", "add", other.podCidr, "via", other.ip]);
  }

  private spawn(name: string, netns: string, cmd: string, args: readonly string[]): void {
    const log = path.join(this.dir, `${name}.log`);
    const out = fs.openSync(log, "a");
    const proc = spawn("nsenter", [`--net=/run/netns/${netns}`, cmd, ...args], {
      stdio: ["ignore", out, out],
      env: { ...process.env, PATH: `${this.bin}:${process.env.PATH ?? ""}` },
    });
    fs.closeSync(out);
    this.procs.push({ name, proc, log });
  }

  /** containerd, kubelet and kube-proxy on every node (after `network()`), registered with
   * `cp`; the image archives imported in each, and `registry` (host:port) pulled from over
   * plain HTTP. */
  async start(cp: ControlPlane, images: readonly string[], registry: string): Promise<void> {
    const roots = cgroupRoots();
    for (const n of this.nodes) {
      const d = path.join(this.dir, n.name);
      const run = path.join(STATE, n.name);
      fs.mkdirSync(path.join(d, "cni", "net.d"), { recursive: true });
      fs.mkdirSync(run, { recursive: true });
      for (const r of roots) fs.mkdirSync(path.join(r, `rosfleet-${n.name}`), { recursive: true });
      fs.writeFileSync(path.join(d, "containerd.toml"), containerdConfig(d, run, n));
      // containerd's hosts.toml for the lab's registry (it serves HTTP, as a LAN registry may).
      const hosts = path.join(d, "certs.d", registry);
      fs.mkdirSync(hosts, { recursive: true });
      fs.writeFileSync(
        path.join(hosts, "hosts.toml"),
        `server = "http://${registry}"\n\n[host."http://${registry}"]\n  capabilities = ["pull", "resolve"]\n`,
      );
      fs.writeFileSync(path.join(d, "cni", "net.d", "10-rosfleet.conflist"), cniConfig(d, n));
      this.spawn(`${n.name}-containerd`, n.netns, path.join(this.bin, "containerd"), [
        "--config",
        path.join(d, "containerd.toml"),
      ]);
    }
    for (const n of this.nodes) {
      await waitFor(
        `${n.name}: containerd`,
        () => Promise.resolve(this.ctr(n, ["version"]).status === 0),
        60_000,
        () => this.logs(),
      );
      for (const image of images) {
        const r = this.ctr(n, ["-n", "k8s.io", "images", "import", image]);
        if (r.status !== 0) throw new Error(`${n.name}: import ${image}: ${r.stderr}`);
      }
    }
    issueCertificate(
      cp.dir,
      "kube-proxy",
      "/CN=system:kube-proxy",
      "extendedKeyUsage=clientAuth\n",
    );
    for (const n of this.nodes) {
      const d = path.join(this.dir, n.name);
      issueCertificate(
        cp.dir,
        `node-${n.name}`,
        `/O=system:nodes/CN=system:node:${n.name}`,
        `subjectAltName=IP:${n.ip}\nextendedKeyUsage=clientAuth,serverAuth\n`,
      );
      const kubelet = writeKubeconfig(cp.dir, cp.server, `node-${n.name}`);
      const proxy = writeKubeconfig(cp.dir, cp.server, "kube-proxy");
      fs.writeFileSync(path.join(d, "resolv.conf"), "");
      fs.writeFileSync(path.join(d, "kubelet.yaml"), kubeletConfig(cp, d, n));
      this.spawn(`${n.name}-kubelet`, n.netns, path.join(this.bin, "kubelet"), [
        ...["--config", path.join(d, "kubelet.yaml"), "--kubeconfig", kubelet],
        ...["--hostname-override", n.name, "--node-ip", n.ip],
        ...["--root-dir", path.join(d, "kubelet"), "--cert-dir", path.join(d, "pki")],
        "--v=1",
      ]);
      this.spawn(`${n.name}-kube-proxy`, n.netns, path.join(this.bin, "kube-proxy"), [
        ...["--kubeconfig", proxy, "--hostname-override", n.name, "--proxy-mode", "iptables"],
        ...["--cluster-cidr", CLUSTER_CIDR, "--bind-address", n.ip],
        ...["--healthz-bind-address", `${n.ip}:10256`, "--metrics-bind-address", "127.0.0.1:10249"],
        // Leave the host's conntrack table settings alone.
        ...["--conntrack-max-per-core", "0"],
        ...["--conntrack-tcp-timeout-established", "0", "--conntrack-tcp-timeout-close-wait", "0"],
      ]);
    }
    for (const n of this.nodes)
      await waitFor(
        `${n.name}: node Ready`,
        () => nodeIsReady(cp.api, n.name),
        120_000,
        () => this.logs(),
      );
  }

  /** Whether a multicast datagram sent from address `from.ip` in `from`'s namespace reaches
   * `to`'s own interface: the node's address is what host-network pods send from, its pod
   * bridge's (`podGateway`) the pods' side. */
  async multicastReaches(
    from: Pick<ClusterNode, "netns" | "ip">,
    to: ClusterNode,
  ): Promise<boolean> {
    const receiver = spawn(
      "nsenter",
      [`--net=/run/netns/${to.netns}`, "python3", "-c", MULTICAST_RECEIVE, to.ip],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let heard = "";
    receiver.stdout.on("data", (c: Buffer) => (heard += c.toString("utf8")));
    const done = new Promise((r) => receiver.once("exit", r));
    // The receiver joins the group before anything is sent.
    await new Promise((r) => setTimeout(r, 500));
    inNs(from.netns, "python3", ["-c", MULTICAST_SEND, from.ip]);
    await done;
    return heard.trim() === "rosfleet-probe";
  }

  ctr(n: ClusterNode, args: readonly string[]) {
    return spawnSync(path.join(this.bin, "ctr"), ["--address", n.socket, ...args], {
      encoding: "utf8",
    });
  }

  /**
   * Gives `node`'s link to the hub a Wi-Fi's faults, both ways, in namespaces made here only:
   * `lossPercent` of its UDP datagrams dropped at random (iptables' statistic match; the
   * kubelet's TCP to the API server is spared, as a TCP retransmit would hide nothing), and
   * `rate` ("512kbit", tc htb) for its UDP on its eth0 and on the hub's port towards it. Pods' traffic
   * within the node never crosses the link. `restore` takes it all back.
   */
  impair(node: string, faults: { lossPercent?: number; rate?: string }): void {
    const n = this.node(node);
    this.restore(node);
    if (faults.lossPercent !== undefined) {
      const p = String(faults.lossPercent / 100);
      inNs(n.netns, "iptables", ["-N", IMPAIR_CHAIN]);
      inNs(n.netns, "iptables", [
        ...["-A", IMPAIR_CHAIN, "-p", "udp", "-m", "statistic"],
        ...["--mode", "random", "--probability", p, "-j", "DROP"],
      ]);
      // Forwarded (pods) and local (host-network pods) traffic, in and out.
      for (const [chain, dir] of IMPAIR_HOOKS)
        inNs(n.netns, "iptables", ["-I", chain, "1", dir, "eth0", "-j", IMPAIR_CHAIN]);
    }
    if (faults.rate !== undefined)
      for (const [netns, dev] of [
        [n.netns, "eth0"],
        [HUB, this.hubPort(n)],
      ]) {
        // htb: UDP (DDS, every fragment of it) in a class at the rate, the rest (the kubelet's
        // TCP to the API server) unshaped, so the node stays Ready while DDS crawls.
        const tc = (...args: string[]) => inNs(netns, "tc", [...args]);
        tc("qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "10");
        tc("class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit");
        tc(
          "class",
          "add",
          "dev",
          dev,
          "parent",
          "1:",
          "classid",
          "1:20",
          "htb",
          "rate",
          faults.rate,
        );
        tc(
          "filter",
          "add",
          "dev",
          dev,
          "parent",
          "1:",
          "protocol",
          "ip",
          "prio",
          "1",
          "u32",
          "match",
          "ip",
          "protocol",
          "17",
          "0xff",
          "flowid",
          "1:20",
        );
      }
  }

  /** `node`'s link as it was made: no drop rule, no shaping. */
  restore(node: string): void {
    const n = this.node(node);
    const undo = (netns: string, cmd: string, ...args: string[]) =>
      quiet("nsenter", [`--net=/run/netns/${netns}`, cmd, ...args]);
    for (const [chain, dir] of IMPAIR_HOOKS)
      undo(n.netns, "iptables", "-D", chain, dir, "eth0", "-j", IMPAIR_CHAIN);
    undo(n.netns, "iptables", "-F", IMPAIR_CHAIN);
    undo(n.netns, "iptables", "-X", IMPAIR_CHAIN);
    undo(n.netns, "tc", "qdisc", "del", "dev", "eth0", "root");
    undo(HUB, "tc", "qdisc", "del", "dev", this.hubPort(n), "root");
  }

  private node(name: string): ClusterNode {
    const n = this.nodes.find((x) => x.name === name);
    if (n === undefined) throw new Error(`no node ${name}`);
    return n;
  }

  /** The hub's bridge port of `n` (network()'s naming). */
  private hubPort(n: ClusterNode): string {
    return `${PREFIX}-n${this.nodes.indexOf(n) + 1}`;
  }

  /** Sends `signal` to `node`'s kubelet: SIGSTOP, and the control plane hears from the node no
   * more, as from a Pi that lost its power or its Wi-Fi (its pods keep running); SIGCONT, and
   * it is back. */
  signalKubelet(node: string, signal: NodeJS.Signals): void {
    const kubelet = this.procs.find((p) => p.name === `${node}-kubelet`);
    if (kubelet?.proc.pid === undefined) throw new Error(`no kubelet of ${node}`);
    process.kill(kubelet.proc.pid, signal);
  }

  /** The last lines of each node process's log. */
  logs(lines = 25): string {
    return this.procs
      .map(({ name, proc, log }) => {
        const text = fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n") : [];
        return `--- ${name} (exit ${String(proc.exitCode)}):\n${text.slice(-lines).join("\n")}`;
      })
      .join("\n");
  }

  /** Everything down and removed; safe to call after a partial start. */
  async stop(): Promise<void> {
    // kubelets first, so nothing restarts what is removed next.
    await this.kill((p) => !p.name.endsWith("-containerd"));
    for (const n of this.nodes) {
      if (this.ctr(n, ["version"]).status !== 0) continue;
      const tasks = this.ctr(n, ["-n", "k8s.io", "tasks", "ls", "-q"]).stdout.split("\n");
      for (const id of tasks.filter(Boolean)) {
        this.ctr(n, ["-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id]);
        this.ctr(n, ["-n", "k8s.io", "tasks", "delete", "-f", id]);
      }
    }
    await this.kill(() => true);
    // Whatever the containers and kubelets left mounted under our directories.
    const mounts = fs
      .readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[1]?.replace(/\\040/g, " "))
      .filter(
        (m): m is string => m !== undefined && (m.startsWith(this.dir) || m.startsWith(STATE)),
      )
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) quiet("umount", ["-l", m]);
    for (const r of cgroupRoots())
      for (const n of this.nodes) removeCgroup(path.join(r, `rosfleet-${n.name}`));
    this.removeNetwork();
    fs.rmSync(STATE, { recursive: true, force: true });
    for (const p of this.newHostPaths) fs.rmSync(p, { recursive: true, force: true });
    for (const [s, value] of this.sysctls) fs.writeFileSync(`/proc/sys/${s}`, value);
  }

  private async kill(which: (p: Proc) => boolean): Promise<void> {
    await Promise.all(this.procs.filter(which).map(({ proc }) => stopProcess(proc, 10_000)));
  }

  private removeNetwork(): void {
    // Pods killed without their CNI teardown leave their namespaces behind.
    for (const ns of netnsNames())
      if (ns.startsWith("cni-") && !this.oldNetns.has(ns)) quiet("ip", ["netns", "delete", ns]);
    // Deleting a namespace deletes its interfaces; the host's end and routes go with them.
    for (const n of this.nodes) quiet("ip", ["netns", "delete", n.netns]);
    quiet("ip", ["netns", "delete", HUB]);
    quiet("ip", ["link", "delete", HOST_LINK]);
  }
}

/** containerd 2.x for one node: its own paths, runc from Debian, no systemd cgroups, no NRI. */
function containerdConfig(dir: string, run: string, n: ClusterNode): string {
  return `version = 3
root = "${dir}/containerd"
state = "${run}/containerd"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.internal.v1.opt"]

[grpc]
  address = "${n.socket}"
[ttrpc]
  address = "${n.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins.'io.containerd.cri.v1.runtime']
  # This VM lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below its own.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "${dir}/cni/net.d"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "${dir}/certs.d"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "rosfleet.local/pause:1"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
`;
}

/** The node's pod network: a bridge, its own range, addresses kept under its directory. */
function cniConfig(dir: string, n: ClusterNode): string {
  return JSON.stringify({
    cniVersion: "1.0.0",
    name: "rosfleet",
    plugins: [
      {
        type: "bridge",
        bridge: "cni0",
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: "host-local",
          ranges: [[{ subnet: n.podCidr }]],
          routes: [{ dst: "0.0.0.0/0" }],
          dataDir: path.join(dir, "cni", "ipam"),
        },
      },
    ],
  });
}

function kubeletConfig(cp: ControlPlane, dir: string, n: ClusterNode): string {
  return JSON.stringify({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    address: n.ip,
    readOnlyPort: 0,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: path.join(cp.dir, "ca.crt") },
    },
    authorization: { mode: "Webhook" },
    tlsCertFile: path.join(cp.dir, `node-${n.name}.crt`),
    tlsPrivateKeyFile: path.join(cp.dir, `node-${n.name}.key`),
    containerRuntimeEndpoint: `unix://${n.socket}`,
    cgroupDriver: "cgroupfs",
    cgroupRoot: `/rosfleet-${n.name}`,
    // This host has cgroup v1 (hybrid).
    failCgroupV1: false,
    failSwapOn: false,
    podCIDR: n.podCidr,
    resolvConf: path.join(dir, "resolv.conf"),
    podLogsDir: path.join(dir, "pod-logs"),
    serializeImagePulls: false,
    // A busy test host is not a reason to evict the pods under test.
    evictionHard: {
      "memory.available": "100Mi",
      "nodefs.available": "1%",
      "imagefs.available": "1%",
    },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // Pod deletions and restarts are measured: report status quickly.
    nodeStatusUpdateFrequency: "5s",
  });
}
