#!/usr/bin/env bash
# Prints the Debian mirror this machine's own apt uses (the URI of its first `deb` source for
# SUITE, else of its first source for a release suite: a trixie machine's mirror serves bookworm
# too; never a -security or -updates one), so the tiers that debootstrap a root go where apt goes: a machine behind a local
# mirror or proxy works, and the repository names no package host.
# Usage: test/helpers/debian-mirror.sh [SUITE]   (SUITE defaults to bookworm)
# Reads deb822 files (sources.list.d/*.sources) and one-line lists (sources.list,
# sources.list.d/*.list) under $APT_ETC (default /etc/apt). $DEBIAN_MIRROR, when set, wins.
set -euo pipefail
suite=${1:-bookworm}
if [ -n "${DEBIAN_MIRROR:-}" ]; then
  printf '%s\n' "$DEBIAN_MIRROR"
  exit 0
fi
etc=${APT_ETC:-/etc/apt}
shopt -s nullglob
deb822=("$etc"/sources.list.d/*.sources)
lists=()
[ -f "$etc/sources.list" ] && lists+=("$etc/sources.list")
lists+=("$etc"/sources.list.d/*.list)

found=""
if [ ${#deb822[@]} -gt 0 ]; then
  # A stanza ends at a blank line; it counts when Types has deb, Suites has SUITE, and it is
  # not disabled (Enabled: no).
  found=$(awk -v suite="$suite" '
    function flush(  u, s, n, i) {
      if (types ~ /(^| )deb( |$)/ && enabled != "no" && uris != "") {
        split(uris, u, " "); n = split(suites, s, " ")
        for (i = 1; i <= n; i++) {
          if (s[i] == suite && exact == "") exact = u[1]
          if (s[i] !~ /[-\/]/ && release == "") release = u[1]
        }
      }
      types = ""; suites = ""; uris = ""; enabled = ""
    }
    /^[ \t]*#/ { next }
    /^[ \t]*$/ { flush(); next }
    {
      key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^[ \t]+/, ""); val = $0
      if (key == "types") types = val
      else if (key == "suites") suites = val
      else if (key == "uris") uris = val
      else if (key == "enabled") enabled = tolower(val)
    }
    END { flush(); print (exact != "" ? exact : release) }
  ' "${deb822[@]}")
fi
if [ -z "$found" ] && [ ${#lists[@]} -gt 0 ]; then
  # deb [options] URI SUITE COMPONENT...
  found=$(awk -v suite="$suite" '
    $1 != "deb" { next }
    {
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if ($(i + 1) == suite && exact == "") exact = $i
      if ($(i + 1) !~ /[-\/]/ && release == "") release = $i
    }
    END { print (exact != "" ? exact : release) }
  ' "${lists[@]}")
fi
if [ -z "$found" ]; then
  echo "debian-mirror: no 'deb' source for suite '$suite' or a release suite in $etc/sources.list or $etc/sources.list.d; set DEBIAN_MIRROR to a Debian mirror's URL" >&2
  exit 1
fi
printf '%s\n' "${found%/}"
