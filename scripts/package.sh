#!/usr/bin/env bash
# Build the hanfs packages into target/packages/:
#
#   scripts/package.sh deb   # hanfs_<version>-1_amd64.deb  (dpkg-deb)
#   scripts/package.sh rpm   # hanfs-<version>-1.x86_64.rpm (rpmbuild, packaging/hanfs.spec)
#   scripts/package.sh all   # both (the default)
#
# Both contain the same files, built here first:
#   /usr/lib/ocf/resource.d/hanfs/<agent>     one per metadata/<agent>.xml
#   /usr/libexec/hanfs/hanfs-statd-callout    for rpc.statd -H / [statd] ha-callout
#   /usr/libexec/hanfs/hanfs-import-state     for migrate-from-heartbeat.sh
#   /usr/share/hanfs/metadata/<agent>.xml     the agents' meta-data source
#   /usr/share/man/man7/ocf_hanfs_<agent>.7.gz  generated from the meta-data (gendoc)
#   /usr/share/doc/hanfs/README.md (+ examples/ when pcs-examples/ exists)
#   DEB: /usr/share/doc/hanfs/{copyright,changelog.Debian.gz}
#   RPM: /usr/share/licenses/hanfs/LICENSE
#
# Needs: cargo, dpkg-deb + dpkg-shlibdeps (dpkg-dev) for the DEB, rpmbuild
# (Debian package rpm) for the RPM. Env: HANFS_MAINTAINER overrides the
# Maintainer field; SOURCE_DATE_EPOCH (default: the last commit's time)
# fixes file dates.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
what=${1:-all}
case $what in deb | rpm | all) ;; *)
    echo "usage: $0 {deb|rpm|all}" >&2
    exit 2
    ;;
esac

OUT=$ROOT/target/packages
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
DEB_VERSION=$VERSION-1
MAINTAINER=${HANFS_MAINTAINER:-hanfs developers <hanfs@example.org>}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
mapfile -t AGENTS < <(for f in metadata/*.xml; do basename "$f" .xml; done)
((${#AGENTS[@]})) || {
    echo "package: no metadata/*.xml" >&2
    exit 1
}

echo "package: hanfs $VERSION, agents: ${AGENTS[*]}"
cargo build --release --bins
rm -rf "$OUT/man"
cargo run --quiet --release --example gendoc -- man "$OUT/man" >/dev/null
for a in "${AGENTS[@]}"; do
    test -x "target/release/$a" || {
        echo "package: target/release/$a missing" >&2
        exit 1
    }
    test -s "$OUT/man/ocf_hanfs_$a.7" || {
        echo "package: man page for $a missing" >&2
        exit 1
    }
done

build_deb() {
    local stage=$OUT/deb-root deb=$OUT/hanfs_${DEB_VERSION}_amd64.deb
    rm -rf "$stage"
    install -d "$stage/DEBIAN" "$stage/usr/lib/ocf/resource.d/hanfs" "$stage/usr/libexec/hanfs" \
        "$stage/usr/share/hanfs/metadata" "$stage/usr/share/man/man7" "$stage/usr/share/doc/hanfs"
    for a in "${AGENTS[@]}"; do
        install -m 0755 "target/release/$a" "$stage/usr/lib/ocf/resource.d/hanfs/$a"
        install -m 0644 "metadata/$a.xml" "$stage/usr/share/hanfs/metadata/$a.xml"
        install -m 0644 "$OUT/man/ocf_hanfs_$a.7" "$stage/usr/share/man/man7/"
        gzip -9n "$stage/usr/share/man/man7/ocf_hanfs_$a.7"
    done
    install -m 0755 target/release/hanfs-statd-callout target/release/hanfs-import-state \
        "$stage/usr/libexec/hanfs/"
    # As dh_strip does: cargo's strip leaves the .comment and .note sections.
    strip --remove-section=.comment --remove-section=.note \
        "$stage"/usr/lib/ocf/resource.d/hanfs/* "$stage"/usr/libexec/hanfs/*
    install -m 0644 README.md "$stage/usr/share/doc/hanfs/README.md"
    if [ -d pcs-examples ]; then
        cp -r pcs-examples "$stage/usr/share/doc/hanfs/examples"
        chmod -R u=rwX,go=rX "$stage/usr/share/doc/hanfs/examples"
    fi
    install -m 0644 packaging/debian/copyright "$stage/usr/share/doc/hanfs/copyright"
    sed -e "s/@VERSION@/$DEB_VERSION/" -e "s|@MAINTAINER@|${MAINTAINER//&/\\&}|" \
        -e "s/@DATE@/$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")/" \
        packaging/debian/changelog.in | gzip -9n >"$stage/usr/share/doc/hanfs/changelog.Debian.gz"
    chmod 0644 "$stage/usr/share/doc/hanfs/changelog.Debian.gz"

    # The libc (and libgcc) dependency, as Debian computes it.
    local shl
    shl=$(mktemp -d)
    mkdir "$shl/debian"
    printf 'Source: hanfs\n\nPackage: hanfs\nArchitecture: amd64\n' >"$shl/debian/control"
    local bins=()
    for f in "$stage"/usr/lib/ocf/resource.d/hanfs/* "$stage"/usr/libexec/hanfs/*; do bins+=("-e$f"); done
    local shlibs
    shlibs=$(cd "$shl" && dpkg-shlibdeps -O "${bins[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
    rm -rf "$shl"
    [ -n "$shlibs" ] || {
        echo "package: dpkg-shlibdeps found no library dependencies" >&2
        exit 1
    }

    local size
    size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
    sed -e "s/@VERSION@/$DEB_VERSION/" -e "s|@MAINTAINER@|${MAINTAINER//&/\\&}|" \
        -e "s/@INSTALLED_SIZE@/$size/" -e "s/@SHLIBS@/$shlibs/" \
        packaging/debian/control.in >"$stage/DEBIAN/control"
    (cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
    chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
    find "$stage" -type d -exec chmod 0755 {} +
    find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
    echo "$deb"
}

build_rpm() {
    local top=$OUT/rpmbuild
    rm -rf "$top"
    mkdir -p "$top"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}
    rpmbuild -bb --quiet \
        --define "_topdir $top" \
        --define "hanfs_src $ROOT" \
        --define "hanfs_version $VERSION" \
        --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" \
        packaging/hanfs.spec
    local rpm
    rpm=$(find "$top/RPMS" -name 'hanfs-*.rpm' | head -1)
    [ -n "$rpm" ] || {
        echo "package: rpmbuild produced no rpm" >&2
        exit 1
    }
    mv "$rpm" "$OUT/"
    echo "$OUT/$(basename "$rpm")"
}

case $what in
deb) build_deb ;;
rpm) build_rpm ;;
all)
    build_deb
    build_rpm
    ;;
esac
