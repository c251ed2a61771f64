# The delivery check's probe: one program, two roles, run by the check's two Jobs in the lab's
# own image, env and network mode — `beacon` (a talker on every node) and `listener` (a check
# pod on every node). Every pair is measured by its listener alone, on its own clock, so no two
# machines' clocks need to agree (Pis often have no RTC):
#   loss      the beacon's numbered heartbeats (BEAT_HZ, best effort: a lost packet stays lost,
#             as a sensor's) heard in the listener's window, against the numbers it spans
#   latency   round trips: the listener's numbered pings, echoed by each beacon to the
#             listener's own echo topic; p50 and p99 of the listener's monotonic clock
#   rate      heartbeats per second heard in the window
#   large     once every window is closed, the listener asks each beacon for LARGE_COUNT
#             messages of the large size on its own topic, with the demo's QoS (reliable, keep
#             last 10, volatile): how many arrived before the deadline, at what rate
# A listener says `done` when it has every figure (or its time is up) and prints one report
# line; a beacon ends when every listener of the lab said done, or at its own deadline.
# Arguments: role. Environment: NODE_NAME (this pod's node), ROSFLEET_NODES (the lab's checked
# nodes, comma-separated), ROSFLEET_TIMEOUT (seconds a listener measures at most),
# ROSFLEET_LARGE_BYTES (0: no large message), ROSFLEET_LARGE_COUNT, ROSFLEET_CHECK_RUN,
# ROSFLEET_JOB_UID[_LEGACY].
# The measuring is plain Python (Beacon, Listener: fed the time and the messages, they return
# what to publish), so it is tested without ROS; main() joins it to rclpy.
import json
import math
import os
import sys
import time

REPORT_PREFIX = "ROSFLEET_DELIVERY"
BEAT_HZ = 50.0
PING_HZ = 10.0
WINDOW_S = 8.0
# Echoes and heartbeats still on their way when a window closes are let in for this long.
GRACE_S = 1.0
LARGE_COUNT = int(os.environ.get("ROSFLEET_LARGE_COUNT", "3"))
LARGE_ASK_S = 1.0
DONE_REPEAT_S = 2.0
# A beacon outlives the listeners' timeout by this much (they start with it, give or take a
# scheduling moment: the image is on every node already, the pull probe saw to that).
BEACON_EXTRA_S = 30.0
BEACON_TOPIC = "/rosfleet/beacon"
PING_TOPIC = "/rosfleet/ping"


def echo_topic(index):
    return "/rosfleet/echo_%d" % index


def large_topic(index):
    return "/rosfleet/large_%d" % index


def percentile(values, q):
    """The nearest-rank q-th percentile of values (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100.0 * len(ordered)) - 1)]


class Beacon:
    """A talker: heartbeats, echoes to each listener's pings, large messages when asked."""

    def __init__(self, me, nodes, large_bytes, timeout, now):
        self.me, self.nodes, self.large_bytes = me, list(nodes), large_bytes
        self.end = now + timeout + BEACON_EXTRA_S
        self.seq = 0
        self.next_beat = now
        self.pending = {}
        self.served = set()
        self.done = set()

    def tick(self, now, matched):
        """What to publish now: [(topic, text)]. matched(topic): a reader is there."""
        out = []
        if now >= self.next_beat:
            self.seq += 1
            out.append((BEACON_TOPIC, "beat %s %d" % (self.me, self.seq)))
            self.next_beat = max(self.next_beat + 1.0 / BEAT_HZ, now - 1.0)
        for index in sorted(self.pending):
            topic = large_topic(index)
            # Volatile: a message published before the listener's reader matched is lost.
            if not matched(topic):
                continue
            for n in range(self.pending.pop(index)):
                head = "%s %d " % (self.me, n + 1)
                out.append((topic, head + "x" * max(0, self.large_bytes - len(head))))
        return out

    def on_ping(self, now, text):
        """A listener's ping, large-message request or done."""
        words = text.split()
        if len(words) < 2 or words[1] not in self.nodes:
            return []
        index = self.nodes.index(words[1])
        if words[0] == "ping" and len(words) == 4:
            return [(echo_topic(index), "echo %s %s %s" % (self.me, words[2], words[3]))]
        if words[0] == "large" and words[1] not in self.served and self.large_bytes > 0:
            self.served.add(words[1])
            self.pending[index] = LARGE_COUNT
        if words[0] == "done":
            self.done.add(words[1])
        return []

    def finished(self, now):
        """Every listener said done, or none is waiting any more."""
        return self.done >= set(self.nodes) or now >= self.end


