#!/bin/sh
# N independent NFS services with the hanfs agents, active/active: each has
# its own shared disk, floating address, export, NFSv3 holding directory and
# NFSv4 recovery directory, prefers its own node, and can run on any node
# (what CNFS sets up with `mmchnode -S` and its node list; here the cluster
# is symmetric, so every node may run every service, and a location
# preference puts each one home). After a node failure its services move to
# the survivors; the services elsewhere keep running where they are.
#
#   each service: Filesystem -> nfs-grace -> nfs-export (data)
#                 -> float-ip -> statd-holding, as one group
#
# The services, one line each in $SERVICES (or separated by ";"):
#
#   GROUP  DEVICE     MOUNT       VIP          NODE   FSID
#   nfs1   /dev/sdb1  /srv/nfs1   192.0.2.51   node1  1
#
#   GROUP   the group's name (its resources are GROUP-fs, -grace, -data,
#           -ip, -statd)
#   DEVICE  its shared disk, with a file system holding data/ and
#           .nfs-ha/{statd,v4recovery,tickle} (create them once)
#   MOUNT   where the disk is mounted; clients mount VIP:MOUNT/data (NFSv3,
#           and NFSv4 with nfsd's automatic pseudo-root) or, with V4_ROOT,
#           VIP:<MOUNT below V4_ROOT>/data with NFSv4
#   VIP     the address its clients mount from; it must resolve to a name
#           on every node (/etc/hosts): sm-notify refuses one that does not
#   NODE    the node it prefers (score PREFER_SCORE), or "-" for none
#   FSID    the data export's fsid: a number, unique, the same everywhere
#           (0 is the NFSv4 root's)
#
# Adding a service is adding a line (and its disk and address).
#
# Services that share a node share its nfsd, and its grace period (see
# ocf:hanfs:nfs-grace's description and the README's "Grace is per node"):
# when a service arrives on a node where another already runs, nfsd is
# restarted to give the arriving clients their grace period, and the
# clients of the services already there reclaim too (they pause a few
# seconds; the other nodes' services do not). All nfs-grace resources must
# therefore agree on the timers and the server scope, hence one set of
# shared settings below; each service keeps its NFSv4 client records on its
# own disk (nfs-grace merges and copies them while services share a node).
#
# Clients: an NFSv4.1/4.2 client is ONE client to a node that runs several
# of these services (its identity names no server), and after a takeover
# only its first mount to recover may reclaim (RFC 8881 18.51.3). Give each
# client at most one NFSv4.1+ mount among all these services (any of them
# can end on one node); mount the others with vers=4.0 or NFSv3.
#
# ---- Quorum and fencing with three or more nodes --------------------------
# No two_node: that votequorum mode is for exactly two nodes. With the
# defaults a three-node cluster keeps quorum with any two nodes; after a
# second failure the last node has 1 vote of 3, is inquorate, and (the
# default no-quorum-policy=stop) stops every service: safe, and down until
# a node comes back. To let the last node carry every service when the
# nodes fail one after the other, set, once, with the cluster stopped:
#
#   pcs cluster stop --all
#   pcs quorum update last_man_standing=1 wait_for_all=1 auto_tie_breaker=1
#   pcs cluster start --all
#
#   last_man_standing  once the membership has been stable for
#                      last_man_standing_window (10 s), expected votes drop
#                      to the nodes still there: 3 -> 2 after one failure;
#   auto_tie_breaker   then one node of two keeps quorum: the one with the
#                      lowest node id (auto_tie_breaker_node). So the LAST
#                      node standing must be that one; if it is the second
#                      to fail, the other node stops everything. The same
#                      rule settles a split of two nodes without a race;
#   wait_for_all       the cluster is quorate the first time only once all
#                      nodes have been seen together (no fencing of nodes
#                      still booting), as votequorum(5) requires with LMS.
#
# Two nodes failing at once leave the third inquorate (it cannot tell that
# from being cut off from the other two). Where a fourth machine exists, a
# quorum device (corosync-qnetd there, `pcs quorum device add model net
# host=... algorithm=lms`) lets ANY last node keep quorum as long as it
# reaches the device; it replaces last_man_standing and auto_tie_breaker
# (votequorum disables the device when they are set). The cluster lab uses
# last_man_standing + wait_for_all + auto_tie_breaker (tests/lab/README.md).
#
# Fencing covers every node: one device whose pcmk_host_list names them all
# (a PDU, a hypervisor's fence agent, the lab's fence_hanfs_lab), or, with
# IPMI-like devices, one device per node (add `stonith create` lines after
# the hanfs_fencing call below). PING_TARGETS (fencing.sh) applies as in
# the other recipes.
#
# After a failed node is repaired the services stay where they are
# (resource-stickiness 100 outweighs the preference of 50); move them home
# when convenient, one at a time (`pcs resource move GROUP NODE`, then
# `pcs resource clear GROUP`) or all at once (`pcs resource relocate run`).
# Each move is a failover for that service's clients.
#
# Run it once, as root, on ONE node of a running cluster; the prerequisites
# are those of active-passive.sh, for every disk. CIB_FILE=<file> instead
# adds the configuration to that CIB file and pushes nothing (for review, or
# offline: `cibadmin --empty > cib.xml; CIB_FILE=cib.xml NODES="..." sh
# services.sh; crm_verify -x cib.xml`).
set -eu

