#!/usr/bin/env bash
# Preflight: checks a machine before anything is installed on it, and says what to fix.
# Runs as the SSH user (not root). Parameters (set by the caller):
#   NODE_NAME      the machine's name in the stack
#   EXPECTED_ARCH  amd64 | arm64, as declared in the stack
#   KIND           laptop | pi | vm
#   NEED_DOCKER    true when k3s runs with --docker
#   NEED_CURL      true unless k3s is installed from air-gap files
#   MULTUS_NIC     with ros.discovery multus: the NIC pods' macvlan attaches to ("" otherwise)
#   NODE_IP        machines[].nodeIp: an address this machine must have ("" when unset)
#   FLANNEL_IFACE  machines[].flannelIface: an interface it must have, holding NODE_IP if set
#   ADOPT          machines[].adopt: a k3s that rosfleet did not install may be taken over
#   ROOT           filesystem prefix ("" on a real machine; a temp dir in tests)
# Prints "preflight ok: <name> arch=<arch> nic=<default NIC>" on success.

problems=()
problem() { problems+=("$1"); }
failed() {
  printf 'preflight failed on %s (nothing was installed):\n' "$NODE_NAME" >&2
  printf '  - %s\n' "$@" >&2
  exit 1
}

# k3s and every rosfleet step run as systemd services: on anything else the other checks (and
# the installer) would only fail further on, so this one is said alone.
os=$(uname -s)
if [ "$os" != Linux ]; then
  failed "os: this is $os; rosfleet installs k3s on Linux with systemd only (a Linux VM on a Mac, or Linux on the machine itself)"
fi
if [ ! -d "$ROOT/run/systemd/system" ]; then
  if grep -qi microsoft "$ROOT/proc/version" 2>/dev/null; then
    failed "systemd: WSL is running without systemd, which k3s needs: add [boot] systemd=true to /etc/wsl.conf, then wsl --shutdown and reopen it"
  fi
  failed "systemd: not running as this machine's init (no /run/systemd/system); k3s runs as a systemd service: use a distribution booted with systemd (Raspberry Pi OS, Ubuntu, Debian)"
fi

machine=$(uname -m)
case "$machine" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch=$machine ;;
esac
if [ "$arch" != "$EXPECTED_ARCH" ]; then
  problem "arch: the stack declares $EXPECTED_ARCH but uname -m says $machine ($arch): set arch: $arch on this machine in the stack"
fi

# Every later step runs as root through sudo -n, which fails rather than prompting.
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo -n)
  user=$(id -un)
  if ! command -v sudo >/dev/null 2>&1; then
    problem "sudo: not installed; install it (apt-get install sudo) and allow $user to use it without a password"
  elif ! sudo -n true >/dev/null 2>&1; then
    problem "sudo: asks $user for a password; allow it without one: echo '$user ALL=(ALL) NOPASSWD:ALL' | sudo tee /etc/sudoers.d/rosfleet"
  fi
fi

if [ "$KIND" = pi ]; then
  memory=off
  if [ -r "$ROOT/sys/fs/cgroup/cgroup.controllers" ]; then
    grep -qw memory "$ROOT/sys/fs/cgroup/cgroup.controllers" && memory=on
  elif [ -r "$ROOT/proc/cgroups" ]; then
    awk '$1 == "memory" && $4 == 1 { found = 1 } END { exit !found }' "$ROOT/proc/cgroups" && memory=on
  fi
  if [ "$memory" = off ]; then
    cmdline=/boot/firmware/cmdline.txt
    [ -e "$ROOT$cmdline" ] || cmdline=/boot/cmdline.txt
    problem "cgroups: the memory cgroup is disabled (k3s needs it): append 'cgroup_memory=1 cgroup_enable=memory' to the single line of $cmdline, then reboot"
  fi
  # Ubuntu's Raspberry Pi kernels ship flannel's vxlan module in a separate package.
  if ! "${as_root[@]}" modprobe -n vxlan >/dev/null 2>&1; then
    problem "vxlan: the kernel module flannel needs between nodes is missing: sudo apt-get install linux-modules-extra-raspi, then reboot"
  fi
fi

# Bounded: a wedged dockerd never answers.
if [ "$NEED_DOCKER" = true ] && ! timeout 20 "${as_root[@]}" docker info >/dev/null 2>&1; then
  problem "docker: not running, and docker: true makes k3s use it: install Docker (apt-get install docker.io), then sudo systemctl enable --now docker"
