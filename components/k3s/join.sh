#!/usr/bin/env bash
# Joins this machine to the cluster, as root: the token arrives on stdin (never on a command
# line, never in the environment) and goes to a 0600 file that config.yaml's token-file names;
# then k3s (re)starts with it, bounded. An agent is given the agent token, which admits agents
# only; a joining server the server token and, on a second line, the agent token, whose
# password goes to its agent-token-file (every server admits agents with the same one).
# Written to the machine by install.sh and run by the `<name>-join` step as
# `bash /etc/rancher/k3s/rosfleet-join.sh`. A new token (the server was reinstalled) restarts
# k3s with it; the same token changes nothing.
# Parameters (set by the caller):
#   NODE_NAME     Kubernetes node name
#   ROLE          server | agent
#   WAIT_SECONDS  how long k3s may take to start, and a server to report Ready
#   ROOT          filesystem prefix ("" on a real machine; a temp dir in tests)

service=$(unit_of "$ROLE")
token_file="$ROOT/etc/rancher/k3s/token"
agent_file="$ROOT/etc/rancher/k3s/agent-token"

umask 077
IFS= read -r token || true
IFS= read -r agent_token || true
if [ -z "$token" ] || { [ "$ROLE" = server ] && [ -z "$agent_token" ]; }; then
  echo "no cluster token was given on stdin to $NODE_NAME-join" >&2
  exit 1
fi
changed=false
# put (lib.sh) writes through a 0600 temp file with printf, a builtin: no token on a command line.
if put "$token_file" "$token"; then changed=true; fi
if [ "$ROLE" = server ] && put "$agent_file" "${agent_token##*:}"; then changed=true; fi
if [ "$changed" = false ] && systemctl is-active --quiet "$service"; then
  echo "$service on $NODE_NAME already runs with this cluster token"
  exit 0
fi
start_k3s "$service" "$NODE_NAME" "$WAIT_SECONDS"
if [ "$ROLE" = server ]; then wait_server_ready "$NODE_NAME" "$WAIT_SECONDS"; fi
echo "k3s ($ROLE) on $NODE_NAME runs with the cluster token"
