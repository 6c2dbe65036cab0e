#!/usr/bin/env bash
# The test command: unit tests, host-sandbox tests (root, namespaces) and
# the OCF tools' checks. Run as root after scripts/deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tests that need root, namespaces or UML fail instead of skipping here.
export HANFS_REQUIRE_SANDBOX=1
cargo build --all-targets
# Unit tests fork (agents are single-threaded; a child forked while another
# test thread holds a lock, the logger's say, can hang): one thread, < 2 s.
# Every part runs even when an earlier one fails; the status is the worst.
rc=0
cargo test --no-fail-fast --lib --bins -- --test-threads=1 || rc=1
cargo test --no-fail-fast --test '*' -- --test-threads="${HANFS_TEST_THREADS:-4}" || rc=1
cargo test --no-fail-fast --doc || rc=1
# the cluster lab's analysis code, offline (no UML needed)
(cd tests/lab && python3 -m unittest discover -q -s unit -t .) || rc=1
exit "$rc"
