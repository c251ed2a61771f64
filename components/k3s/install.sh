#!/usr/bin/env bash
# Installs, reconfigures or upgrades k3s on one machine, as root. Idempotent: when the
# installed version, config.yaml and token already match and the service runs, it changes
# nothing. Settings live in config.yaml (not installer flags), so a re-run cannot drop them.
# Parameters (set by the caller):
#   NODE_NAME     Kubernetes node name
#   ROLE          server | agent
#   K3S_VERSION   release tag, e.g. v1.33.5+k3s1
#   CONFIG_YAML   the whole /etc/rancher/k3s/config.yaml (holds no secret)
#   READ_TOKEN    true: the cluster token arrives on stdin and goes to a 0600 file
#   JOIN_HOST     the server to join ("" for the first server); checked reachable first
#   INSTALL_URL   where the k3s install script is fetched from
#   WAIT_SECONDS  how long a server may take to report Ready
#   ROOT          filesystem prefix ("" on a real machine; a temp dir in tests)

# JOIN_HOST is a validated host name or address (no shell metacharacters).
if [ -n "$JOIN_HOST" ] && ! timeout 10 bash -c "exec 3<>/dev/tcp/$JOIN_HOST/6443" 2>/dev/null; then
  echo "$NODE_NAME cannot reach the k3s server at $JOIN_HOST:6443/tcp (nothing was changed here): check the server's address in the stack and open 6443/tcp on its firewall" >&2
  exit 1
fi

umask 077
conf_dir="$ROOT/etc/rancher/k3s"
bin_dir="$ROOT/usr/local/bin"
service=k3s
[ "$ROLE" = agent ] && service=k3s-agent
mkdir -p "$conf_dir"

changed=false
# Writes $2 to file $1 (mode 0600) when it differs. printf is a builtin, so the content
# never appears on a process command line.
put() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  printf '%s' "$2" >"$tmp"
  chmod 600 "$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$1"
    changed=true
  fi
}

if [ "$READ_TOKEN" = true ]; then
  token=$(cat)
  if [ -z "$token" ]; then
    echo "no cluster token was given on stdin" >&2
    exit 1
  fi
  put "$conf_dir/token" "$token"
  unset token
fi
put "$conf_dir/config.yaml" "$CONFIG_YAML"

if [ "$ROLE" = agent ]; then
  # The lab notes ran k3s-killall.sh first: a k3s server left running here (as a service or
  # started by hand) would keep the agent from joining.
  stray=false
  if systemctl is-active --quiet k3s 2>/dev/null; then
    stray=true
    systemctl disable --now k3s
  fi
  if pgrep -f 'k3s server' >/dev/null 2>&1; then stray=true; fi
  if [ "$stray" = true ]; then
    echo "stopping a stray k3s server on $NODE_NAME"
    if [ -x "$bin_dir/k3s-killall.sh" ]; then "$bin_dir/k3s-killall.sh"; else pkill -f 'k3s server' || true; fi
  fi
fi

installed=$(k3s --version 2>/dev/null | awk 'NR == 1 { print $3 }' || true)
if [ "$installed" != "$K3S_VERSION" ] || ! systemctl cat "$service" >/dev/null 2>&1; then
  echo "installing k3s $K3S_VERSION ($ROLE) on $NODE_NAME (found: ${installed:-none})"
  curl -sfL "$INSTALL_URL" | INSTALL_K3S_VERSION="$K3S_VERSION" sh -s - "$ROLE"
elif [ "$changed" = true ] || ! systemctl is-active --quiet "$service"; then
  echo "restarting $service on $NODE_NAME to apply its configuration"
  systemctl restart "$service"
else
  echo "k3s $K3S_VERSION ($ROLE) on $NODE_NAME is up to date"
fi

if [ "$ROLE" = server ]; then
  # Readiness gate: the next server is upgraded only when this one is back (HA keeps quorum).
  wait_node_ready "$NODE_NAME" "$WAIT_SECONDS" \
    "k3s server $NODE_NAME is not Ready after ${WAIT_SECONDS}s: see journalctl -u k3s on it"
  echo "node $NODE_NAME is Ready"
fi
