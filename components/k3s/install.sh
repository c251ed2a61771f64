#!/usr/bin/env bash
# Installs, reconfigures or upgrades k3s on one machine, as root. Idempotent: when the
# installed version and config.yaml already match and the service runs, it changes nothing.
# Settings live in config.yaml (not installer flags), so a re-run cannot drop them.
# A joining machine (agent, or HA server after the first) gets its cluster token from the next
# step, `<name>-join`, which runs the join script written here with the token on its stdin:
# this step carries no secret, so its script can travel on stdin and show in preview diffs.
# Parameters (set by the caller):
#   NODE_NAME     Kubernetes node name
#   ROLE          server | agent
#   K3S_VERSION   release tag, e.g. v1.33.5+k3s1
#   CONFIG_YAML   the whole /etc/rancher/k3s/config.yaml (holds no secret)
#   JOIN_HOST     the server to join ("" for the first server); checked reachable first
#   JOIN_SCRIPT   the join step's script (join.sh, rendered), "" for the first server
#   INSTALL_URL   where the k3s install script is fetched from (unless air-gapped)
#   AIRGAP_INSTALLER, AIRGAP_BINARY, AIRGAP_IMAGES
#                 air-gapped: the install script, k3s binary and images tarball on this
#                 machine (names relative to the SSH user's home); "" when k3s is downloaded
#   AIRGAP_SHA256 digest of those files as the laptop has them (a change re-runs this)
#   REGISTRIES    k3s.registries as `<name>-registries` writes it, credentials shown as
#                 [secret] ("" for none): kept across a role change; here so that a change of
#                 it shows in this step's preview diff (the other step's may be all secret)
#   CLUSTER       agents only: the first server's install (its id), recorded in
#                 rosfleet-cluster; another one there means a new cluster (unset: not checked)
#   WAIT_SECONDS  how long k3s may take to start, and a server to report Ready
#   ROOT          filesystem prefix ("" on a real machine; a temp dir in tests)

# Checks that change nothing come first.
# JOIN_HOST is a validated host name or address (no shell metacharacters).
if [ -n "$JOIN_HOST" ] && ! timeout 10 bash -c "exec 3<>/dev/tcp/$JOIN_HOST/6443" 2>/dev/null; then
  echo "$NODE_NAME cannot reach the k3s server at $JOIN_HOST:6443/tcp (nothing was changed here): check the server's address in the stack and open 6443/tcp on its firewall" >&2
  exit 1
fi

