#!/usr/bin/env bash
# The test command: unit tests, host-sandbox tests (root, namespaces) and
# the OCF tools' checks. Run as root after scripts/deps.sh.
#
# HANFS_KERNELS="6.1 6.12" runs the User-Mode Linux tests (tests/it, names
# starting uml_) on each of these guest kernels: all tests on the first,
# then the UML ones again on each other, the kernel built or found by
# scripts/uml-kernel.sh (6.12: built once, ~10 min, then cached). Default:
# HANFS_UML_KERNEL if set, else Debian's user-mode-linux (6.1), only.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tests that need root, namespaces or UML fail instead of skipping here.
export HANFS_REQUIRE_SANDBOX=1
cargo build --all-targets
# Unit tests fork (agents are single-threaded; a child forked while another
# test thread holds a lock, the logger's say, can hang): one thread, < 2 s.
# Every part runs even when an earlier one fails; the status is the worst.
rc=0
kernels=()
[ -n "${HANFS_KERNELS:-}" ] && read -r -a kernels <<<"$HANFS_KERNELS"
kernel_path() { bash scripts/uml-kernel.sh "$1"; }
cargo test --no-fail-fast --lib --bins -- --test-threads=1 || rc=1
if [ ${#kernels[@]} -gt 0 ]; then
    # a kernel that cannot be had makes every UML test fail (HANFS_REQUIRE_SANDBOX)
    HANFS_UML_KERNEL=$(kernel_path "${kernels[0]}") || HANFS_UML_KERNEL=/nonexistent/uml-${kernels[0]}
    export HANFS_UML_KERNEL
    echo "UML tests on kernel ${kernels[0]}: $HANFS_UML_KERNEL"
fi
cargo test --no-fail-fast --test '*' -- --test-threads="${HANFS_TEST_THREADS:-4}" || rc=1
for k in "${kernels[@]:1}"; do
    path=$(kernel_path "$k") || { rc=1; continue; }
    echo "UML tests on kernel $k: $path"
    HANFS_UML_KERNEL=$path cargo test --no-fail-fast --test it uml_ -- --test-threads="${HANFS_TEST_THREADS:-4}" || rc=1
done
cargo test --no-fail-fast --doc || rc=1
# the cluster lab's analysis code, offline (no UML needed)
(cd tests/lab && python3 -m unittest discover -q -s unit -t .) || rc=1
exit "$rc"
