#!/usr/bin/env bash
# Collects the delivery check Jobs' report lines, run as root on the first server.
# Parameters (set by the caller):
#   NAMESPACE  where the Jobs run
#   NODES      the checked nodes, comma-separated (Job delivery-check-<node> each)
#   ROOT       filesystem prefix ("" on a real machine; a temp dir in tests)

IFS=, read -r -a checked <<<"$NODES"
for node in "${checked[@]}"; do
  line=$("$K3S" kubectl -n "$NAMESPACE" logs "job/delivery-check-$node" 2>/dev/null | grep '^ROSFLEET_DELIVERY ' | tail -n 1 || true)
  echo "${line:-no report from delivery-check-$node}"
done
