#!/usr/bin/env bash
# The test command: unit tests, host-sandbox tests (root, namespaces) and
# the OCF tools' checks. Run as root after scripts/deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tests that need root, namespaces or UML fail instead of skipping here.
export HANFS_REQUIRE_SANDBOX=1
cargo build --all-targets
cargo test --no-fail-fast -- --test-threads="${HANFS_TEST_THREADS:-4}"
