#!/usr/bin/env bash
# Sourced by every fake and stand-in: appends "<command> <args...>" to $FAKE_LOG, one line per
# call (newlines inside an argument are written as \n). Their state (what is installed,
# running, registered) lives in files under $FAKE_STATE.
fake_log() {
  local name
  name=$(basename "$0")
  { printf '%s' "$name"; printf ' %s' "${@//$'\n'/\\n}"; printf '\n'; } >>"$FAKE_LOG"
}
fake_log "$@"