class Pair:
    """What one listener measured of one talker, from the first message it heard of it."""

    def __init__(self):
        self.start = None
        self.beats = set()
        self.rtts = []
        self.asked = None
        self.large = {}

    def open(self, now):
        if self.start is None:
            self.start = now

    def in_window(self, now):
        return self.start is not None and now <= self.start + WINDOW_S

    def closed(self, now):
        return self.start is not None and now > self.start + WINDOW_S + GRACE_S


class Listener:
    """A check pod: pings, hears heartbeats, echoes and large messages; reports every pair."""

    def __init__(self, me, nodes, large_bytes, timeout, now):
        self.me, self.nodes, self.large_bytes = me, list(nodes), large_bytes
        self.pairs = {n: Pair() for n in self.nodes}
        self.seq = 0
        self.next_ping = now
        self.deadline = now + timeout
        self.sent = {}
        self.last_ask = None
        self.done_since = None

    def complete(self, pair, now):
        return pair.closed(now) and (self.large_bytes == 0 or len(pair.large) >= LARGE_COUNT)

    def measured(self, now):
        return now >= self.deadline or all(self.complete(p, now) for p in self.pairs.values())

    def tick(self, now):
        """What to publish now: [(topic, text)]."""
        if self.done_since is None and self.measured(now):
            self.done_since = now
        due = now >= self.next_ping
        if due:
            self.next_ping = max(self.next_ping + 1.0 / PING_HZ, now - 1.0)
        if self.done_since is not None:
            # Best effort: said a few times, as each beacon needs to hear it once.
            return [(PING_TOPIC, "done %s" % self.me)] if due else []
        out = []
        if due:
            self.seq += 1
            self.sent[self.seq] = now
            out.append((PING_TOPIC, "ping %s %d %d" % (self.me, self.seq, int(now * 1e9))))
        if self.large_bytes > 0 and self.large_due(now):
            self.last_ask = now
            # One request reaches every beacon; each serves it once, so asking again only
            # reaches those that missed it (best effort).
            out.append((PING_TOPIC, "large %s" % self.me))
            for pair in self.pairs.values():
                if pair.start is not None and pair.asked is None:
                    pair.asked = now
        return out

    def large_due(self, now):
        # Only once every window heard so far is closed: large traffic would be measured as the
        # others' loss.
        if any(p.start is not None and not p.closed(now) for p in self.pairs.values()):
            return False
        waiting = [p for p in self.pairs.values() if p.closed(now) and len(p.large) < LARGE_COUNT]
        return bool(waiting) and (self.last_ask is None or now >= self.last_ask + LARGE_ASK_S)

    def finished(self, now):
        return self.done_since is not None and now >= self.done_since + DONE_REPEAT_S

    def on_beat(self, now, text):
        words = text.split()
        if len(words) != 3 or words[0] != "beat" or words[1] not in self.pairs:
            return
        pair = self.pairs[words[1]]
        pair.open(now)
        if pair.in_window(now):
            pair.beats.add(int(words[2]))

    def on_echo(self, now, text):
        words = text.split()
        if len(words) != 4 or words[0] != "echo" or words[1] not in self.pairs:
            return
        pair = self.pairs[words[1]]
        pair.open(now)
        sent = self.sent.get(int(words[2]))
        # Pings sent in the window; their echoes may come in its grace.
        if sent is not None and pair.start - GRACE_S <= sent <= pair.start + WINDOW_S:
            if not pair.closed(now):
                pair.rtts.append(now - sent)

    def on_large(self, now, text):
        head = text[:200].split(" ", 2)
        if len(head) < 2 or head[0] not in self.pairs:
            return
        pair = self.pairs[head[0]]
        pair.open(now)
        pair.large.setdefault(head[1], now)

    def figures(self, pair):
        """[heard, got, span, rate/s, p50 ms, p99 ms, large got, large MiB/s] of one pair."""
        heard = 1 if pair.start is not None else 0
        got = len(pair.beats)
        span = (max(pair.beats) - min(pair.beats) + 1) if pair.beats else 0
        p50, p99 = (percentile(pair.rtts, q) for q in (50, 99))
        arrived = sorted(pair.large.values())
        large_rate = None
        if arrived and pair.asked is not None and arrived[-1] > pair.asked:
            mib = len(arrived) * self.large_bytes / float(1 << 20)
            large_rate = round(mib / (arrived[-1] - pair.asked), 2)
        return [
            heard,
            got,
            span,
            round(got / WINDOW_S, 1),
            milliseconds(p50),
            milliseconds(p99),
            len(arrived),
            large_rate,
        ]

    def report(self, rmw, distro, run, job):
        return {
            "listener": self.me,
            "run": run,
            "job": job,
            "rmw": rmw,
            "distro": distro,
            "large": self.large_bytes,
            "pairs": {t: self.figures(p) for t, p in self.pairs.items()},
        }


