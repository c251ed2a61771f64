#!/usr/bin/env bash
# Reconciles one node through the Kubernetes API, run as root on the first server: waits
# until it is Ready, then applies its labels, taints and cordon. k3s's --node-label and
# --node-taint only act when a node registers; this makes later changes take effect.
# What rosfleet set last time is kept in annotations, so removed labels and taints are removed.
# Parameters (set by the caller):
#   NODE_NAME     the node
#   LABELS        one key=value per line
#   TAINTS        one key=value:Effect (or key:Effect) per line
#   CORDON        true: unschedulable
#   WAIT_SECONDS  how long the node may take to register and be Ready
#   ROOT          filesystem prefix ("" on a real machine; a temp dir in tests)

kubectl() { "$K3S" kubectl "$@"; }
# `kubectl taint` takes the type and the name apart ("nodes NAME"); it rejects "node/NAME".
node="node/$NODE_NAME"

wait_node_ready "$NODE_NAME" "$WAIT_SECONDS" \
  "node $NODE_NAME did not register as Ready within ${WAIT_SECONDS}s: on it, see journalctl -u k3s-agent (can it reach the server on 6443/tcp?)"

annotation() {
  kubectl get "$node" -o "jsonpath={.metadata.annotations.rosfleet\\.dev/$1}" 2>/dev/null || true
}

mapfile -t desired_labels < <(printf '%s\n' "$LABELS" | sed '/^$/d')
mapfile -t desired_taints < <(printf '%s\n' "$TAINTS" | sed '/^$/d')
label_keys=$(printf '%s\n' "${desired_labels[@]}" | sed -n 's/=.*//p' | sort | paste -sd, -)
taint_keys=$(printf '%s\n' "${desired_taints[@]}" | sed -n 's/^\([^=:]*\)\(=[^:]*\)\{0,1\}:\(.*\)$/\1:\3/p' | sort | paste -sd, -)

IFS=, read -r -a old_labels <<<"$(annotation labels)"
for key in "${old_labels[@]}"; do
  case ",$label_keys," in *",$key,"*) ;; *) kubectl label "$node" "$key-" ;; esac
done
IFS=, read -r -a old_taints <<<"$(annotation taints)"
for key in "${old_taints[@]}"; do
  case ",$taint_keys," in *",$key,"*) ;; *) kubectl taint nodes "$NODE_NAME" "$key-" ;; esac
done

if [ "${#desired_labels[@]}" -gt 0 ]; then kubectl label --overwrite "$node" "${desired_labels[@]}"; fi
if [ "${#desired_taints[@]}" -gt 0 ]; then kubectl taint --overwrite nodes "$NODE_NAME" "${desired_taints[@]}"; fi
kubectl annotate --overwrite "$node" "rosfleet.dev/labels=$label_keys" "rosfleet.dev/taints=$taint_keys"

if [ "$CORDON" = true ]; then kubectl cordon "$node"; else kubectl uncordon "$node"; fi
