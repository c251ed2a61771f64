#!/usr/bin/env bash
# Functions shared by the k3s scripts; rendered in front of a script that lists this file.
# Needs ROOT (filesystem prefix: "" on a real machine) set before it.

# k3s by its full path: sudo's secure_path on RHEL-family machines lacks /usr/local/bin.
K3S="$ROOT/usr/local/bin/k3s"
# "<node name> <role>" of the k3s that rosfleet installed here (written by install.sh):
# an uninstall acts only on its own node, so a replaced or renamed step cannot remove its
# successor's install.
OWNER_FILE="$ROOT/etc/rancher/k3s/rosfleet-owner"
owner() { cat "$OWNER_FILE" 2>/dev/null || true; }

# unit_of ROLE: the systemd unit of a role; k3s names its uninstall script after it
# (/usr/local/bin/<unit>-uninstall.sh).
unit_of() { if [ "$1" = agent ]; then echo k3s-agent; else echo k3s; fi; }

# wait_node_ready NODE SECONDS MESSAGE: polls until NODE is Ready; after SECONDS, prints
# MESSAGE to stderr and fails.
wait_node_ready() {
  # Asked at least twice: a slow first answer alone never uses up the wait.
  local deadline=$((SECONDS + $2)) asked=0
  until [ "$("$K3S" kubectl get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)" = True ]; do
    asked=$((asked + 1))
    if [ "$asked" -gt 1 ] && [ "$SECONDS" -ge "$deadline" ]; then
      echo "$3" >&2
      return 1
    fi
    sleep 2
  done
}

# wait_server_ready NODE SECONDS: the readiness gate of a server (HA keeps quorum when the
# next server is changed only after this one is back).
wait_server_ready() {
  wait_node_ready "$1" "$2" "k3s server $1 is not Ready after $2s: see journalctl -u k3s on it"
  echo "node $1 is Ready"
}

# start_k3s SERVICE NODE SECONDS: (re)starts SERVICE. k3s units are Type=notify with no start
# timeout, so a k3s that cannot start (an agent with a wrong token) would block systemctl for
# ever: the wait is bounded, and the message says where to look.
start_k3s() {
  echo "starting $1 on $2"
  if ! timeout "$3" systemctl restart "$1"; then
    echo "$1 on $2 did not start within $3s: see journalctl -u $1 on it (an agent that cannot reach the server on 6443/tcp, or whose token the server rejects, waits here)" >&2
    return 1
  fi
}

# put FILE CONTENT: writes CONTENT to FILE (mode 0600) when it differs; true when it did.
# printf is a builtin, so the content never appears on a process command line.
put() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  printf '%s' "$2" >"$tmp"
  chmod 600 "$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
    rm -f "$tmp"
    return 1
  fi
  mv -f "$tmp" "$1"
}

# k3s's registries.yaml: written by the `<name>-registries` step, read by k3s at start only.
REGISTRIES_FILE="$ROOT/etc/rancher/k3s/registries.yaml"

# keeping "FILE..." COMMAND...: runs COMMAND (a k3s uninstall script, which removes
# /etc/rancher/k3s) and puts each FILE that existed back after it, mode and all.
keeping() {
  local files=$1 file saved status=0
  local -a kept=()
  shift
  for file in $files; do
    [ -f "$file" ] || continue
    saved=$(mktemp "$ROOT/etc/rancher/.rosfleet-keep.XXXXXX")
    cp -p "$file" "$saved"
    kept+=("$file" "$saved")
  done
  "$@" || status=$?
  set -- "${kept[@]}"
  while [ $# -gt 0 ]; do
    (umask 077 && mkdir -p "$(dirname "$1")")
    mv -f "$2" "$1"
    shift 2
  done
  return "$status"
}

# keeping_registries KEEP COMMAND...: COMMAND, with registries.yaml put back when KEEP is
# true: the file belongs to the `<name>-registries` step, which outlives a reinstall or a
# role change.
keeping_registries() {
  local keep=$1
  shift
  if [ "$keep" = true ]; then keeping "$REGISTRIES_FILE" "$@"; else "$@"; fi
}

# remove_empty_dirs: the folders rosfleet's steps made (0700) go, when nothing else is in them.
remove_empty_dirs() {
  local dir
  for dir in "$ROOT/etc/rancher/k3s" "$ROOT/etc/rancher" "$ROOT/var/lib/rancher/k3s" "$ROOT/var/lib/rancher"; do
    rmdir "$dir" 2>/dev/null || true
  done
}

# servers_stay_up NODE: fails, saying which and what to do, unless every server but NODE is
# Ready and etcd is healthy on the first server — before server NODE's etcd member may go.
servers_stay_up() {
  local listing down
  if ! listing=$(kubectl get nodes -l node-role.kubernetes.io/control-plane \
    -o 'jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}'); then
    echo "cannot list the cluster's servers on the first server: $1 stays (nothing was drained, deleted or uninstalled); see journalctl -u k3s there" >&2
    return 1
  fi
  down=$(awk -v leaving="$1" '$1 != leaving && $2 != "True" { printf "%s%s", sep, $1; sep = ", " }' <<<"$listing")
  if [ -n "$down" ]; then
    echo "server $1 cannot leave while $down is down: etcd would be left with a dead member among the rest and lose quorum (the API would go). Remove the dead server first (delete it from machines, pulumi up), or bring it back; then remove $1. Nothing was drained, deleted or uninstalled" >&2
    return 1
  fi
  if [ "$(kubectl get --raw /readyz/etcd 2>/dev/null || true)" != ok ]; then
    echo "etcd is not healthy on the first server: $1 stays until it is (see journalctl -u k3s there). Nothing was drained, deleted or uninstalled" >&2
    return 1
  fi
}

# remove_server_node NODE SECONDS: deletes server NODE's Node with `kubectl` (a function the
# caller defines: the first server's API). k3s's etcd finalizer on a server's Node makes the
# delete return only once its etcd member is removed; then waits for etcd to be healthy.
# Fails, saying so, when either takes longer than SECONDS: the uninstall must not go on.
remove_server_node() {
  if ! kubectl delete node "$1" --ignore-not-found --timeout="$2s"; then
    echo "server $1's node was not deleted within $2s: k3s removes its etcd member first; see journalctl -u k3s on the first server. Nothing was uninstalled: pulumi up again once etcd is healthy" >&2
    return 1
  fi
  local deadline=$((SECONDS + $2))
  until [ "$(kubectl get --raw /readyz/etcd 2>/dev/null || true)" = ok ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "etcd is not healthy on the first server $2s after $1's member was removed: see journalctl -u k3s there. $1 was not uninstalled yet: pulumi up again once etcd is healthy" >&2
      return 1
    fi
    sleep 2
  done
  echo "server $1 left the cluster: its etcd member is removed and etcd is healthy"
}
