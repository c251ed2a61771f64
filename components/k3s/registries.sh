#!/usr/bin/env bash
# Writes k3s's /etc/rancher/k3s/registries.yaml (0600) from k3s.registries, as root, or removes
# it (REGISTRIES_YAML ""), and restarts k3s when the file changed: k3s reads it only at start.
# The `<name>-registries` step runs it before the install, so a new k3s starts with the file in
# place; on a server it waits for Ready before the next server's turn (HA keeps quorum).
# Idempotent: the same content changes nothing. The step's stdin (this script with its
# parameters) is a secret when the file holds credentials; printf is a builtin, so they never
# appear on a command line.
# Parameters (set by the caller):
#   NODE_NAME        Kubernetes node name
#   ROLE             server | agent
#   REGISTRIES_YAML  the whole registries.yaml ("" to remove it)
#   WAIT_SECONDS     how long k3s may take to restart, and a server to report Ready
#   ROOT             filesystem prefix ("" on a real machine; a temp dir in tests)

# The undo acts only for its own node: after a rename (or a replacement that installed first),
# the file is the new step's, and removing it would leave that k3s without its registries.
current=$(owner)
if [ -z "$REGISTRIES_YAML" ] && [ -n "$current" ] && [ "$current" != "$NODE_NAME $ROLE" ]; then
  echo "registries.yaml on this machine is now rosfleet's ${current##* } ${current% *}'s: left in place (not $NODE_NAME's)"
  exit 0
fi

service=$(unit_of "$ROLE")
changed=false
what=written
if [ -n "$REGISTRIES_YAML" ]; then
  (umask 077 && mkdir -p "$(dirname "$REGISTRIES_FILE")")
  if put "$REGISTRIES_FILE" "$REGISTRIES_YAML"; then changed=true; fi
elif [ -f "$REGISTRIES_FILE" ]; then
  rm -f "$REGISTRIES_FILE"
  changed=true
  what=removed
fi
if [ -z "$REGISTRIES_YAML" ]; then remove_empty_dirs; fi
if [ "$changed" = false ]; then
  echo "registries.yaml on $NODE_NAME is up to date"
elif ! systemctl is-active --quiet "$service"; then
  echo "registries.yaml on $NODE_NAME $what; $service is not running: it reads the file when it starts"
else
  echo "registries.yaml on $NODE_NAME $what: restarting $service to read it"
  start_k3s "$service" "$NODE_NAME" "$WAIT_SECONDS"
  if [ "$ROLE" = server ]; then wait_server_ready "$NODE_NAME" "$WAIT_SECONDS"; fi
fi
