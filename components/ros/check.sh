#!/usr/bin/env bash
# The delivery check, run in a Job pinned to one node (in the ros_demo image, after its
# entrypoint sourced ROS): listens on TOPIC until it has heard the beacon of every expected
# talker node, or until the timeout, then prints one report line, writes it to the reports
# ConfigMap (key: this node) and exits 0 — the verdict is made by rosfleet from all nodes'
# reports, read through the Kubernetes API. Parameters (set by the caller):
#   NODE_NAME        this node
#   EXPECTED         talker nodes to hear, comma-separated
#   TIMEOUT_SECONDS  how long to listen
#   TOPIC            the beacons' topic
#   REPORTS          the ConfigMap the Job's ServiceAccount may patch
#   PUBLISH_PY       publish.py, which patches it
# Environment (from the Job): ROSFLEET_CHECK_RUN, the run key; ROSFLEET_JOB_UID, this Job's uid
# (ROSFLEET_JOB_UID_LEGACY on clusters older than Kubernetes 1.27, which label pods only
# controller-uid).

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
done < <(timeout "$TIMEOUT_SECONDS" ros2 topic echo "$TOPIC" std_msgs/msg/String 2>/dev/null || true)
report="ROSFLEET_DELIVERY listener=$NODE_NAME heard=$(IFS=,; echo "${heard[*]}") run=${ROSFLEET_CHECK_RUN:-} job=${ROSFLEET_JOB_UID:-${ROSFLEET_JOB_UID_LEGACY:-}}"
echo "$report"
# A report that cannot be written is judged as none: the verdict then names this node's log.
python3 -c "$PUBLISH_PY" "$REPORTS" "$NODE_NAME" "$report" || true
