#!/usr/bin/env bash
# The dev stack's image without a registry, run as root on the one machine of the lab (the one
# running pulumi): Docker's own builder builds images/ros_demo for this machine's platform, and
# the image goes straight into k3s's containerd (`k3s ctr images import`), where the kubelet
# finds it by digest and never pulls. Idempotent: an unchanged build is Docker's cache and the
# same digest again.
# Parameters (set by the caller):
#   ROOT        filesystem prefix of k3s ("" on a real machine; a stand-in's in tests)
#   TAG         what Docker tags the build: <repository>:<distro>
#   REPOSITORY  the name pods use, as <repository>@sha256:<digest>
#   DISTRO      ros.distro (the Dockerfile's ROS_DISTRO)
#   CONTEXT, DOCKERFILE  relative to the project directory (the provider's working directory)
#   SOURCES     the context's sha256: a change of the sources is a change of this script
#   INSTALL     the k3s install this image goes into: a new k3s (its containerd empty) gets it again
# Prints exactly one line on stdout, <repository>@sha256:<digest>; Docker's and ctr's output go
# to stderr.

K3S="$ROOT/usr/local/bin/k3s"
ctr() { "$K3S" ctr -n k8s.io "$@"; }

echo "building $TAG (sources $SOURCES) for k3s install $INSTALL" >&2
if ! docker info >/dev/null 2>&1; then
  echo "Docker does not answer on this machine: the dev stack builds ros_demo with it. Install Docker Engine and start it (sudo systemctl enable --now docker), or set image.repository to build with a buildx builder and push to a registry" >&2
  exit 1
fi
[ -x "$K3S" ] || {
  echo "k3s is not installed at $K3S: the image goes into its containerd" >&2
  exit 1
}
docker build --build-arg "ROS_DISTRO=$DISTRO" -f "$DOCKERFILE" -t "$TAG" "$CONTEXT" >&2
# One pipe, no archive on disk: the image is a GB.
docker save "$TAG" | ctr images import - >&2
digest=$(ctr images ls "name==$TAG" | awk 'NR == 2 { print $3 }')
if [[ ! $digest =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "containerd holds no image $TAG after the import (ctr images ls printed \"$digest\")" >&2
  exit 1
fi
ref="$REPOSITORY@$digest"
# The kubelet asks containerd for the pod's reference as it is written: the digest name must
# exist beside the tag (an imported archive names only the tag).
ctr images tag --force "$TAG" "$ref" >&2
# Pinned: the kubelet's image garbage collection would remove an image no running pod uses,
# and nothing could pull it back.
for name in "$TAG" "$ref"; do
  ctr images label "$name" io.cri-containerd.pinned=pinned >/dev/null
done
# Earlier builds' digest names go (the tag has moved on; a running pod keeps its layers).
ctr images ls -q | while read -r name; do
  if [[ $name == "$REPOSITORY@"* ]] && [ "$name" != "$ref" ]; then
    ctr images rm "$name" >/dev/null
    echo "removed $name" >&2
  fi
done
echo "$ref"
