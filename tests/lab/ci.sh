#!/usr/bin/env bash
# CI entry for the cluster lab: run the default lab (hanfs stack, move +
# crash) when this machine can run User-Mode Linux nodes, say why not
# otherwise. Extra arguments go to tests/lab/run (e.g. --compare).
# Exit status: the lab's (0 = every check passed), 0 when skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
why=""
[ "$(id -u)" = 0 ] || why="not root"
[ -e /dev/net/tun ] || why="${why:+$why, }no /dev/net/tun"
[ "$(uname -m)" = x86_64 ] || why="${why:+$why, }not x86_64 (user-mode-linux is amd64 only)"
if [ -n "$why" ]; then
  echo "lab: skipped ($why)"
  exit 0
fi
exec python3 tests/lab/run "$@"
