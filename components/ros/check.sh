#!/usr/bin/env bash
# The delivery check, run by each pod of the check Job — one pod on every node of the lab (in
# the ros_demo image, after its entrypoint sourced ROS): listens on TOPIC until it has heard the
# beacon of every other node, or until the timeout, then prints one report line, writes it to
# the reports ConfigMap (key: this node) and exits 0 — the verdict is made by rosfleet from all
# nodes' reports, read through the Kubernetes API. Parameters (set by the caller):
#   NODES            the lab's nodes, comma-separated: a pod expects to hear all but its own
#                    (a one-node lab's only node hears itself)
#   TIMEOUT_SECONDS  how long to listen
#   TOPIC            the beacons' topic
#   REPORTS          the ConfigMap the Job's ServiceAccount may patch
#   PUBLISH_PY       publish.py, which patches it
# Environment (from the Job): NODE_NAME, the node this pod runs on; ROSFLEET_CHECK_RUN, the run
# key; ROSFLEET_JOB_UID, the Job's uid (ROSFLEET_JOB_UID_LEGACY on clusters older than
# Kubernetes 1.27, which label pods only controller-uid).

IFS=, read -r -a lab <<<"$NODES"
want=()
for n in "${lab[@]}"; do [ "$n" = "$NODE_NAME" ] || want+=("$n"); done
[ "${#want[@]}" -gt 0 ] || want=("$NODE_NAME")
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
