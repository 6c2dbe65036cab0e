#!/usr/bin/env bash
# Print the path of a User-Mode Linux kernel for the UML tests and the lab,
# building it first when needed (as root):
#
#   bash scripts/uml-kernel.sh 6.12   # built from Debian's linux-source-6.12
#   bash scripts/uml-kernel.sh 6.1    # Debian's user-mode-linux package
#
# 6.12 is built with ARCH=um from /usr/src/linux-source-6.12.tar.xz (the
# package and the build tools are installed with apt-get when missing):
# `make defconfig`, then tests/uml/kernel-6.12.config merged over it; every
# line of that fragment must be in the final .config as written, or the
# script fails naming the lines that are not. Everything is built in; the
# guests' modprobe finds it in modules.builtin (lib/modules/RELEASE next to
# the kernel, which the UML test harness links into /lib/modules).
#
# The result is cached outside the clone, by the source package's version
# and the fragment's SHA-256:
#   ${HANFS_UML_CACHE:-/var/cache/hanfs/uml}/<version>-<sha256:12>/linux
# so a second run prints the path at once. Progress goes to stderr, the
# build's own output to build.log there; stdout is only the path.
# About 10 minutes on 2 cores (build.info there has the measured time).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "uml-kernel: $*" >&2; }
die() { say "$*"; exit 1; }

want=${1:-6.12}
case $want in
6.1)
    if [ ! -x /usr/bin/linux.uml ]; then
        say "installing user-mode-linux"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q user-mode-linux >&2
    fi
    echo /usr/bin/linux.uml
    exit 0
    ;;
6.12) ;;
*) die "unknown kernel $want (known: 6.1, 6.12)" ;;
esac

pkg=linux-source-$want
frag=$PWD/tests/uml/kernel-$want.config
[ -f "$frag" ] || die "$frag missing"
tarball=/usr/src/$pkg.tar.xz
tools=(gcc make flex bison bc perl xz-utils kmod)
missing=()
dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
for t in "${tools[@]}"; do
    dpkg-query -W -f='${Status}\n' "$t" 2>/dev/null | grep -q "ok installed" || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
fi
[ -f "$tarball" ] || die "$tarball missing after installing $pkg"
version=$(dpkg-query -W -f='${Version}' "$pkg")
hash=$(sha256sum "$frag" | cut -c1-12)
root=${HANFS_UML_CACHE:-/var/cache/hanfs/uml}
out=$root/$version-$hash
if [ -x "$out/linux" ] && [ -f "$out/build.info" ]; then
    echo "$out/linux"
    exit 0
fi

mkdir -p "$root"
exec 9>"$root/.lock"
flock 9 # one build at a time; a waiting run then finds the result
if [ -x "$out/linux" ] && [ -f "$out/build.info" ]; then
    echo "$out/linux"
    exit 0
fi
tmp=$(mktemp -d "$root/.build-$version-$hash.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
log=$tmp/build.log
t0=$(date +%s)
say "building $pkg $version with $frag in $tmp (log: $log)"
tar -xJf "$tarball" -C "$tmp"
src=$tmp/$pkg
b=$tmp/build
m() { make -C "$src" ARCH=um O="$b" "$@" >>"$log" 2>&1 || { tail -n 30 "$log" >&2; die "make $* failed (log above)"; }; }
m defconfig
"$src/scripts/kconfig/merge_config.sh" -m -O "$b" "$b/.config" "$frag" >>"$log" 2>&1 ||
    die "merge_config.sh failed (see $log)"
m olddefconfig
# Every line of the fragment, as asked: CONFIG_X=V present, or (for
# "# CONFIG_X is not set") no CONFIG_X= line at all.
bad=()
while IFS= read -r line; do
    if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
        grep -qxF -- "$line" "$b/.config" ||
            bad+=("$line (got: $(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$b/.config" || echo unset))")
    elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
        ! grep -q "^${BASH_REMATCH[1]}=" "$b/.config" ||
            bad+=("$line (got: $(grep "^${BASH_REMATCH[1]}=" "$b/.config"))")
    fi
done <"$frag"
if [ ${#bad[@]} -gt 0 ]; then
    say "the final .config does not have these lines of $frag:"
    printf '  %s\n' "${bad[@]}" >&2
    exit 1
fi
grep -q '=m$' "$b/.config" && die "modules left in .config: $(grep '=m$' "$b/.config" | tr '\n' ' ')"
t1=$(date +%s)
m -j"$(nproc)"
t2=$(date +%s)
release=$(make -s -C "$src" ARCH=um O="$b" kernelrelease 2>>"$log")
[ "$("$b/linux" --version </dev/null)" = "$release" ] || die "$b/linux --version is not $release"
# modules.builtin for the guests' modprobe (no module is loadable)
mods=$tmp/out/lib/modules/$release
mkdir -p "$mods"
cp "$b/modules.builtin" "$b/modules.builtin.modinfo" "$mods/"
: >"$mods/modules.order"
depmod -b "$tmp/out" "$release"
modprobe -n -d "$tmp/out" -S "$release" nfsd || die "modprobe does not find nfsd in $mods/modules.builtin"
cp "$b/linux" "$b/.config" "$tmp/out/"
mv "$log" "$tmp/out/build.log"
cat >"$tmp/out/build.info" <<EOF
source=$pkg $version
fragment=$frag sha256 $(sha256sum "$frag" | cut -d' ' -f1)
release=$release
configure_seconds=$((t1 - t0))
make_seconds=$((t2 - t1))
jobs=$(nproc)
built=$(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)
EOF
rm -rf "$out"
mv "$tmp/out" "$out"
say "built $out/linux ($release) in $((t2 - t0)) s (configure $((t1 - t0)) s, make $((t2 - t1)) s)"
echo "$out/linux"
