#!/usr/bin/env bash
# The delivery check, run in a Job pinned to one node (in the ros_demo image, after its
# entrypoint sourced ROS): listens on /chatter until it has heard the beacon of every expected
# talker node, or until the timeout, then prints one report line and exits 0 — the verdict is
# made by rosfleet from all nodes' reports. Parameters (set by the caller):
#   NODE_NAME        this node
#   EXPECTED         talker nodes to hear, comma-separated
#   TIMEOUT_SECONDS  how long to listen

IFS=, read -r -a want <<<"$EXPECTED"
heard=()
has() {
  local x
  for x in "${heard[@]}"; do [ "$x" = "$1" ] && return 0; done
  return 1
}
while IFS= read -r line; do
  [[ $line =~ rosfleet-beacon\ from\ ([a-z0-9-]+) ]] || continue
  talker=${BASH_REMATCH[1]}
  has "$talker" || heard+=("$talker")
  missing=0
  for e in "${want[@]}"; do has "$e" || missing=1; done
  [ "$missing" -eq 0 ] && break
done < <(timeout "$TIMEOUT_SECONDS" ros2 topic echo /chatter std_msgs/msg/String 2>/dev/null || true)
echo "ROSFLEET_DELIVERY listener=$NODE_NAME heard=$(IFS=,; echo "${heard[*]}")"
