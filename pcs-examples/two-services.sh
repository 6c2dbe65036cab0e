#!/bin/sh
# Two independent NFS services with the hanfs agents: two shared disks, two
# floating addresses, two exports, two holding directories. Normally one runs
# on each node; after a node failure both run on the survivor.
#
#   nfs1: Filesystem -> nfs-grace -> nfs-export (root) -> nfs-export (data)
#         -> float-ip -> statd-holding
#   nfs2: the same with its own disk, address and directories
#
# What sharing a node costs (see ocf:hanfs:nfs-grace's description): grace
# is per node, not per service. When a service arrives on a node where the
# other already runs, nfsd is restarted to give the arriving clients their
# grace period, and the clients of the service already there must reclaim
# too (they pause for the takeover as well). Both services' nfs-grace
# resources must then agree on the timers and server scope, hence the
# shared settings below; each keeps its NFSv4 client records on its own
# disk (nfs-grace merges and copies them while the services share a node).
#
# Clients: an NFSv4.1/4.2 client is ONE client to a node that runs both
# services (its identity names no server), and after a takeover only its
# first mount to recover may reclaim (RFC 8881 18.51.3). Give each client
# at most one NFSv4.1+ mount among these services; mount the other with
# vers=4.0 or NFSv3.
#
# Run it once, as root, on ONE node of a running two-node cluster; the
# prerequisites are those of active-passive.sh (for both disks).
set -eu

# ---- Parameters (environment variables, with defaults) ----------------------
CLIENTSPEC=${CLIENTSPEC:-192.0.2.0/24}
EXPORT_OPTIONS=${EXPORT_OPTIONS:-rw,sync,no_root_squash,no_subtree_check}
VIP_CIDR=${VIP_CIDR:-24}
NIC=${NIC:-eth0}
FSTYPE=${FSTYPE:-ext4}
NFSD_THREADS=${NFSD_THREADS:-8}
SERVER_SCOPE=${SERVER_SCOPE:-nfs}           # shared by both (see above)
GRACE_TIME=${GRACE_TIME:-}
LEASE_TIME=${LEASE_TIME:-}
# service 1
GROUP1=${GROUP1:-nfs1}
DEVICE1=${DEVICE1:-/dev/sdb1}
MOUNT1=${MOUNT1:-/srv/nfs1}
VIP1=${VIP1:-192.0.2.51}
NODE1=${NODE1:-}                            # where it normally runs (optional)
FSID1=${FSID1:-1}
# service 2
GROUP2=${GROUP2:-nfs2}
DEVICE2=${DEVICE2:-/dev/sdc1}
MOUNT2=${MOUNT2:-/srv/nfs2}
VIP2=${VIP2:-192.0.2.52}
NODE2=${NODE2:-}
FSID2=${FSID2:-2}
# Optional: a directory present on every node (not on a shared disk) to
# export as the NFSv4 root (fsid=0), from a clone running on every node;
# each service's mount point must be below it (clients then mount
# $VIP:<mount point below V4_ROOT>/data). Empty: nfsd's automatic
# pseudo-root, clients mount $VIP:$MOUNT/data.
V4_ROOT=${V4_ROOT:-}
CIB=${CIB:-/tmp/hanfs-example-cib.xml}

pcs cluster cib "$CIB"
pcs_f() { pcs -f "$CIB" "$@"; }

# ---- 1. Fencing -- REPLACE WITH YOUR REAL FENCE DEVICE -------------------------
# See active-passive.sh. The lab sets its own fence_hanfs_lab.
: "${FENCE_AGENT:?set FENCE_AGENT and FENCE_PARAMS to your fence device (see the Fencing section)}"
FENCE_PARAMS=${FENCE_PARAMS:-}
# shellcheck disable=SC2086  # FENCE_PARAMS is a list of name=value words
pcs_f stonith create nfs-fence "$FENCE_AGENT" $FENCE_PARAMS
pcs_f property set stonith-enabled=true
pcs_f resource defaults update resource-stickiness=100

# ---- 2. One service group (called twice) -----------------------------------------
# service GROUP DEVICE MOUNT VIP FSID NODE
service() {
  g=$1 dev=$2 mnt=$3 vip=$4 fsid=$5 node=$6
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
  pcs_f resource create "$g-data" ocf:hanfs:nfs-export \
      directory="$mnt/data" clientspec="$CLIENTSPEC" fsid="$fsid" \
      options="$EXPORT_OPTIONS" unlock_on_stop=true \
      op monitor interval=10s timeout=20s op start timeout=40s op stop timeout=60s \
      --group "$g"
  pcs_f resource create "$g-ip" ocf:hanfs:float-ip \
      ip="$vip" cidr_netmask="$VIP_CIDR" nic="$NIC" tickle_dir="$mnt/.nfs-ha/tickle" \
      op monitor interval=10s timeout=20s op start timeout=20s op stop timeout=20s \
      --group "$g"
  pcs_f resource create "$g-statd" ocf:hanfs:statd-holding \
      holding_dir="$mnt/.nfs-ha/statd" ip="$vip" \
      op monitor interval=10s timeout=20s op start timeout=60s op stop timeout=30s \
      --group "$g"
  [ -n "$node" ] && pcs_f constraint location "$g" prefers "$node=50"
  return 0
}
# A node has one NFSv4 root (fsid=0), and two services that may share a
# node cannot both own it: it is either nfsd's automatic pseudo-root or,
# with V4_ROOT, a node-level export cloned on every node.
if [ -n "$V4_ROOT" ]; then
  pcs_f resource create nfs-v4root ocf:hanfs:nfs-export \
      directory="$V4_ROOT" clientspec="$CLIENTSPEC" fsid=0 options="$EXPORT_OPTIONS,crossmnt" \
      op monitor interval=30s timeout=20s op start timeout=40s op stop timeout=60s \
      clone
fi
service "$GROUP1" "$DEVICE1" "$MOUNT1" "$VIP1" "$FSID1" "$NODE1"
service "$GROUP2" "$DEVICE2" "$MOUNT2" "$VIP2" "$FSID2" "$NODE2"

# ---- 3. Activate --------------------------------------------------------------
pcs cluster cib-push "$CIB" --config
rm -f "$CIB"
echo "configured groups $GROUP1 and $GROUP2; watch them with: crm_mon"