fi

nic=$(ip -o route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }' || true)
if [ -n "$MULTUS_NIC" ]; then
  if [ "$nic" != "$MULTUS_NIC" ]; then
    problem "nic: ros.discovery multus attaches pods to $MULTUS_NIC on every machine, but this one's default route is on ${nic:-no interface}: give the machines the same NIC name (netplan match: macaddress + set-name) or set ros.multus.interface"
  elif [ -d "$ROOT/sys/class/net/$MULTUS_NIC/wireless" ]; then
    problem "nic: $MULTUS_NIC is a Wi-Fi interface, and macvlan (ros.discovery multus) does not work on Wi-Fi: use a wired NIC"
  fi
fi

# "IFACE ADDRESS" per address of this machine (`ip -o addr`: one line each).
addresses() {
  ip -o addr show 2>/dev/null | awk '{ sub(/@.*/, "", $2); split($4, a, "/"); print $2, a[1] }'
}
if [ -n "$FLANNEL_IFACE" ] && ! ip -o link show dev "$FLANNEL_IFACE" >/dev/null 2>&1; then
  problem "flannelIface: this machine has no interface $FLANNEL_IFACE (it has $(ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); printf "%s%s", sep, $2; sep = ", " }')): set flannelIface to the interface on the lab's wired network"
elif [ -n "$NODE_IP" ]; then
  if ! addresses | awk -v ip="$NODE_IP" '$2 == ip { found = 1 } END { exit !found }'; then
    problem "nodeIp: $NODE_IP is not an address of this machine (it has $(addresses | awk '$2 !~ /^(127\.|::1$|fe80:)/ { printf "%s%s on %s", sep, $2, $1; sep = ", " }')): set nodeIp to its address on the network the lab's machines share"
  elif [ -n "$FLANNEL_IFACE" ] && ! addresses | awk -v i="$FLANNEL_IFACE" -v ip="$NODE_IP" '$1 == i && $2 == ip { found = 1 } END { exit !found }'; then
    problem "flannelIface: $NODE_IP (nodeIp) is not on $FLANNEL_IFACE, so nodes would reach this one at an address its pod traffic does not use: name the interface that holds it"
  fi
fi

# A k3s that rosfleet did not install (no owner file, which install.sh writes before it installs
# anything) is someone else's: its config.yaml would be overwritten, a server on an agent
# stopped, and on removal k3s's own uninstall would delete its datastore. Looked at as root:
# /etc/rancher/k3s (and a data dir) may be closed to the SSH user.
if [ "$ADOPT" != true ]; then
  found=()
  if "${as_root[@]}" test -e "$ROOT/usr/local/bin/k3s" 2>/dev/null; then found+=(/usr/local/bin/k3s); fi
  for unit in k3s k3s-agent; do
    if systemctl cat "$unit" >/dev/null 2>&1; then found+=("$unit.service"); fi
  done
  if "${as_root[@]}" test -d "$ROOT/var/lib/rancher/k3s" 2>/dev/null; then found+=(/var/lib/rancher/k3s); fi
  if [ "${#found[@]}" -gt 0 ] && ! "${as_root[@]}" test -e "$ROOT/etc/rancher/k3s/rosfleet-owner" 2>/dev/null; then
    list=$(printf ', %s' "${found[@]}")
    problem "k3s: a k3s rosfleet did not install is here (${list:2}); rosfleet leaves it alone. To hand it over set adopt: true on this machine in the stack: rosfleet then rewrites its /etc/rancher/k3s/config.yaml, stops a k3s server on an agent, and on removal or destroy runs k3s's uninstall, which deletes /var/lib/rancher/k3s (that cluster's data). Otherwise uninstall it (/usr/local/bin/k3s-uninstall.sh or k3s-agent-uninstall.sh) or use another machine"
  fi
fi

if [ "$NEED_CURL" = true ] && ! command -v curl >/dev/null 2>&1; then
  problem "curl: not installed; the k3s installer is fetched with it: apt-get install curl"
fi

if [ "${#problems[@]}" -gt 0 ]; then failed "${problems[@]}"; fi

echo "preflight ok: $NODE_NAME arch=$arch nic=${nic:-unknown}"
