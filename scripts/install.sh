#!/usr/bin/env bash
# Build hanfs and install the four agents on this node:
#   /usr/lib/ocf/resource.d/hanfs/{nfs-export,float-ip,statd-holding,nfs-grace}
#   /usr/libexec/hanfs/hanfs-statd-callout, /usr/libexec/hanfs/hanfs-import-state
# Run as root. Packages (DEB/RPM) are the way to install on a cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release
install -d /usr/lib/ocf/resource.d/hanfs /usr/libexec/hanfs
for a in nfs-export float-ip statd-holding nfs-grace; do
  install -m 0755 "target/release/$a" "/usr/lib/ocf/resource.d/hanfs/$a"
done
install -m 0755 target/release/hanfs-statd-callout /usr/libexec/hanfs/hanfs-statd-callout
install -m 0755 target/release/hanfs-import-state /usr/libexec/hanfs/hanfs-import-state
echo "installed; try: crm_resource --show-metadata ocf:hanfs:float-ip"