def milliseconds(seconds):
    return None if seconds is None else round(seconds * 1000.0, 2)


def main():
    role = sys.argv[1]
    me = os.environ["NODE_NAME"]
    nodes = [n for n in os.environ["ROSFLEET_NODES"].split(",") if n]
    timeout = float(os.environ["ROSFLEET_TIMEOUT"])
    large_bytes = int(os.environ.get("ROSFLEET_LARGE_BYTES", "0"))

    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    rclpy.init()
    node = rclpy.create_node(
        "rosfleet_%s_%d" % (role, nodes.index(me) if me in nodes else 0),
        start_parameter_services=False,
    )
    best = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
    demo = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    clock = time.monotonic
    publishers = {}

    def publish(out):
        for topic, text in out:
            publishers[topic].publish(String(data=text))

    if role == "beacon":
        probe = Beacon(me, nodes, large_bytes, timeout, clock())
        publishers[BEACON_TOPIC] = node.create_publisher(String, BEACON_TOPIC, best)
        for i in range(len(nodes)):
            publishers[echo_topic(i)] = node.create_publisher(String, echo_topic(i), best)
            if large_bytes > 0:
                publishers[large_topic(i)] = node.create_publisher(String, large_topic(i), demo)
        node.create_subscription(
            String, PING_TOPIC, lambda m: publish(probe.on_ping(clock(), m.data)), best
        )
        matched = lambda topic: publishers[topic].get_subscription_count() > 0
        running = lambda: not probe.finished(clock())
        step = lambda: publish(probe.tick(clock(), matched))
    else:
        probe = Listener(me, nodes, large_bytes, timeout, clock())
        index = nodes.index(me)
        publishers[PING_TOPIC] = node.create_publisher(String, PING_TOPIC, best)
        node.create_subscription(
            String, BEACON_TOPIC, lambda m: probe.on_beat(clock(), m.data), best
        )
        node.create_subscription(
            String, echo_topic(index), lambda m: probe.on_echo(clock(), m.data), best
        )
        if large_bytes > 0:
            node.create_subscription(
                String, large_topic(index), lambda m: probe.on_large(clock(), m.data), demo
            )
        running = lambda: not probe.finished(clock())
        step = lambda: publish(probe.tick(clock()))
    try:
        while running():
            step()
            rclpy.spin_once(node, timeout_sec=0.01)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    if role == "listener":
        job = os.environ.get("ROSFLEET_JOB_UID") or os.environ.get("ROSFLEET_JOB_UID_LEGACY", "")
        report = probe.report(
            rclpy.get_rmw_implementation_identifier(),
            os.environ.get("ROS_DISTRO", ""),
            os.environ.get("ROSFLEET_CHECK_RUN", ""),
            job,
        )
        print(REPORT_PREFIX + " " + json.dumps(report, separators=(",", ":")), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
