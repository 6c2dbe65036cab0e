#!/usr/bin/env bash
# hanfs vs the heartbeat agents, side by side, on this machine:
#
#   scripts/bench.sh            # full run (about 5-10 minutes)
#   scripts/bench.sh --quick    # few repetitions (CI smoke run, < 2 minutes)
#   scripts/bench.sh --only ip,exports,statd
#
# Builds the release binaries, then runs benches/bench.py as process 1 of
# private PID, network and mount namespaces (nothing touches the host's
# network, /run, /var/lib/nfs, /etc/exports or /etc/hosts; every process it
# starts dies with it). Writes target/bench/results.json (every sample) and
# target/bench/results.md (the Markdown tables, also printed).
# A measurement, not a test: it fails only when an agent misbehaves.
# Needs root, resource-agents, nfs-kernel-server, nfs-common, rpcbind,
# iproute2, python3 (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || {
    echo "bench: run as root (namespaces)" >&2
    exit 1
}
cargo build --release --bins
HANFS_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1) ($(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src agents 2>/dev/null || echo ', modified'))"
export HANFS_VERSION
export PYTHONDONTWRITEBYTECODE=1
exec unshare --pid --fork --kill-child --mount-proc --net --mount --propagation private \
    python3 benches/bench.py "$@"
