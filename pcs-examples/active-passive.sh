#!/bin/sh
# Active/passive kernel NFS with the hanfs agents.
#
#   Filesystem -> nfs-grace -> nfs-export (NFSv4 root, fsid=0)
#              -> nfs-export (data) -> float-ip -> statd-holding
#
# Start order is left to right, stop order right to left: the disk first, then
# the NFS server with its grace period, the exports, the floating address,
# and last the NFSv3 lock-reclaim notifications (sent from the floating
# address, once clients can reach the exports again).
#
# Run it once, as root, on ONE node of a running two-node cluster (corosync +
# pacemaker started, e.g. after `pcs cluster setup` and `pcs cluster start
# --all`). Everything is built in a CIB file and pushed in one step.
#
# Prerequisites on every node (the hanfs package documents them too):
#   - hanfs installed (/usr/lib/ocf/resource.d/hanfs/*), nfs-kernel-server and
#     nfs-common installed; the NFS server itself NOT started at boot
#     (`systemctl disable --now nfs-server`): ocf:hanfs:nfs-grace starts nfsd.
#     rpcbind, rpc.statd (with --no-notify) and rpc.mountd run as usual.
#   - /etc/nfs.conf the same everywhere, with
#       [statd] ha-callout=/usr/libexec/hanfs/hanfs-statd-callout
#     so statd reports every NFSv3 lock holder to statd-holding at once, and
#     fixed ports for statd, lockd and mountd if a firewall is in the way.
#   - the shared disk visible as $SHARED_DEVICE, with a file system holding
#     $EXPORT_DIR, $HOLDING_DIR and $TICKLE_DIR (create them once).
#   - $VIP resolvable to a name on every node (/etc/hosts): sm-notify refuses
#     an address that does not resolve back to a name.
set -eu

# ---- Parameters (environment variables, with defaults) ----------------------
GROUP=${GROUP:-nfs}                         # name of the resource group
SHARED_DEVICE=${SHARED_DEVICE:-/dev/sdb1}   # shared block device
SHARED_MOUNT=${SHARED_MOUNT:-/srv/nfs}      # where it is mounted (NFSv4 root)
FSTYPE=${FSTYPE:-ext4}
EXPORT_DIR=${EXPORT_DIR:-$SHARED_MOUNT/data} # the exported directory
CLIENTSPEC=${CLIENTSPEC:-192.0.2.0/24}      # who may mount
EXPORT_OPTIONS=${EXPORT_OPTIONS:-rw,sync,no_root_squash,no_subtree_check}
ROOT_FSID=${ROOT_FSID:-0}                   # NFSv4 pseudo-root
DATA_FSID=${DATA_FSID:-1}                   # stable: same on every node
VIP=${VIP:-192.0.2.50}                      # the address clients mount from
VIP_CIDR=${VIP_CIDR:-24}
NIC=${NIC:-eth0}
SERVER_SCOPE=${SERVER_SCOPE:-$GROUP}        # same NFSv4 server scope on all nodes
# State that moves with the service, on the shared disk:
STATE_DIR=${STATE_DIR:-$SHARED_MOUNT/.nfs-ha}
RECOVERY_DIR=${RECOVERY_DIR:-$STATE_DIR/v4recovery} # NFSv4 client records
HOLDING_DIR=${HOLDING_DIR:-$STATE_DIR/statd}        # NFSv3 lock holders
TICKLE_DIR=${TICKLE_DIR:-$STATE_DIR/tickle}         # clients' TCP connections
# Timers (seconds). Unset: the agent's defaults. Clients wait at most about
# the grace time for their locks; the lease bounds how long a dead client's
# NFSv4 state lingers. Keep grace >= lease.
GRACE_TIME=${GRACE_TIME:-}
LEASE_TIME=${LEASE_TIME:-}
NFSD_THREADS=${NFSD_THREADS:-8}
PREFERRED_NODE=${PREFERRED_NODE:-}          # optional: where the service likes to run
CIB=${CIB:-/tmp/hanfs-example-cib.xml}

pcs cluster cib "$CIB"
pcs_f() { pcs -f "$CIB" "$@"; }

