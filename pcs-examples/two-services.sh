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
#
# This is services.sh with two services, kept for its variables (GROUP1,
# DEVICE1, ... NODE2, FSID2); services.sh takes any number of services, one
# line each, and documents fencing and quorum for more nodes.
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
export CLIENTSPEC EXPORT_OPTIONS VIP_CIDR NIC FSTYPE NFSD_THREADS SERVER_SCOPE GRACE_TIME LEASE_TIME V4_ROOT CIB

# services.sh does the work: the same groups, fencing and defaults, with
# these two lines as its SERVICES.
SERVICES="$GROUP1 $DEVICE1 $MOUNT1 $VIP1 ${NODE1:--} $FSID1
$GROUP2 $DEVICE2 $MOUNT2 $VIP2 ${NODE2:--} $FSID2"
export SERVICES
exec sh "$(dirname "$0")/services.sh"
