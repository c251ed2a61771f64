#!/usr/bin/env bash
# Builds the tools the engine, lab and cluster tiers need from the Go module proxy, pinned, into a
# cache outside the repository, and reuses what is already there:
#   pulumi                        the Pulumi CLI (no language host: tests use inline programs)
#   pulumi-resource-kubernetes    the kubernetes provider, used as an ambient plugin on PATH
#   kube-apiserver, kube-controller-manager, kube-scheduler   a control plane (Kubernetes release)
#   kubectl                       of the same release (the e2e tier's k3s stand-in runs it)
#   etcd                          the API server's store
#   kwok                          nodes and pods simulated: no kubelet, no containers
#   kubelet, kube-proxy           real nodes for the cluster tier (same Kubernetes release)
#   containerd, containerd-shim-runc-v2, ctr   their container runtime (runc is Debian's)
#   pulumi-resource-docker-build  the docker-build provider (image tier), an ambient plugin too
#   buildkitd, buildctl           BuildKit, the builder the provider's embedded buildx talks to
# Usage: scripts/toolchain.sh [tool...]   (default: all). Prints the bin directory last.
# Cache: $ROSFLEET_TOOLCHAIN, else ${XDG_CACHE_HOME:-~/.cache}/rosfleet-toolchain.
set -euo pipefail

PULUMI_VERSION=v3.274.1
# The proxy has no tags of provider/v4; this pseudo-version is the newest it serves (Jan 2026).
K8S_PROVIDER_MODULE=github.com/pulumi/pulumi-kubernetes/provider/v4
K8S_PROVIDER_PSEUDO=v4.0.0-20260115033456-f47bc2d6f199
K8S_PROVIDER_VERSION=4.24.0
KUBERNETES_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
KWOK_VERSION=v0.8.0
CONTAINERD_VERSION=v2.4.2
DOCKER_BUILD_VERSION=v0.0.22
BUILDKIT_VERSION=v0.34.2

STUBS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/stubs
CACHE=${ROSFLEET_TOOLCHAIN:-${XDG_CACHE_HOME:-$HOME/.cache}/rosfleet-toolchain}
BIN=$CACHE/bin
# -mod=mod: `go build` itself adds the requirements and go.sum lines the wrappers lack (no
# `go mod tidy`, which fetches every module any platform or test could import). Binaries are
# linked with -s -w (no symbol table, no DWARF): nothing here debugs them, and linking is faster.
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
export GOPATH=${GOPATH:-$CACHE/gopath} GOCACHE=${GOCACHE:-$CACHE/gocache}
mkdir -p "$BIN" "$CACHE/src"

log() { printf 'toolchain: %s\n' "$*" >&2; }

# built NAME STAMP [OUTPUT...]: true when $BIN/NAME was built from exactly STAMP and the other
# outputs of the same build are there too.
built() {
  local output
  for output in "$1" "${@:3}"; do [ -x "$BIN/$output" ] || return 1; done
  [ "$(cat "$BIN/.$1.stamp" 2>/dev/null)" = "$2" ]
}

# timed NAME STAMP FUNCTION [OUTPUT...]: runs FUNCTION unless NAME (and the other OUTPUTs it
# makes) is built from STAMP; reports the time.
timed() {
  local name=$1 stamp=$2 build=$3 start
  if built "$name" "$stamp" "${@:4}"; then
    log "$name $stamp: cached"
    return 0
  fi
  start=$(date +%s)
  log "$name $stamp: building"
  "$build"
  printf '%s\n' "$stamp" >"$BIN/.$name.stamp"
  log "$name $stamp: built in $(($(date +%s) - start)) s"
}

# A throwaway module that requires exactly the given module versions.
wrapper() {
  local dir=$CACHE/src/$1
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'module rosfleet.local/%s\n\ngo 1.24\n' "$1" >"$dir/go.mod"
  printf '%s\n' "$dir"
}

# go_main NAME MODULE VERSION PACKAGE: builds the main package PACKAGE of MODULE@VERSION as NAME.
go_main() {
  local dir
  dir=$(wrapper "$1")
  cd "$dir"
  printf 'package tools\n\nimport _ "%s"\n' "$4" >tools.go
  go mod edit -require="$2@$3"
  go build -trimpath -ldflags "-s -w" -o "$BIN/$1" "$4"
}

