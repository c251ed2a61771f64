#!/usr/bin/env bash
# Builds the cluster tier's two images as OCI archives, once, into a cache keyed by their inputs
# (no image can be pulled here):
#   ros-jazzy.tar  laid out like the official ros:<distro>-ros-base: a Debian bookworm root, the
#                  ROS 2 Jazzy wheels (rclpy, rmw_fastrtps_cpp, std_msgs, Fast DDS 2.14 with its
#                  `fastdds` tool) in /opt/ros/jazzy, /ros_entrypoint.sh sourcing setup.bash, so
#                  `ros2` is on the PATH only after the entrypoint; ros2 is ours (rosimage/ros2:
#                  ros2cli has no wheel), the nodes and DDS are ROS 2's own.
#   pause.tar      the pod sandbox (pause.c, static).
# Usage: test/cluster/images.sh → prints "<archive> <image name> <manifest digest>" per image.
# Cache: $ROSFLEET_TOOLCHAIN (else ~/.cache/rosfleet-toolchain)/images/<key>/. Needs root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WHEELS=(ros-jazzy-rclpy==7.1.6 ros-jazzy-rmw-fastrtps-cpp==8.4.3 ros-jazzy-std-msgs==5.3.6)
PACKAGES=python3,python3-venv,procps,iproute2,ca-certificates
ROS_NAME=docker.io/rosfleet/ros-test:jazzy-ros-base
PAUSE_NAME=rosfleet.local/pause:1
CACHE=${ROSFLEET_TOOLCHAIN:-${XDG_CACHE_HOME:-$HOME/.cache}/rosfleet-toolchain}/images
key=$(cat "$0" "$HERE/oci.py" "$HERE/pause.c" "$HERE"/rosimage/* | sha256sum | cut -c1-12)
OUT=$CACHE/$key
log() { printf 'images: %s\n' "$*" >&2; }

layer_of() { # ROOT LAYER_TAR: a reproducible layer of ROOT.
  tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 \
    --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* -C "$1" -cf "$2" .
}

build_ros() {
  local root=$1 start
  start=$(date +%s)
  debootstrap --variant=minbase --include=$PACKAGES bookworm "$root" \
    http://deb.debian.org/debian >"$OUT.tmp/debootstrap.log" 2>&1 ||
    { tail -n 20 "$OUT.tmp/debootstrap.log" >&2; return 1; }
  # pip in the root reaches PyPI with this machine's name servers and certificate authorities,
  # in an environment of its own (the host's points at files the root does not have).
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$root/tmp/ca.crt"
  chroot "$root" python3 -m venv /opt/ros/jazzy
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root PIP_CERT=/tmp/ca.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
    chroot "$root" /opt/ros/jazzy/bin/pip install -q --no-cache-dir "${WHEELS[@]}"
  rm -f "$root/tmp/ca.crt"
  install -m 0755 "$HERE/rosimage/ros2" "$root/opt/ros/jazzy/bin/ros2"
  # Like a ROS distro's setup.bash, it puts the libraries on LD_LIBRARY_PATH (here the wheels'
  # own folders, which their Python bootstrapper would otherwise add for Python alone), so the
  # C++ tools run, fast-discovery-server among them.
  {
    cat "$HERE/rosimage/setup.bash"
    # shellcheck disable=SC2016 # expanded when setup.bash is sourced
    printf 'export LD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\n' \
      "$(chroot "$root" /opt/ros/jazzy/bin/python3 -c 'import os; print(os.environ["LD_LIBRARY_PATH"])')"
  } >"$root/opt/ros/jazzy/setup.bash"
  install -m 0755 "$HERE/rosimage/ros_entrypoint.sh" "$root/ros_entrypoint.sh"
  install -D -m 0644 "$HERE/rosimage/demo_node.py" "$root/opt/ros/jazzy/share/rosfleet-test/demo_node.py"
  local lang role
  for lang in cpp py; do
    mkdir -p "$root/opt/ros/jazzy/lib/demo_nodes_$lang"
    for role in talker listener; do
      printf '#!/bin/sh\nexec /opt/ros/jazzy/bin/python3 /opt/ros/jazzy/share/rosfleet-test/demo_node.py %s %s "$@"\n' \
        "$lang" "$role" >"$root/opt/ros/jazzy/lib/demo_nodes_$lang/$role"
      chmod 0755 "$root/opt/ros/jazzy/lib/demo_nodes_$lang/$role"
    done
  done
  : >"$root/etc/resolv.conf"
  rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/* "$root/root/.cache"
  # mktemp made the root 0700: the image's / must be open to the non-root user pods run as.
  chmod 0755 "$root"
  layer_of "$root" "$OUT.tmp/ros.layer"
  python3 "$HERE/oci.py" "$OUT.tmp/ros.layer" "$ROS_NAME" \
    '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","LANG=C.UTF-8","ROS_DISTRO=jazzy"],"Entrypoint":["/ros_entrypoint.sh"],"Cmd":["bash"]}' \
    "$OUT.tmp/ros-jazzy.tar" >"$OUT.tmp/ros-jazzy.digest"
  rm -f "$OUT.tmp/ros.layer"
  log "ros-jazzy built in $(($(date +%s) - start)) s"
}

build_pause() {
  local root=$OUT.tmp/pause-root
  mkdir -p "$root"
  gcc -static -O2 -o "$root/pause" "$HERE/pause.c"
  layer_of "$root" "$OUT.tmp/pause.layer"
  python3 "$HERE/oci.py" "$OUT.tmp/pause.layer" "$PAUSE_NAME" '{"Entrypoint":["/pause"]}' \
    "$OUT.tmp/pause.tar" >"$OUT.tmp/pause.digest"
  rm -rf "$root" "$OUT.tmp/pause.layer"
}

if [ ! -s "$OUT/ros-jazzy.digest" ] || [ ! -s "$OUT/pause.digest" ]; then
  rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
  root=$(mktemp -d /tmp/rosfleet-ros-root.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  build_ros "$root"
  build_pause
  rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
  # Images of other inputs are not used again.
  find "$CACHE" -mindepth 1 -maxdepth 1 ! -path "$OUT" -exec rm -rf {} +
  log "cached in $OUT"
fi
printf '%s %s %s\n' "$OUT/ros-jazzy.tar" "$ROS_NAME" "$(cat "$OUT/ros-jazzy.digest")"
printf '%s %s %s\n' "$OUT/pause.tar" "$PAUSE_NAME" "$(cat "$OUT/pause.digest")"
