#!/usr/bin/env bash
# Builds, once, what the image and cluster tiers make images from (no image can be pulled here),
# into a cache keyed by these inputs:
#   root-amd64.tar   a ros:<distro>-ros-base root, laid out like the official one: Debian bookworm,
#                    the ROS 2 Jazzy wheels (rclpy, rmw_fastrtps_cpp, std_msgs, Fast DDS 2.14 with
#                    its `fastdds` tool) in /opt/ros/jazzy (a venv), /ros_entrypoint.sh sourcing
#                    setup.bash, so `ros2` is on the PATH only after the entrypoint; ros2 is ours
#                    (rosimage/ros2: ros2cli has no wheel), the nodes and DDS are ROS 2's own.
#   root-arm64.tar   the same layout for arm64 (debootstrapped under qemu-user); PyPI has no
#                    aarch64 wheels of ROS 2, so its /opt/ros/jazzy has no rclpy: it is built
#                    into images, never run.
#   apt/             a flat apt repository (trusted, served by the tiers on loopback) with
#                    ros-<distro>-demo-nodes-cpp and -py for both arches and both distros: the
#                    demos' talker and listener (rosimage/demo_node.py, real rclpy). Their
#                    postinst records the machine the install ran on (`uname -m`) and a random id,
#                    so a test can tell which arch ran a RUN step and whether a layer was rebuilt
#                    or came from a cache.
#   pause.tar        the pod sandbox (pause.c, static), an OCI archive.
# Usage: test/image/images.sh → prints one line each: "root-amd64 <tar>", "root-arm64 <tar>",
# "apt <dir>", "pause <archive> <image name> <manifest digest>".
# Cache: $ROSFLEET_TOOLCHAIN (else ~/.cache/rosfleet-toolchain)/images/<key>/. Needs root and
# qemu-user binfmt for arm64 (the tiers register it first).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WHEELS=(ros-jazzy-rclpy==7.1.6 ros-jazzy-rmw-fastrtps-cpp==8.4.3 ros-jazzy-std-msgs==5.3.6)
PACKAGES=python3,python3-venv,procps,iproute2,ca-certificates
DISTROS=(jazzy humble)
DEMO_VERSION=0.33.0-rosfleet1
PAUSE_NAME=rosfleet.local/pause:1
CACHE=${ROSFLEET_TOOLCHAIN:-${XDG_CACHE_HOME:-$HOME/.cache}/rosfleet-toolchain}/images
key=$(cat "$0" "$HERE/oci.py" "$HERE/pause.c" "$HERE"/rosimage/* | sha256sum | cut -c1-12)
OUT=$CACHE/$key
# The Debian mirror this machine's apt uses (not part of the key: any mirror serves the same).
MIRROR=$(bash "$HERE/../helpers/debian-mirror.sh" bookworm)
log() { printf 'images: %s\n' "$*" >&2; }

layer_of() { # ROOT LAYER_TAR: a reproducible layer of ROOT.
  tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 \
    --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* -C "$1" -cf "$2" .
}

# build_root ARCH ROOT: the ros-base root of ARCH as $OUT.tmp/root-ARCH.tar.
build_root() {
  local arch=$1 root=$2 start
  start=$(date +%s)
  debootstrap --variant=minbase --arch="$arch" --include=$PACKAGES bookworm "$root" \
    "$MIRROR" >"$OUT.tmp/debootstrap-$arch.log" 2>&1 ||
    { tail -n 20 "$OUT.tmp/debootstrap-$arch.log" >&2; return 1; }
  chroot "$root" python3 -m venv /opt/ros/jazzy
  install -m 0755 "$HERE/rosimage/ros2" "$root/opt/ros/jazzy/bin/ros2"
  install -m 0755 "$HERE/rosimage/ros_entrypoint.sh" "$root/ros_entrypoint.sh"
  cp "$HERE/rosimage/setup.bash" "$root/opt/ros/jazzy/setup.bash"
  if [ "$arch" = amd64 ]; then
    # pip in the root reaches PyPI with this machine's name servers and certificate
    # authorities, in an environment of its own (the host's points at files the root lacks).
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$root/tmp/ca.crt"
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root PIP_CERT=/tmp/ca.crt \
      PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
      chroot "$root" /opt/ros/jazzy/bin/pip install -q --no-cache-dir "${WHEELS[@]}"
    rm -f "$root/tmp/ca.crt"
    # Like a ROS distro's setup.bash, it puts the libraries on LD_LIBRARY_PATH (here the
    # wheels' own folders, which their Python bootstrapper would otherwise add for Python
    # alone), so the C++ tools run, fast-discovery-server among them.
    # shellcheck disable=SC2016 # expanded when setup.bash is sourced
    printf 'export LD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\n' \
      "$(chroot "$root" /opt/ros/jazzy/bin/python3 -c 'import os; print(os.environ["LD_LIBRARY_PATH"])')" \
      >>"$root/opt/ros/jazzy/setup.bash"
  fi
  : >"$root/etc/resolv.conf"
  rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/* "$root/root/.cache"
  # mktemp made the root 0700: the image's / must be open to the non-root user pods run as.
  chmod 0755 "$root"
  layer_of "$root" "$OUT.tmp/root-$arch.tar"
  log "root-$arch built in $(($(date +%s) - start)) s"
}

# demo_package DISTRO LANG ARCH: ros-DISTRO-demo-nodes-LANG for ARCH into $OUT.tmp/apt.
demo_package() {
  local distro=$1 lang=$2 arch=$3 dir role
  local name=ros-$distro-demo-nodes-$lang prefix=opt/ros/$distro
  dir=$OUT.tmp/pkg/$name-$arch
  mkdir -p "$dir/DEBIAN" "$dir/$prefix/lib/demo_nodes_$lang" "$dir/$prefix/share/demo_nodes_$lang"
  install -m 0644 "$HERE/rosimage/demo_node.py" "$dir/$prefix/lib/demo_nodes_$lang/demo_node.py"
  for role in talker listener; do
    printf '#!/bin/sh\nexec /%s/bin/python3 /%s/lib/demo_nodes_%s/demo_node.py %s %s "$@"\n' \
      "$prefix" "$prefix" "$lang" "$lang" "$role" >"$dir/$prefix/lib/demo_nodes_$lang/$role"
    chmod 0755 "$dir/$prefix/lib/demo_nodes_$lang/$role"
  done
  cat >"$dir/DEBIAN/control" <<EOF
Package: $name
Version: $DEMO_VERSION
Architecture: $arch
Maintainer: rosfleet tests <tests@rosfleet.invalid>
Section: misc
Priority: optional
Description: rosfleet's stand-in for the ROS 2 demo nodes ($lang talker and listener)
EOF
  cat >"$dir/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
# Where and which time this install ran: the image tier reads both from the built image.
uname -m >/$prefix/share/demo_nodes_$lang/installed-on
cat /proc/sys/kernel/random/uuid >/$prefix/share/demo_nodes_$lang/install-id
EOF
  chmod 0755 "$dir/DEBIAN/postinst"
  dpkg-deb --root-owner-group -Zgzip --build "$dir" "$OUT.tmp/apt/${name}_${DEMO_VERSION}_$arch.deb" >/dev/null
}

build_apt() {
  local distro lang arch
  mkdir -p "$OUT.tmp/apt"
  for distro in "${DISTROS[@]}"; do
    for lang in cpp py; do
      for arch in amd64 arm64; do demo_package "$distro" "$lang" "$arch"; done
    done
  done
  (cd "$OUT.tmp/apt" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages)
  rm -rf "$OUT.tmp/pkg"
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

if [ ! -s "$OUT/pause.digest" ]; then
  rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
  roots=()
  trap 'rm -rf "${roots[@]}"' EXIT
  for arch in amd64 arm64; do
    roots+=("$(mktemp -d "/tmp/rosfleet-ros-root-$arch.XXXXXX")")
    build_root "$arch" "${roots[-1]}"
  done
  build_apt
  build_pause
  rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
  # Images of other inputs are not used again.
  find "$CACHE" -mindepth 1 -maxdepth 1 ! -path "$OUT" -exec rm -rf {} +
  log "cached in $OUT"
fi
printf 'root-amd64 %s\n' "$OUT/root-amd64.tar"
printf 'root-arm64 %s\n' "$OUT/root-arm64.tar"
printf 'apt %s\n' "$OUT/apt"
printf 'pause %s %s %s\n' "$OUT/pause.tar" "$PAUSE_NAME" "$(cat "$OUT/pause.digest")"
