#!/usr/bin/env bash
# Functions shared by the k3s scripts; rendered in front of a script that lists this file.

# wait_node_ready NODE SECONDS MESSAGE: polls until NODE is Ready; after SECONDS, prints
# MESSAGE to stderr and fails.
wait_node_ready() {
  local deadline=$((SECONDS + $2))
  until [ "$(k3s kubectl get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)" = True ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$3" >&2
      return 1
    fi
    sleep 2
  done
}
