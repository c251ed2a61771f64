#!/usr/bin/env bash
# The delivery check, run by each pod of the check Job — one pod on every node of the lab (in
# the ros_demo image, after its entrypoint sourced ROS): the probe (probe.py, listener role)
# measures every node's beacon, this node's own included, and prints one report line; the line
# is written to the reports ConfigMap (key: this node) and the pod exits 0 — the verdict is made
# by rosfleet from all nodes' reports, read through the Kubernetes API. Parameters (set by the
# caller):
#   REPORTS          the ConfigMap the Job's ServiceAccount may patch
#   PROBE_PY         probe.py
#   PUBLISH_PY       publish.py, which patches it
#   CLAIMED_PY       claimed.py, which reads whether this node reported in this run already
# Environment (from the Job): NODE_NAME, ROSFLEET_NODES, ROSFLEET_TIMEOUT, ROSFLEET_LARGE_BYTES,
# ROSFLEET_LARGE_COUNT, ROSFLEET_CHECK_RUN, ROSFLEET_JOB_UID (ROSFLEET_JOB_UID_LEGACY on
# clusters older than Kubernetes 1.27, which label pods only controller-uid).

# A second pod of this Job on a node that already reported (claimed.py says why) leaves at once.
if ! python3 -c "$CLAIMED_PY" "$REPORTS" "$NODE_NAME"; then
  echo "rosfleet: $NODE_NAME already reported in this check; this pod was meant for a node that could not take it"
  exit 0
fi
report=$(python3 -c "$PROBE_PY" listener | grep "^ROSFLEET_DELIVERY " | tail -n 1) || true
if [ -z "$report" ]; then
  echo "rosfleet: the probe printed no report (its error is above)" >&2
  exit 0
fi
echo "$report"
# A report that cannot be written is judged as none: the verdict then names this node's log.
python3 -c "$PUBLISH_PY" "$REPORTS" "$NODE_NAME" "$report" || true
