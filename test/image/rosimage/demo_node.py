# The demo_nodes_cpp / demo_nodes_py talker and listener as rclpy nodes (no demo_nodes wheel):
# same node names, topic, QoS depth, rate and log lines as the real ones. Installed as
# lib/demo_nodes_<lang>/{talker,listener}; the first argument says which, the rest go to rclpy
# (--ros-args ...).
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from std_msgs.msg import String

LANG, ROLE = sys.argv[1], sys.argv[2]
# demo_nodes_cpp logs 'Hello World: 1' in single quotes, demo_nodes_py in double quotes.
Q = "'" if LANG == "cpp" else '"'


def main():
    rclpy.init(args=[sys.argv[0], *sys.argv[3:]])
    node = rclpy.create_node(ROLE)
    if ROLE == "talker":
        publisher = node.create_publisher(String, "chatter", 10)
        count = [0]

        def tick():
            count[0] += 1
            msg = String(data="Hello World: %d" % count[0])
            node.get_logger().info("Publishing: %s%s%s" % (Q, msg.data, Q))
            publisher.publish(msg)

        node.create_timer(1.0, tick)
    else:
        fmt = "I heard: [%s]" if LANG == "cpp" else 'I heard: "%s"'
        node.create_subscription(
            String, "chatter", lambda m: node.get_logger().info(fmt % m.data), 10
        )
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


main()