# ---- Parameters (environment variables, with defaults) ----------------------
SERVICES=${SERVICES:-"
nfs1 /dev/sdb1 /srv/nfs1 192.0.2.51 node1 1
nfs2 /dev/sdc1 /srv/nfs2 192.0.2.52 node2 2
nfs3 /dev/sdd1 /srv/nfs3 192.0.2.53 node3 3
"}
# shared by every service:
CLIENTSPEC=${CLIENTSPEC:-192.0.2.0/24}
EXPORT_OPTIONS=${EXPORT_OPTIONS:-rw,sync,no_root_squash,no_subtree_check}
VIP_CIDR=${VIP_CIDR:-24}
NIC=${NIC:-eth0}
FSTYPE=${FSTYPE:-ext4}
NFSD_THREADS=${NFSD_THREADS:-8}
SERVER_SCOPE=${SERVER_SCOPE:-nfs}           # the same for all (see above)
GRACE_TIME=${GRACE_TIME:-}                  # unset: the agent's default
LEASE_TIME=${LEASE_TIME:-}
PREFER_SCORE=${PREFER_SCORE:-50}            # below the stickiness (100): no failback
# Optional: a directory present on every node (not on a shared disk) to
# export as the NFSv4 root (fsid=0), from a clone running on every node;
# every MOUNT must be below it. Empty: nfsd's automatic pseudo-root.
V4_ROOT=${V4_ROOT:-}
NODES=${NODES:-}                            # the cluster's nodes; empty: crm_node -l
CIB_FILE=${CIB_FILE:-}                      # see above: build into this file only
CIB=${CIB:-/tmp/hanfs-example-cib.xml}

if [ -n "$CIB_FILE" ]; then
  [ -f "$CIB_FILE" ] || { echo "CIB_FILE=$CIB_FILE: no such file (cibadmin --empty > $CIB_FILE)" >&2; exit 1; }
  CIB=$CIB_FILE
else
  pcs cluster cib "$CIB"
  [ -n "$NODES" ] || NODES=$(crm_node -l | awk '{print $2}')
fi
pcs_f() { pcs -f "$CIB" "$@" </dev/null; }

# ---- The service lines, checked before anything is created -----------------
LINES=$(printf '%s\n' "$SERVICES" | tr ';' '\n' | sed -e 's/#.*//' -e '/^[[:space:]]*$/d')
[ -n "$LINES" ] || { echo "SERVICES names no service" >&2; exit 1; }
seen=" "
while read -r g dev mnt vip node fsid rest; do
  if [ -z "$fsid" ] || [ -n "$rest" ]; then
    echo "SERVICES: '$g $dev $mnt $vip $node $fsid $rest': want GROUP DEVICE MOUNT VIP NODE FSID" >&2; exit 1
  fi
  case $fsid in *[!0-9]*|0) echo "SERVICES: $g: fsid '$fsid' must be a number other than 0" >&2; exit 1;; esac
  for k in "group:$g" "vip:$vip" "fsid:$fsid" "device:$dev" "mount:$mnt"; do
    case $seen in *" $k "*) echo "SERVICES: ${k%%:*} ${k#*:} named twice" >&2; exit 1;; esac
    seen="$seen$k "
  done
  if [ -n "$V4_ROOT" ]; then
    case $mnt in "$V4_ROOT"/*) ;; *) echo "SERVICES: $g: $mnt is not below V4_ROOT=$V4_ROOT" >&2; exit 1;; esac
  fi
done <<EOF
$LINES
EOF

# ---- 1. Fencing -- REPLACE WITH YOUR REAL FENCE DEVICE -------------------------
# See active-passive.sh and fencing.sh (FENCE_AGENT, FENCE_PARAMS, PING_TARGETS).
# shellcheck source=fencing.sh
. "$(dirname "$0")/fencing.sh"
# shellcheck disable=SC2086  # NODES is a list of names
hanfs_fencing nfs-fence $NODES
pcs_f resource defaults update resource-stickiness=100

# ---- 2. One service group ---------------------------------------------------------
# service GROUP DEVICE MOUNT VIP NODE FSID
service() {
  g=$1 dev=$2 mnt=$3 vip=$4 node=$5 fsid=$6
  pcs_f resource create "$g-fs" ocf:heartbeat:Filesystem \
      device="$dev" directory="$mnt" fstype="$FSTYPE" \
      op monitor interval=20s timeout=40s op start timeout=60s op stop timeout=60s \
      --group "$g"
  set -- server_scope="$SERVER_SCOPE" recovery_dir="$mnt/.nfs-ha/v4recovery" threads="$NFSD_THREADS"
  [ -n "$GRACE_TIME" ] && set -- "$@" grace_time="$GRACE_TIME"
  [ -n "$LEASE_TIME" ] && set -- "$@" lease_time="$LEASE_TIME"
  pcs_f resource create "$g-grace" ocf:hanfs:nfs-grace "$@" \
      op monitor interval=10s timeout=20s op start timeout=60s op stop timeout=60s \
      --group "$g"
  # unlock_on_stop: the export's NLM locks go when it moves, so the disk
  # unmounts; the second monitor (OCF_CHECK_LEVEL=10) reads the disk under
  # the export, bypassing the cache: hung storage fails it (active-passive.sh)
  pcs_f resource create "$g-data" ocf:hanfs:nfs-export \
      directory="$mnt/data" clientspec="$CLIENTSPEC" fsid="$fsid" \
      options="$EXPORT_OPTIONS" unlock_on_stop=true \
      op monitor interval=10s timeout=20s \
         monitor interval=30s timeout=20s OCF_CHECK_LEVEL=10 \
         start timeout=40s stop timeout=60s \
      --group "$g"
  pcs_f resource create "$g-ip" ocf:hanfs:float-ip \
      ip="$vip" cidr_netmask="$VIP_CIDR" nic="$NIC" tickle_dir="$mnt/.nfs-ha/tickle" \
      op monitor interval=10s timeout=20s op start timeout=20s op stop timeout=20s \
      --group "$g"
  pcs_f resource create "$g-statd" ocf:hanfs:statd-holding \
      holding_dir="$mnt/.nfs-ha/statd" ip="$vip" \
      op monitor interval=10s timeout=20s op start timeout=60s op stop timeout=30s \
      --group "$g"
  if [ "$node" != - ]; then
    pcs_f constraint location "$g" prefers "$node=$PREFER_SCORE"
  fi
}
# A node has one NFSv4 root (fsid=0), and services that may share a node
# cannot each own it: it is either nfsd's automatic pseudo-root or, with
# V4_ROOT, a node-level export cloned on every node.
if [ -n "$V4_ROOT" ]; then
  pcs_f resource create nfs-v4root ocf:hanfs:nfs-export \
      directory="$V4_ROOT" clientspec="$CLIENTSPEC" fsid=0 options="$EXPORT_OPTIONS,crossmnt" \
      op monitor interval=30s timeout=20s op start timeout=40s op stop timeout=60s \
      clone
fi
groups=
while read -r g dev mnt vip node fsid; do
  service "$g" "$dev" "$mnt" "$vip" "$node" "$fsid"
  groups="$groups $g"
done <<EOF
$LINES
EOF

# ---- 3. Activate --------------------------------------------------------------
if [ -n "$CIB_FILE" ]; then
  echo "added groups$groups to $CIB_FILE (nothing pushed)"
  exit 0
fi
pcs cluster cib-push "$CIB" --config
rm -f "$CIB"
echo "configured groups$groups; watch them with: crm_mon"