# ---- 1. Fencing -- REPLACE WITH YOUR REAL FENCE DEVICE -------------------------
# Without fencing a crashed node's disk cannot be taken over safely, and
# Pacemaker will not start the service. Set FENCE_AGENT and FENCE_PARAMS for
# your hardware, for example:
#   FENCE_AGENT=fence_ipmilan
#   FENCE_PARAMS="ip=192.0.2.201 username=admin password=secret lanplus=1 pcmk_host_list=node1"
# (one device per node for IPMI-like devices: run this section once per node,
# or add more `stonith create` lines). The lab sets its own fence_hanfs_lab.
# PING_TARGETS (optional, see fencing.sh): addresses a node must reach on the
# service network before it may fence the other one.
# shellcheck source-path=SCRIPTDIR source=fencing.sh
. "$(dirname "$0")/fencing.sh"
# shellcheck disable=SC2046  # one word per node name
hanfs_fencing "${GROUP}-fence" $(crm_node -l | awk '{print $2}')

# ---- 2. Cluster-wide defaults -----------------------------------------------
# Stay where you are after a failover (do not fail back by yourself).
pcs_f resource defaults update resource-stickiness=100

# ---- 3. The service group, in start order -------------------------------------
# Shared disk.
pcs_f resource create "${GROUP}-fs" ocf:heartbeat:Filesystem \
    device="$SHARED_DEVICE" directory="$SHARED_MOUNT" fstype="$FSTYPE" \
    op monitor interval=20s timeout=40s op start timeout=60s op stop timeout=60s \
    --group "$GROUP"
# The NFS server and its grace period: starts nfsd (statd, mountd already
# run), with the same server scope everywhere and the NFSv4 client records
# on the shared disk, so NFSv4 clients may reclaim their state here.
set -- server_scope="$SERVER_SCOPE" recovery_dir="$RECOVERY_DIR" threads="$NFSD_THREADS"
[ -n "$GRACE_TIME" ] && set -- "$@" grace_time="$GRACE_TIME"
[ -n "$LEASE_TIME" ] && set -- "$@" lease_time="$LEASE_TIME"
pcs_f resource create "${GROUP}-grace" ocf:hanfs:nfs-grace "$@" \
    op monitor interval=10s timeout=20s op start timeout=60s op stop timeout=60s \
    --group "$GROUP"
# NFSv4 pseudo-root (fsid=0): NFSv4 clients mount $VIP:/<path below it>.
pcs_f resource create "${GROUP}-root" ocf:hanfs:nfs-export \
    directory="$SHARED_MOUNT" clientspec="$CLIENTSPEC" fsid="$ROOT_FSID" \
    options="$EXPORT_OPTIONS,crossmnt" \
    op monitor interval=10s timeout=20s op start timeout=40s op stop timeout=60s \
    --group "$GROUP"
# The data export (NFSv3 clients mount $VIP:$EXPORT_DIR). unlock_on_stop
# releases its locks when the export moves away, so the disk can unmount.
# The second monitor (OCF_CHECK_LEVEL=10) reads the disk under the export,
# bypassing the cache: hung storage fails it within 10 s, and the cluster
# moves the service (the disk's stop cannot finish: the node is fenced).
pcs_f resource create "${GROUP}-data" ocf:hanfs:nfs-export \
    directory="$EXPORT_DIR" clientspec="$CLIENTSPEC" fsid="$DATA_FSID" \
    options="$EXPORT_OPTIONS" unlock_on_stop=true \
    op monitor interval=10s timeout=20s \
       monitor interval=30s timeout=20s OCF_CHECK_LEVEL=10 \
       start timeout=40s stop timeout=60s \
    --group "$GROUP"
# The floating address (with gratuitous ARPs so clients find it at once).
# Its monitor records the clients' TCP connections in $TICKLE_DIR; after a
# takeover start tickles them, so they reconnect at once instead of at their
# next TCP retransmission.
pcs_f resource create "${GROUP}-ip" ocf:hanfs:float-ip \
    ip="$VIP" cidr_netmask="$VIP_CIDR" nic="$NIC" tickle_dir="$TICKLE_DIR" \
    op monitor interval=10s timeout=20s op start timeout=20s op stop timeout=20s \
    --group "$GROUP"
# NFSv3 lock holders, kept on the shared disk; after a takeover they are told
# (SM_NOTIFY from $VIP) to reclaim their locks within the grace period.
pcs_f resource create "${GROUP}-statd" ocf:hanfs:statd-holding \
    holding_dir="$HOLDING_DIR" ip="$VIP" \
    op monitor interval=10s timeout=20s op start timeout=60s op stop timeout=30s \
    --group "$GROUP"

if [ -n "$PREFERRED_NODE" ]; then
  pcs_f constraint location "$GROUP" prefers "$PREFERRED_NODE=50"
fi

# ---- 4. Activate --------------------------------------------------------------
pcs cluster cib-push "$CIB" --config
rm -f "$CIB"
echo "configured group $GROUP; watch it with: crm_mon"