# module_field MODULE@VERSION FIELD: a field (Dir, GoMod) of the downloaded module.
module_field() {
  go mod download -json "$1" | sed -n "s/^[[:space:]]*\"$2\": \"\\(.*\\)\",\$/\\1/p"
}

build_pulumi() {
  local dir
  dir=$(wrapper pulumi)
  cd "$dir"
  printf 'package tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' >tools.go
  go mod edit -require=github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION \
    -require=github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION \
    -replace=github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e
  go build -trimpath -o "$BIN/pulumi" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

build_kubernetes() {
  local dir src
  dir=$(wrapper kubernetes)
  cd "$dir"
  src=$(module_field "$K8S_PROVIDER_MODULE@$K8S_PROVIDER_PSEUDO" Dir)
  # The provider's main embeds schema files that its generate.go writes (they are gitignored).
  cp -r "$src"/cmd/pulumi-resource-kubernetes/. .
  chmod -R u+w .
  # Its only replace (sdk/v4 => ../sdk) is local; the required sdk/v4 release is on the proxy.
  go mod edit -require="$K8S_PROVIDER_MODULE@$K8S_PROVIDER_PSEUDO"
  VERSION=$K8S_PROVIDER_VERSION go run generate.go
  go build -trimpath -o "$BIN/pulumi-resource-kubernetes" \
    -ldflags "-s -w -X $K8S_PROVIDER_MODULE/pkg/version.Version=$K8S_PROVIDER_VERSION" .
}

# kubernetes_build NAME PACKAGE...: builds main packages of k8s.io/kubernetes into $BIN, in a
# wrapper module NAME.
kubernetes_build() {
  local name=$1 dir gomod staging=() module pkg
  shift
  dir=$(wrapper "$name")
  cd "$dir"
  {
    printf 'package tools\n\nimport (\n'
    for pkg in "$@"; do printf '\t_ "%s"\n' "$pkg"; done
    printf ')\n'
  } >tools.go
  # k8s.io/kubernetes replaces its staging modules (k8s.io/api, …) with folders of its own
  # repository; from the proxy each is the matching v0.x release.
  gomod=$(module_field "k8s.io/kubernetes@$KUBERNETES_VERSION" GoMod)
  while read -r module; do
    staging+=("-replace=$module=$module@v0.${KUBERNETES_VERSION#v1.}")
  done < <(sed -n 's|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\1|p' "$gomod")
  [ "${#staging[@]}" -gt 0 ] || {
    log "no staging replaces found in $gomod"
    return 1
  }
  go mod edit -go=1.26.0 -require="k8s.io/kubernetes@$KUBERNETES_VERSION" "${staging[@]}"
  local minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  pkg=k8s.io/component-base/version
  # The provider and kubectl read the server's version; an unstamped build reports v0.0.0.
  go build -trimpath -o "$BIN/" -ldflags "-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 \
    -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" "$@"
}

build_control_plane() {
  kubernetes_build control-plane k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
}

# The e2e tier's k3s stand-in serves `k3s kubectl` with it.
build_kubectl() { kubernetes_build kubectl k8s.io/kubernetes/cmd/kubectl; }

# The cluster tier's nodes: kubelet and kube-proxy of the control plane's release.
build_node() { kubernetes_build node k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy; }

# containerd 2.x (Debian's 1.6 works only through a kubelet fallback marked for removal). No
# btrfs snapshotter: it needs cgo and headers; overlayfs is what the nodes use.
build_containerd() {
  local dir module=github.com/containerd/containerd/v2 pkg
  dir=$(wrapper containerd)
  cd "$dir"
  {
    printf 'package tools\n\nimport (\n'
    for pkg in containerd containerd-shim-runc-v2 ctr; do printf '\t_ "%s/cmd/%s"\n' "$module" "$pkg"; done
    printf ')\n'
  } >tools.go
  go mod edit -go=1.26.6 -require="$module@$CONTAINERD_VERSION"
  go build -trimpath -tags no_btrfs -o "$BIN/" \
    -ldflags "-s -w -X $module/version.Version=$CONTAINERD_VERSION" \
    "$module/cmd/containerd" "$module/cmd/containerd-shim-runc-v2" "$module/cmd/ctr"
}

# The docker-build provider, with the two SDK-codegen modules it imports replaced by our stubs
# (scripts/stubs/README.md says why).
build_docker_build() {
  local dir module=github.com/pulumi/pulumi-docker-build
  dir=$(wrapper docker-build)
  cd "$dir"
  cp -r "$STUBS"/pulumi-language-dotnet "$STUBS"/pulumi-java .
  printf 'package tools\n\nimport _ "%s/provider/cmd/pulumi-resource-docker-build"\n' "$module" >tools.go
  go mod edit -go=1.26.0 -require="$module@$DOCKER_BUILD_VERSION" \
    -require=github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3@v3.107.0 \
    -require=github.com/pulumi/pulumi-java@v1.29.0 \
    -replace=github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3=./pulumi-language-dotnet \
    -replace=github.com/pulumi/pulumi-java=./pulumi-java
  go build -trimpath -o "$BIN/pulumi-resource-docker-build" \
    -ldflags "-s -w -X $module/provider.Version=${DOCKER_BUILD_VERSION#v}" \
    "$module/provider/cmd/pulumi-resource-docker-build"
}

# BuildKit: its go.mod has exclude directives, which `go install pkg@version` refuses, so the
# daemon and its CLI are built inside a copy of the module.
build_buildkit() {
  local dir src module=github.com/moby/buildkit
  dir=$CACHE/src/buildkit
  src=$(module_field "$module@$BUILDKIT_VERSION" Dir)
  rm -rf "$dir" && cp -r "$src" "$dir" && chmod -R u+w "$dir"
  cd "$dir"
  go build -trimpath -o "$BIN/" \
    -ldflags "-s -w -X $module/version.Version=$BUILDKIT_VERSION -X $module/version.Package=$module" \
    ./cmd/buildkitd ./cmd/buildctl
}

build_etcd() { go_main etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3; }

build_kwok() {
  go_main kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
  # kwok has no built-in behaviour: its Stages (from its own release) say what happens to nodes
  # (initialised, heartbeats) and pods (ready; a Job's pods complete; deleted pods go).
  local src stage
  src=$(module_field "sigs.k8s.io/kwok@$KWOK_VERSION" Dir)
  for stage in node/fast/node-initialize node/heartbeat/node-heartbeat pod/fast/pod-ready \
    pod/fast/pod-complete pod/fast/pod-delete; do
    printf -- '---\n'
    cat "$src/kustomize/stage/$stage.yaml"
  done >"$BIN/kwok-stages.yaml"
}

ALL=(pulumi kubernetes control-plane kubectl etcd kwok node containerd docker-build buildkit)
tools=("$@")
[ "${#tools[@]}" -gt 0 ] || tools=("${ALL[@]}")
for tool in "${tools[@]}"; do
  case $tool in
  pulumi) (timed pulumi "$PULUMI_VERSION" build_pulumi) ;;
  kubernetes) (timed pulumi-resource-kubernetes "$K8S_PROVIDER_PSEUDO" build_kubernetes) ;;
  control-plane) (timed kube-apiserver "$KUBERNETES_VERSION" build_control_plane kube-controller-manager kube-scheduler) ;;
  kubectl) (timed kubectl "$KUBERNETES_VERSION" build_kubectl) ;;
  etcd) (timed etcd "$ETCD_VERSION" build_etcd) ;;
  kwok) (timed kwok "$KWOK_VERSION" build_kwok) ;;
  node) (timed kubelet "$KUBERNETES_VERSION" build_node kube-proxy) ;;
  containerd) (timed containerd "$CONTAINERD_VERSION" build_containerd containerd-shim-runc-v2 ctr) ;;
  docker-build)
    # The stubs are part of what is built: a change to them rebuilds the plugin.
    stubs=$(cd "$STUBS" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
    (timed pulumi-resource-docker-build "$DOCKER_BUILD_VERSION-$stubs" build_docker_build)
    ;;
  buildkit) (timed buildkitd "$BUILDKIT_VERSION" build_buildkit buildctl) ;;
  *)
    log "unknown tool $tool (${ALL[*]})"
    exit 2
    ;;
  esac
done
printf '%s\n' "$BIN"
