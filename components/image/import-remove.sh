#!/usr/bin/env bash
# The undo of import.sh, as root: the image's names leave k3s's containerd (when k3s is still
# there) and Docker's tag goes; Docker's build cache stays, so a new lab builds fast. Idempotent.
# Parameters: ROOT, TAG, REPOSITORY (as import.sh).

K3S="$ROOT/usr/local/bin/k3s"
if [ -x "$K3S" ]; then
  "$K3S" ctr -n k8s.io images ls -q | while read -r name; do
    if [ "$name" = "$TAG" ] || [[ $name == "$REPOSITORY@"* ]]; then
      "$K3S" ctr -n k8s.io images rm "$name" >/dev/null
      echo "removed $name from k3s"
    fi
  done
fi
# A container of yours may still use the tag: the lab goes anyway, the tag stays, and says so.
if docker image inspect "$TAG" >/dev/null 2>&1; then
  if docker image rm "$TAG" >/dev/null; then
    echo "removed $TAG from Docker"
  else
    echo "left $TAG in Docker (docker image rm $TAG when nothing uses it)" >&2
  fi
fi
