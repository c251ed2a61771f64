#!/usr/bin/env bash
# Takes a machine's node out of the cluster, run as root on the first server, before the
# machine is uninstalled: drain it, then delete the Node object (which also clears k3s's
# node-password secret, so a machine of the same name can join again). Idempotent: a missing
# node is done. A node that is not Ready (the machine is off, dead or wiped) cannot be drained:
# its pods could not leave it gracefully, and a drain would only wait out its timeout.
# A server's Node carries k3s's etcd finalizer: deleting it removes the server's etcd member
# (k3s-io/k3s #3973), which k3s-uninstall.sh never does (#4865), and the delete returns when
# that is done. Only then, with etcd healthy again on the first server, may the uninstall (and
# the next server's removal) go on; otherwise this fails and nothing is uninstalled. And it
# starts only when every other server is Ready: with one of three down, removing a member
# would leave etcd two members of which one is dead — no quorum, no API (the dead one is the
# one to remove first: two healthy members stay).
# Parameters (set by the caller):
#   NODE_NAME      the node
#   ROLE           server | agent
#   DRAIN_SECONDS  how long the drain may take
#   WAIT_SECONDS   how long a server's etcd member removal, and etcd's health after, may take
#   ROOT           filesystem prefix ("" on a real machine; a temp dir in tests)

kubectl() { "$K3S" kubectl "$@"; }
if ! kubectl get "node/$NODE_NAME" >/dev/null 2>&1; then
  echo "node $NODE_NAME is not in the cluster"
  exit 0
fi
# Nothing is drained or deleted unless every other server is up (and etcd with them).
[ "$ROLE" != server ] || servers_stay_up "$NODE_NAME"
ready=$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
if [ "$ready" != True ]; then
  echo "node $NODE_NAME is not Ready (its machine is off or gone): deleting it without a drain"
# --force: pods without a controller (a workload of kind pod) would block a drain.
elif ! kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --force --timeout="${DRAIN_SECONDS}s"; then
  echo "drain of $NODE_NAME did not finish in ${DRAIN_SECONDS}s; deleting the node anyway" >&2
fi
if [ "$ROLE" != server ]; then
  kubectl delete node "$NODE_NAME" --ignore-not-found --timeout=60s
  exit 0
fi
remove_server_node "$NODE_NAME" "$WAIT_SECONDS"
