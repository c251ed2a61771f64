#!/usr/bin/env bash
# Builds the tools the engine tier needs from the Go module proxy, pinned, into a cache outside
# the repository, and reuses what is already there:
#   pulumi                        the Pulumi CLI (no language host: tests use inline programs)
#   pulumi-resource-kubernetes    the kubernetes provider, used as an ambient plugin on PATH
# Usage: scripts/toolchain.sh [tool...]   (default: all). Prints the bin directory last.
# Cache: $ROSFLEET_TOOLCHAIN, else ${XDG_CACHE_HOME:-~/.cache}/rosfleet-toolchain.
set -euo pipefail

PULUMI_VERSION=v3.274.1
# The proxy has no tags of provider/v4; this pseudo-version is the newest it serves (Jan 2026).
K8S_PROVIDER_MODULE=github.com/pulumi/pulumi-kubernetes/provider/v4
K8S_PROVIDER_PSEUDO=v4.0.0-20260115033456-f47bc2d6f199
K8S_PROVIDER_VERSION=4.24.0

CACHE=${ROSFLEET_TOOLCHAIN:-${XDG_CACHE_HOME:-$HOME/.cache}/rosfleet-toolchain}
BIN=$CACHE/bin
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
export GOPATH=${GOPATH:-$CACHE/gopath} GOCACHE=${GOCACHE:-$CACHE/gocache}
mkdir -p "$BIN" "$CACHE/src"

log() { printf 'toolchain: %s\n' "$*" >&2; }

# built NAME STAMP: true when $BIN/NAME was built from exactly STAMP.
built() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.stamp" 2>/dev/null)" = "$2" ]; }

# timed NAME STAMP FUNCTION: runs FUNCTION unless NAME is built from STAMP; reports the time.
timed() {
  local name=$1 stamp=$2 build=$3 start
  if built "$name" "$stamp"; then
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

build_pulumi() {
  local dir
  dir=$(wrapper pulumi)
  cd "$dir"
  printf 'package tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' >tools.go
  go mod edit -require=github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION \
    -require=github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION \
    -replace=github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e
  go mod tidy
  go build -trimpath -o "$BIN/pulumi" \
    -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

build_kubernetes() {
  local dir src
  dir=$(wrapper kubernetes)
  cd "$dir"
  src=$(go mod download -json "$K8S_PROVIDER_MODULE@$K8S_PROVIDER_PSEUDO" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  # The provider's main embeds schema files that its generate.go writes (they are gitignored).
  cp -r "$src"/cmd/pulumi-resource-kubernetes/. .
  chmod -R u+w .
  # Its only replace (sdk/v4 => ../sdk) is local; the required sdk/v4 release is on the proxy.
  go mod edit -require="$K8S_PROVIDER_MODULE@$K8S_PROVIDER_PSEUDO"
  go mod tidy
  VERSION=$K8S_PROVIDER_VERSION go run generate.go
  go build -trimpath -o "$BIN/pulumi-resource-kubernetes" \
    -ldflags "-X $K8S_PROVIDER_MODULE/pkg/version.Version=$K8S_PROVIDER_VERSION" .
}

tools=("$@")
[ "${#tools[@]}" -gt 0 ] || tools=(pulumi kubernetes)
for tool in "${tools[@]}"; do
  case $tool in
  pulumi) (timed pulumi "$PULUMI_VERSION" build_pulumi) ;;
  kubernetes) (timed pulumi-resource-kubernetes "$K8S_PROVIDER_PSEUDO" build_kubernetes) ;;
  *)
    log "unknown tool $tool (pulumi, kubernetes)"
    exit 2
    ;;
  esac
done
printf '%s\n' "$BIN"
