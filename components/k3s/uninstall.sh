#!/usr/bin/env bash
# Removes k3s from one machine, as root: the undo of install.sh. Idempotent: with nothing
# installed it does nothing. It acts only on its own node: when the machine's k3s now belongs
# to another name or role (a rename, a role change, or a replacement that installed first),
# uninstalling would remove what was just installed, so it leaves it.
# Parameters (set by the caller):
#   NODE_NAME  Kubernetes node name
#   ROLE       server | agent
#   ROOT       filesystem prefix ("" on a real machine; a temp dir in tests)
#   AIRGAP_FILES  air-gap files copied to the SSH user's home, space-separated names
#                 rosfleet-<name> ("" for none)
#   KEEP_REGISTRIES  true when k3s.registries is set: registries.yaml stays (the
#                 `<name>-registries` step removes it when it goes, after this one)

# Root deletes the air-gap copies: only names rosfleet gives them (no path, no glob), checked
# before anything is removed.
set -f
for file in $AIRGAP_FILES; do
  if [[ ! $file =~ ^rosfleet-[A-Za-z0-9._+-]+$ ]]; then
    echo "refusing to remove air-gap file \"$file\" from $NODE_NAME: not a name rosfleet gives its copies (rosfleet-<name>, no /)" >&2
    exit 1
  fi
done
set +f

current=$(owner)
if [ -n "$current" ] && [ "$current" != "$NODE_NAME $ROLE" ]; then
  echo "k3s on this machine is now rosfleet's ${current##* } ${current% *}: left installed (not $NODE_NAME's $ROLE)"
  exit 0
fi
script="$ROOT/usr/local/bin/k3s-uninstall.sh"
[ "$ROLE" = agent ] && script="$ROOT/usr/local/bin/k3s-agent-uninstall.sh"
if [ -x "$script" ]; then
  echo "uninstalling k3s ($ROLE) from $NODE_NAME"
  keeping_registries "$KEEP_REGISTRIES" "$script"
else
  echo "k3s ($ROLE) is not installed on $NODE_NAME"
fi
# The uninstall script removes /etc/rancher/k3s; make sure the token file is gone even if not.
conf="$ROOT/etc/rancher/k3s"
rm -f "$conf/config.yaml" "$conf/token" "$conf/rosfleet-join.sh" "$OWNER_FILE"
# The folders install.sh made (0700) go too, when nothing else is in them.
remove_empty_dirs
if [ -n "$AIRGAP_FILES" ]; then
  home=$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)
  set -f
  for file in $AIRGAP_FILES; do
    [ -n "$home" ] && rm -f -- "$home/$file"
  done
  set +f
fi
