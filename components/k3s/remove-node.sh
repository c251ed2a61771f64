#!/usr/bin/env bash
# Takes an agent's node out of the cluster, run as root on the first server, before the agent
# is uninstalled: drain it, then delete the Node object (which also clears k3s's node-password
# secret, so a machine of the same name can join again). Idempotent: a missing node is done.
# A node that is not Ready (the machine is off, dead or wiped) cannot be drained: its pods
# could not leave it gracefully, and a drain would only wait out its timeout.
# Parameters (set by the caller):
#   NODE_NAME      the node
#   DRAIN_SECONDS  how long the drain may take
#   ROOT           filesystem prefix ("" on a real machine; a temp dir in tests)

kubectl() { "$K3S" kubectl "$@"; }
if ! kubectl get "node/$NODE_NAME" >/dev/null 2>&1; then
  echo "node $NODE_NAME is not in the cluster"
  exit 0
fi
ready=$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
if [ "$ready" != True ]; then
  echo "node $NODE_NAME is not Ready (its machine is off or gone): deleting it without a drain"
# --force: the lab's bare pods (demo-listener, ...) have no controller and would block a drain.
elif ! kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --force --timeout="${DRAIN_SECONDS}s"; then
  echo "drain of $NODE_NAME did not finish in ${DRAIN_SECONDS}s; deleting the node anyway" >&2
fi
kubectl delete node "$NODE_NAME" --ignore-not-found --timeout=60s
