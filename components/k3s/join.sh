#!/usr/bin/env bash
# Joins this machine to the cluster, as root: the cluster token arrives on stdin (never on a
# command line, never in the environment) and goes to a 0600 file that config.yaml's
# token-file names; then k3s (re)starts with it, bounded. Written to the machine by install.sh
# and run by the `<name>-join` step as `bash /etc/rancher/k3s/rosfleet-join.sh`. A new token
# (the server was reinstalled) restarts k3s with it; the same token changes nothing.
# Parameters (set by the caller):
#   NODE_NAME     Kubernetes node name
#   ROLE          server | agent
#   WAIT_SECONDS  how long k3s may take to start, and a server to report Ready
#   ROOT          filesystem prefix ("" on a real machine; a temp dir in tests)

service=$(unit_of "$ROLE")
token_file="$ROOT/etc/rancher/k3s/token"

umask 077
tmp=$(mktemp "$token_file.XXXXXX")
cat >"$tmp"
if [ ! -s "$tmp" ]; then
  rm -f "$tmp"
  echo "no cluster token was given on stdin to $NODE_NAME-join" >&2
  exit 1
fi
if cmp -s "$tmp" "$token_file" && systemctl is-active --quiet "$service"; then
  rm -f "$tmp"
  echo "$service on $NODE_NAME already runs with this cluster token"
  exit 0
fi
mv -f "$tmp" "$token_file"
start_k3s "$service" "$NODE_NAME" "$WAIT_SECONDS"
if [ "$ROLE" = server ]; then wait_server_ready "$NODE_NAME" "$WAIT_SECONDS"; fi
echo "k3s ($ROLE) on $NODE_NAME runs with the cluster token"
