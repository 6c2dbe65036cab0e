#!/usr/bin/env bash
# Check the packages as a user would, on this machine (root, Debian 12):
#
#   scripts/package-check.sh        # builds target/packages/* first if missing
#
# 1. lintian on the DEB: no errors (warnings are printed);
# 2. rpm -qpl lists exactly the expected files; the RPM requires nfs-utils
#    and resource-agents;
# 3. apt-get install ./hanfs_*.deb; dpkg -L lists exactly the expected files;
#    `pcs resource describe ocf:hanfs:<agent>` and `crm_resource
#    --show-metadata ocf:hanfs:<agent>` work for every agent; crm_resource
#    --validate reaches the installed agent; `man -w` finds every page and
#    `man 7 ocf_hanfs_<agent>` shows its parameters;
# 4. apt-get purge hanfs; nothing of the package is left (no listed file,
#    no /usr/lib/ocf/resource.d/hanfs, no dpkg file list).
#
# Exits non-zero on the first failure, after purging the package again so
# the machine is left as it was. Refuses to run if hanfs is already on this
# machine (installed by scripts/install.sh or another package).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/packages
export DEBIAN_FRONTEND=noninteractive

fail() {
    echo "package-check: FAIL: $*" >&2
    exit 1
}
step() { echo "== $*"; }

[ "$(id -u)" = 0 ] || fail "run as root (installs and removes the package)"
if dpkg-query -W -f='${Status}' hanfs 2>/dev/null | grep -q installed ||
    [ -e /usr/lib/ocf/resource.d/hanfs ] || [ -e /usr/libexec/hanfs ]; then
    fail "hanfs is already present on this machine; remove it first (scripts/uninstall.sh undoes scripts/install.sh)"
fi
for tool in lintian rpm dpkg-deb pcs crm_resource man xmllint; do
    command -v "$tool" >/dev/null || fail "$tool not installed (scripts/deps.sh; lintian: apt-get install lintian)"
done

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
DEB=$OUT/hanfs_${VERSION}-1_amd64.deb
RPM=$OUT/hanfs-${VERSION}-1.x86_64.rpm
if [ ! -f "$DEB" ] || [ ! -f "$RPM" ]; then
    bash scripts/package.sh all
