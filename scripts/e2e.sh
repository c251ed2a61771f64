#!/usr/bin/env bash
# npm run test:e2e: the whole lab through Pulumi on container machines (test/e2e/e2e.test.ts).
# It needs the Pulumi command provider plugin, which the Go module proxy does not serve: found
# on PATH, or installed under ${PULUMI_HOME:-~/.pulumi}/plugins (`pulumi plugin install resource
# command <version>`, the version @pulumi/command pins). Without it, says so in one line and
# exits 0 — nothing is reported as passed. With it, builds (or reuses) the toolchain and runs
# the tier as root (Docker, debootstrap).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(node -p 'require("@pulumi/command/package.json").version')
plugin=$(command -v pulumi-resource-command 2>/dev/null || true)
if [ -z "$plugin" ]; then
  plugin=${PULUMI_HOME:-$HOME/.pulumi}/plugins/resource-command-v$version/pulumi-resource-command
fi
if [ ! -x "$plugin" ]; then
  echo "test:e2e did not run: no command provider plugin (pulumi-resource-command on PATH, or pulumi plugin install resource command v$version)"
  exit 0
fi

export ROSFLEET_COMMAND_PLUGIN_DIR
ROSFLEET_COMMAND_PLUGIN_DIR=$(dirname "$plugin")
export ROSFLEET_TOOLCHAIN_BIN
ROSFLEET_TOOLCHAIN_BIN=$(bash scripts/toolchain.sh)
exec npx mocha test/e2e/e2e.test.ts --timeout 1800000
