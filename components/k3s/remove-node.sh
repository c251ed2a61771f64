#!/usr/bin/env bash
# Takes an agent's node out of the cluster, run as root on the first server, before the agent
# is uninstalled: drain it, then delete the Node object (which also clears k3s's node-password
# secret, so a machine of the same name can join again). Idempotent: a missing node is done.
# Parameters (set by the caller):
#   NODE_NAME      the node
#   DRAIN_SECONDS  how long the drain may take

kubectl() { k3s kubectl "$@"; }
if ! kubectl get "node/$NODE_NAME" >/dev/null 2>&1; then
  echo "node $NODE_NAME is not in the cluster"
  exit 0
fi
# --force: the lab's bare pods (demo-listener, ...) have no controller and would block a drain.
if ! kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --force --timeout="${DRAIN_SECONDS}s"; then
  echo "drain of $NODE_NAME did not finish in ${DRAIN_SECONDS}s; deleting the node anyway" >&2
fi
kubectl delete node "$NODE_NAME" --ignore-not-found
