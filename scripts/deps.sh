#!/usr/bin/env bash
# Install the Debian packages hanfs needs to build, test and run its lab.
# Idempotent; run as root on Debian 12 (or a derivative).
set -euo pipefail
PKGS=(
  # the cluster stack the agents serve, and the OCF tools that check them
  pacemaker pacemaker-cli-utils corosync pcs resource-agents libxml2-utils
  # the NFS server and client programs the agents drive
  nfs-kernel-server nfs-common rpcbind
  # host tests: namespaces, packets
  iproute2 iputils-ping arping tcpdump strace util-linux procps psmisc python3
  # the lab: User-Mode Linux nodes with a real kernel nfsd; iptables for the
  # heartbeat reference stack's portblock
  user-mode-linux e2fsprogs kmod iptables
  # packaging and its checks
  rpm dpkg-dev lintian man-db
  # a C compiler: the rusqlite crate builds its bundled SQLite
  gcc libc6-dev
)
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian starts these on install where it can; the agents (and the tests)
# must find a quiet node. Nothing here runs under systemd, so stop by name.
for d in rpc.statd rpc.mountd rpcbind sm-notify pacemakerd corosync pcsd; do
  pkill -x "$d" 2>/dev/null || true
done
echo "deps: all ${#PKGS[@]} packages present"
