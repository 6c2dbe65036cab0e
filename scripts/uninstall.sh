#!/usr/bin/env bash
# Remove what scripts/install.sh installed on this node (not a package's
# files: for those, apt-get purge hanfs / dnf remove hanfs). Run as root.
set -euo pipefail
if dpkg-query -W -f='${Status}' hanfs 2>/dev/null | grep -q installed; then
    echo "uninstall: the hanfs package is installed; remove it with apt-get purge hanfs" >&2
    exit 1
fi
for a in nfs-export float-ip statd-holding nfs-grace; do
    rm -f "/usr/lib/ocf/resource.d/hanfs/$a"
done
rm -f /usr/libexec/hanfs/hanfs-statd-callout /usr/libexec/hanfs/hanfs-import-state
rmdir /usr/lib/ocf/resource.d/hanfs /usr/libexec/hanfs 2>/dev/null || true
echo "uninstalled"