# Air-gapped: the copied binary must be of k3s.version.
airgap_path() { # names of copied files are relative to the SSH user's home
  case "$1" in
    /*) echo "$1" ;;
    *) echo "$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)/$1" ;;
  esac
}
if [ -n "$AIRGAP_BINARY" ]; then
  binary=$(airgap_path "$AIRGAP_BINARY")
  # Asked from a private copy: on a local machine the file is the user's own, left as it is
  # (a copied one lacks the executable bit). Not in /tmp, which may be mounted noexec.
  check=$(mktemp "$ROOT/usr/local/bin/.rosfleet-k3s-check.XXXXXX" 2>/dev/null || mktemp)
  install -m 0700 "$binary" "$check"
  found=$("$check" --version 2>/dev/null | awk 'NR == 1 { print $3 }' || true)
  rm -f "$check"
  if [ "$found" != "$K3S_VERSION" ]; then
    echo "the air-gap k3s binary for $NODE_NAME is ${found:-not a k3s binary}, but k3s.version is $K3S_VERSION: give k3s.airgap the binaries of that release" >&2
    exit 1
  fi
fi

umask 077
conf_dir="$ROOT/etc/rancher/k3s"
bin_dir="$ROOT/usr/local/bin"
service=$(unit_of "$ROLE")

# This machine was rosfleet's node of the other role (the stack changed its role): remove that
# install first; its uninstall also clears /etc/rancher/k3s, so this comes before writing there.
previous=$(owner)
if [ -n "$previous" ] && [ "${previous##* }" != "$ROLE" ]; then
  old_uninstall="$bin_dir/$(unit_of "${previous##* }")-uninstall.sh"
  echo "$NODE_NAME was a k3s ${previous##* } and is now a $ROLE: uninstalling the ${previous##* } first"
  # A server of an HA cluster becoming an agent leaves etcd first: its Node is deleted through
  # the first server's API (the one it now joins), with its own admin credentials (the cluster's
  # CA signs them for every server), which removes its member before the uninstall.
  if [ "${previous##* }" = server ] && [ -n "$JOIN_HOST" ] && [ -f "$conf_dir/k3s.yaml" ]; then
    api=$JOIN_HOST
    case "$api" in *:*) api="[$api]" ;; esac
    kubectl() { "$K3S" kubectl --kubeconfig "$conf_dir/k3s.yaml" --server "https://$api:6443" "$@"; }
    remove_server_node "$NODE_NAME" "$WAIT_SECONDS"
  fi
  # The token goes with the old role: a server joins with the server token, an agent with the
  # agent token, so the join step's input differs by role and it hands over the new one.
  keep=""
  if [ -n "$REGISTRIES" ]; then keep="$REGISTRIES_FILE"; fi
  if [ -x "$old_uninstall" ]; then keeping "$keep" "$old_uninstall"; fi
  rm -f "$OWNER_FILE"
fi

if [ "$ROLE" = agent ]; then
  # The lab notes ran k3s-killall.sh first: a k3s server left running here (as a service or
  # started by hand) would keep the agent from joining. A k3s server is found by what it is:
  # the unit, or a process named k3s-server (k3s execs itself under that name) — never by
  # matching text, which this step's own command line could contain.
  stray=false
  if systemctl is-active --quiet k3s 2>/dev/null; then
    stray=true
    if ! timeout "$WAIT_SECONDS" systemctl disable --now k3s; then
      echo "the stray k3s server on $NODE_NAME did not stop within ${WAIT_SECONDS}s: see journalctl -u k3s on it" >&2
      exit 1
    fi
  fi
  if pgrep -x k3s-server >/dev/null 2>&1; then stray=true; fi
  if [ "$stray" = true ]; then
    echo "stopping a stray k3s server on $NODE_NAME"
    if [ -x "$bin_dir/k3s-killall.sh" ]; then "$bin_dir/k3s-killall.sh"; else pkill -x k3s-server || true; fi
  fi
fi

mkdir -p "$conf_dir"
# Claimed before anything of k3s is put in place: an install cut short is still rosfleet's to
# finish (preflight refuses a k3s without this file) and to remove.
printf '%s %s\n' "$NODE_NAME" "$ROLE" >"$OWNER_FILE"
changed=false
# The first server makes the agents' password once (agent-token-file in config.yaml); k3s
# writes the agent token from it, which is all an agent is given. The other servers get the
# same password from their join step.
if [ "$ROLE" = server ] && [ -z "$JOIN_HOST" ] && [ ! -s "$conf_dir/agent-token" ]; then
  put "$conf_dir/agent-token" "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" || true
  changed=true
fi
if put "$conf_dir/config.yaml" "$CONFIG_YAML"; then changed=true; fi
if [ -n "$JOIN_SCRIPT" ]; then put "$conf_dir/rosfleet-join.sh" "$JOIN_SCRIPT" || true; fi

# What runs here now, before an air-gap binary replaces it.
installed=$("$K3S" --version 2>/dev/null | awk 'NR == 1 { print $3 }' || true)

# Air-gapped: put the binary (and images) in place; a different binary means the installer
# must run again.
reinstall=false
place() { # place SOURCE DEST MODE: install SOURCE at DEST when they differ
  if ! cmp -s "$1" "$2"; then
    install -D -m "$3" "$1" "$2"
    reinstall=true
  fi
}
if [ -n "$AIRGAP_BINARY" ]; then
  place "$binary" "$K3S" 0755
  if [ -n "$AIRGAP_IMAGES" ]; then
    images=$(airgap_path "$AIRGAP_IMAGES")
    place "$images" "$ROOT/var/lib/rancher/k3s/agent/images/$(basename "$images")" 0644
  fi
fi

# The installer never starts k3s here (INSTALL_K3S_SKIP_START): a start is bounded below.
if [ "$reinstall" = true ] || [ "$installed" != "$K3S_VERSION" ] || ! systemctl cat "$service" >/dev/null 2>&1; then
  echo "installing k3s $K3S_VERSION ($ROLE) on $NODE_NAME (found: ${installed:-none})"
  # Bounded: the installer downloads k3s (~70 MB) with no time limit of its own.
  if [ -n "$AIRGAP_BINARY" ]; then
    run_installer() { INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_SKIP_START=true INSTALL_K3S_VERSION="$K3S_VERSION" timeout 600 sh "$(airgap_path "$AIRGAP_INSTALLER")" "$ROLE"; }
  else
    run_installer() { curl -sfL --connect-timeout 20 --max-time 120 "$INSTALL_URL" | INSTALL_K3S_SKIP_START=true INSTALL_K3S_VERSION="$K3S_VERSION" timeout 600 sh -s - "$ROLE"; }
  fi
  if ! run_installer; then
    echo "the k3s installer failed or did not finish within 600s on $NODE_NAME: check that it reaches get.k3s.io and github.com (or use k3s.airgap), then pulumi up again" >&2
    exit 1
  fi
  changed=true
fi

# The first server was installed anew (a new cluster, allowClusterReplacement): the token this
# agent holds is the old cluster's, which k3s-agent would retry for ever after a restart. It is
# dropped instead; the join step (whose token changed with the cluster) hands over the new one.
cluster_file="$conf_dir/rosfleet-cluster"
if [ -n "${CLUSTER:-}" ]; then
  if [ -f "$cluster_file" ] && [ "$(cat "$cluster_file")" != "$CLUSTER" ]; then
    echo "$NODE_NAME joins a new cluster (its first server was installed anew): its old token is dropped"
    rm -f "$conf_dir/token"
  fi
  printf '%s\n' "$CLUSTER" >"$cluster_file"
fi

if [ -n "$JOIN_HOST" ] && [ ! -s "$conf_dir/token" ]; then
  echo "k3s $K3S_VERSION ($ROLE) is installed on $NODE_NAME; it starts when $NODE_NAME-join gives it the cluster token"
  exit 0
fi
if [ "$changed" = true ] || ! systemctl is-active --quiet "$service"; then
  start_k3s "$service" "$NODE_NAME" "$WAIT_SECONDS"
else
  echo "k3s $K3S_VERSION ($ROLE) on $NODE_NAME is up to date"
fi

if [ "$ROLE" = server ]; then wait_server_ready "$NODE_NAME" "$WAIT_SECONDS"; fi
