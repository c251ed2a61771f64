#!/bin/sh
# Stand-in for k3s's install.sh (get.k3s.io) on the e2e tier's container hosts, given to
# rosfleet as k3s.airgap.installScript and run as `sh <it> <server|agent>`. Like the real
# installer with INSTALL_K3S_SKIP_DOWNLOAD=true: the binary must already be at
# /usr/local/bin/k3s; it writes the service unit, k3s-killall.sh and the uninstall script, and
# starts the service unless INSTALL_K3S_SKIP_START=true.
set -eu
role=${1:-server}
if [ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" != true ]; then
  echo "[ERROR] the stand-in installer only installs air-gapped (INSTALL_K3S_SKIP_DOWNLOAD=true)" >&2
  exit 1
fi
bin=/usr/local/bin
[ -x "$bin/k3s" ] || {
  echo "[ERROR] $bin/k3s is missing" >&2
  exit 1
}
unit=k3s
[ "$role" = agent ] && unit=k3s-agent
echo "[INFO]  Installing k3s $INSTALL_K3S_VERSION ($role, stand-in)"
mkdir -p /etc/systemd/system
printf '[Unit]\nDescription=Lightweight Kubernetes (stand-in)\n[Service]\nType=notify\nExecStart=%s/k3s %s\n' "$bin" "$role" >"/etc/systemd/system/$unit.service"

cat >"$bin/k3s-killall.sh" <<'KILLALL'
#!/bin/sh
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"
for unit in k3s k3s-agent; do systemctl stop "$unit"; done
KILLALL
cat >"$bin/$unit-uninstall.sh" <<UNINSTALL
#!/bin/sh
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
$bin/k3s-killall.sh
systemctl disable $unit
rm -f /etc/systemd/system/$unit.service /var/log/$unit.log
# The binary and killall stay while the other role's uninstall script is there.
other=k3s-agent-uninstall.sh
[ $unit = k3s-agent ] && other=k3s-uninstall.sh
if [ ! -x "$bin/\$other" ]; then
  rm -rf /etc/rancher/k3s /var/lib/rancher/k3s /var/log/k3s-components
  rm -f $bin/k3s $bin/k3s-killall.sh
fi
rm -f "\$0"
UNINSTALL
chmod 0755 "$bin/k3s-killall.sh" "$bin/$unit-uninstall.sh"
if [ "${INSTALL_K3S_SKIP_START:-}" != true ]; then systemctl restart "$unit"; fi