fi
mapfile -t AGENTS < <(for f in metadata/*.xml; do basename "$f" .xml; done)

# The files both packages must install (directories they own included).
common_files() {
    echo /usr/lib/ocf/resource.d/hanfs
    echo /usr/libexec/hanfs
    echo /usr/libexec/hanfs/hanfs-statd-callout
    echo /usr/libexec/hanfs/hanfs-import-state
    echo /usr/share/hanfs
    echo /usr/share/hanfs/metadata
    for a in "${AGENTS[@]}"; do
        echo "/usr/lib/ocf/resource.d/hanfs/$a"
        echo "/usr/share/hanfs/metadata/$a.xml"
        echo "/usr/share/man/man7/ocf_hanfs_$a.7.gz"
    done
    echo /usr/share/doc/hanfs
    echo /usr/share/doc/hanfs/README.md
    if [ -d pcs-examples ]; then
        echo /usr/share/doc/hanfs/examples
        (cd pcs-examples && find . -mindepth 1 | sed 's|^\.|/usr/share/doc/hanfs/examples|')
    fi
}
expect_deb() {
    common_files
    echo /usr/share/doc/hanfs/copyright
    echo /usr/share/doc/hanfs/changelog.Debian.gz
}
expect_rpm() {
    common_files
    echo /usr/share/licenses/hanfs
    echo /usr/share/licenses/hanfs/LICENSE
}
# Compare a listing with the expected one; directories that other packages
# own too (/usr, /usr/share/man/man7, ...) are not the package's own.
same_list() { # name expected-file actual-file
    if ! diff -u "$2" "$3"; then
        fail "$1: file list differs from the expected one (- expected, + actual)"
    fi
}
TMP=$(mktemp -d)
cleanup() {
    local rc=$?
    if dpkg-query -W -f='${Status}' hanfs 2>/dev/null | grep -q installed; then
        echo "package-check: purging hanfs after failure" >&2
        apt-get purge -y -q hanfs >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT

step "lintian $(basename "$DEB")"
lrc=0
lintian --fail-on error --display-info "$DEB" >"$TMP/lintian" 2>&1 || lrc=$?
grep -v 'running with root privileges' "$TMP/lintian" || true
if grep -q '^E: ' "$TMP/lintian" || [ "$lrc" != 0 ]; then
    fail "lintian reports errors (exit status $lrc)"
fi
echo "lintian: no errors ($(grep -c '^W: ' "$TMP/lintian" || true) warnings, $(grep -c '^I: ' "$TMP/lintian" || true) info)"

step "rpm -qpl $(basename "$RPM")"
expect_rpm | sort >"$TMP/rpm.want"
rpm -qpl "$RPM" | sort >"$TMP/rpm.got"
same_list "rpm -qpl" "$TMP/rpm.want" "$TMP/rpm.got"
rpm -qp --requires "$RPM" >"$TMP/rpm.req"
for r in nfs-utils resource-agents 'libc.so.6(GLIBC_'; do
    grep -qF "$r" "$TMP/rpm.req" || fail "RPM does not require $r"
done
echo "rpm: $(wc -l <"$TMP/rpm.got") paths as expected; requires: $(grep -v -e '^rpmlib' -e '^lib' -e '^rtld' "$TMP/rpm.req" | sort -u | tr '\n' ' ')+ libc.so.6 up to $(grep -o 'GLIBC_[0-9.]*' "$TMP/rpm.req" | sort -V | tail -1)"

step "apt-get install $DEB"
apt-get install -y -q --no-install-recommends "$DEB" >"$TMP/apt.log" 2>&1 ||
    {
        cat "$TMP/apt.log" >&2
        fail "apt-get install failed"
    }
expect_deb | sort >"$TMP/deb.want"
dpkg -L hanfs | grep -v -x -e '/.' -e /usr -e /usr/lib -e /usr/lib/ocf -e /usr/lib/ocf/resource.d \
    -e /usr/libexec -e /usr/share -e /usr/share/doc -e /usr/share/man -e /usr/share/man/man7 |
    sort >"$TMP/deb.got"
same_list "dpkg -L hanfs" "$TMP/deb.want" "$TMP/deb.got"
while read -r f; do [ -e "$f" ] || fail "$f not installed"; done <"$TMP/deb.want"
echo "dpkg: $(wc -l <"$TMP/deb.got") paths as expected"

for a in "${AGENTS[@]}"; do
    step "ocf:hanfs:$a"
    [ -x "/usr/lib/ocf/resource.d/hanfs/$a" ] || fail "$a not executable"
    pcs resource describe "ocf:hanfs:$a" >"$TMP/describe" 2>&1 ||
        {
            cat "$TMP/describe" >&2
            fail "pcs resource describe ocf:hanfs:$a"
        }
    grep -q "^ocf:hanfs:$a" "$TMP/describe" || fail "pcs describe: no ocf:hanfs:$a header"
    # every parameter of the meta-data is described
    for p in $(xmllint --xpath '//parameter/@name' "metadata/$a.xml" | sed 's/ name="\([^"]*\)"/\1 /g'); do
        grep -q -- "^  $p[ :]" "$TMP/describe" || fail "pcs describe ocf:hanfs:$a lacks parameter $p"
    done
    crm_resource --show-metadata "ocf:hanfs:$a" >"$TMP/md.xml" 2>"$TMP/md.err" ||
        {
            cat "$TMP/md.err" >&2
            fail "crm_resource --show-metadata ocf:hanfs:$a"
        }
    xmllint --noout "$TMP/md.xml" || fail "crm_resource --show-metadata ocf:hanfs:$a: not well-formed"
    grep -q "<resource-agent name=\"$a\"" "$TMP/md.xml" || fail "meta-data of $a names another agent"
    page=$(man -w "ocf_hanfs_$a") || fail "man -w ocf_hanfs_$a finds nothing"
    [ "$page" = "/usr/share/man/man7/ocf_hanfs_$a.7.gz" ] || fail "man -w ocf_hanfs_$a: $page"
    MANWIDTH=80 man 7 "ocf_hanfs_$a" 2>/dev/null | grep -q "SUPPORTED PARAMETERS" ||
        fail "man 7 ocf_hanfs_$a does not render"
    echo "ok: pcs resource describe, crm_resource --show-metadata, man -w -> $page"
done

step "crm_resource --validate reaches an installed agent"
if out=$(crm_resource --validate --class ocf --provider hanfs --agent nfs-export \
    --option directory=relative/dir --option clientspec='*' 2>&1); then
    fail "crm_resource --validate accepted a relative directory: $out"
fi
echo "$out" | grep -q "returned 6" || fail "crm_resource --validate: expected rc 6: $out"
echo "ok: $out" | head -2

step "apt-get purge hanfs"
apt-get purge -y -q hanfs >"$TMP/purge.log" 2>&1 || {
    cat "$TMP/purge.log" >&2
    fail "apt-get purge failed"
}
if dpkg -L hanfs >/dev/null 2>&1; then fail "dpkg -L hanfs still lists files after purge"; fi
st=$(dpkg-query -W -f='${Status}' hanfs 2>/dev/null || true)
case $st in "" | *not-installed*) ;; *) fail "dpkg still knows hanfs: $st" ;; esac
left=()
while read -r f; do
    if [ -e "$f" ] || [ -L "$f" ]; then left+=("$f"); fi
done <"$TMP/deb.want"
((${#left[@]} == 0)) || fail "left behind after purge: ${left[*]}"
[ ! -e /usr/lib/ocf/resource.d/hanfs ] || fail "/usr/lib/ocf/resource.d/hanfs left behind"
if man -w "ocf_hanfs_${AGENTS[0]}" >/dev/null 2>&1; then fail "man page still found after purge"; fi
echo "ok: nothing left"
echo "package-check: all checks passed"
