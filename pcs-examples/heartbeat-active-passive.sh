#!/bin/sh
# Active/passive kernel NFS with the stock heartbeat agents (resource-agents).
#
# This is the configuration most clusters run today, and the one hanfs is
# measured against (tests/lab runs it with --compare). To move such a cluster
# to hanfs, see migrate-from-heartbeat.sh.
#
#   Filesystem -> nfsserver -> exportfs (NFSv4 root, fsid=0) -> exportfs (data)
#              -> portblock (block) -> IPaddr2 -> portblock (unblock, tickles)
#              -> nfsnotify
#
# The portblock pair is resource-agents' own remedy for the clients' TCP
# retransmission wait after a failover (as gluster's ganesha-ha sets it up):
# NFS traffic to the address is dropped until the service is up, the unblock
# instance records the clients' connections in $TICKLE_DIR on the shared
# disk and tickles them when it starts on the node taking over. It needs
# iptables on every node. PORTBLOCK=no leaves it out.
#
# Run it once, as root, on ONE node of a running two-node cluster (corosync +
# pacemaker started, e.g. after `pcs cluster setup` and `pcs cluster start
# --all`). Everything is built in a CIB file and pushed in one step.
#
# Prerequisites on every node:
#   - nfs-kernel-server and nfs-common installed, the NFS server NOT started
#     at boot (the cluster starts it): `systemctl disable --now nfs-server`.
#   - the same /etc/nfs.conf everywhere, with fixed ports for statd, lockd and
#     mountd if a firewall sits between clients and servers.
#   - the shared disk visible as $SHARED_DEVICE, with an ext4 (or xfs) file
#     system holding $EXPORT_DIR, $SHARED_MOUNT/nfsinfo and $TICKLE_DIR
#     (create them once).
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
VIP=${VIP:-192.0.2.50}                      # the address clients mount from
VIP_CIDR=${VIP_CIDR:-24}
NIC=${NIC:-eth0}
SERVER_SCOPE=${SERVER_SCOPE:-$GROUP}        # same NFSv4 server scope on all nodes
PREFERRED_NODE=${PREFERRED_NODE:-}          # optional: where the service likes to run
PORTBLOCK=${PORTBLOCK:-yes}                 # connection tickles with portblock
TICKLE_DIR=${TICKLE_DIR:-$SHARED_MOUNT/.nfs-ha/tickle} # on the shared disk
# nfsserver drives the NFS server through systemd; on a node without systemd
# give it an init script (tests/lab uses its own nfs-server-init).
NFS_INIT_SCRIPT=${NFS_INIT_SCRIPT:-}
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
# The NFS server: statd, mountd, nfsd, with /var/lib/nfs on the shared disk
# (statd's client list and the NFSv4 client records move with the service).
set -- nfs_shared_infodir="$SHARED_MOUNT/nfsinfo" nfs_ip="$VIP" nfs_server_scope="$SERVER_SCOPE"
[ -n "$NFS_INIT_SCRIPT" ] && set -- "$@" nfs_init_script="$NFS_INIT_SCRIPT"
pcs_f resource create "${GROUP}-server" ocf:heartbeat:nfsserver "$@" \
    op monitor interval=10s timeout=20s op start timeout=60s op stop timeout=60s \
    --group "$GROUP"
# NFSv4 pseudo-root (fsid=0): NFSv4 clients mount $VIP:/data.
pcs_f resource create "${GROUP}-root" ocf:heartbeat:exportfs \
    clientspec="$CLIENTSPEC" directory="$SHARED_MOUNT" fsid=0 \
    options="$EXPORT_OPTIONS,crossmnt" \
    op monitor interval=10s timeout=20s op start timeout=40s op stop timeout=120s \
    --group "$GROUP"
# The data export (NFSv3 clients mount $VIP:$EXPORT_DIR). unlock_on_stop
# releases its NLM locks when the export moves away.
pcs_f resource create "${GROUP}-data" ocf:heartbeat:exportfs \
    clientspec="$CLIENTSPEC" directory="$EXPORT_DIR" fsid=1 \
    options="$EXPORT_OPTIONS" unlock_on_stop=1 \
    op monitor interval=10s timeout=20s op start timeout=40s op stop timeout=120s \
    --group "$GROUP"
# NFS to the address is dropped until the service is complete (start), and
# from before the address goes (stop).
if [ "$PORTBLOCK" = yes ]; then
  pcs_f resource create "${GROUP}-block" ocf:heartbeat:portblock \
      protocol=tcp portno=2049 action=block ip="$VIP" \
      op monitor interval=10s timeout=20s op start timeout=60s op stop timeout=60s \
      --group "$GROUP"
fi
# The floating address.
pcs_f resource create "${GROUP}-ip" ocf:heartbeat:IPaddr2 \
    ip="$VIP" cidr_netmask="$VIP_CIDR" nic="$NIC" \
    op monitor interval=10s timeout=20s \
    --group "$GROUP"
# Let NFS in and tickle the recorded clients (start); record the connections
# on every monitor and at stop, and reset this node's own copies of them
# (reset_local_on_unblock_stop) so a quick move back finds no stale ones.
# Its stop can outlast pcs' 20-s default: it resets the connections on port
# 2049 only, but keeps looking (0.1+0.5+1+2+4 s of sleeps, ss and tickle
# each round) while any connection to the address remains, and NFSv3
# clients keep theirs to lockd's port; the lab saw it pass 20 s (run
# 20261202-043241, then the node was fenced for it).
if [ "$PORTBLOCK" = yes ]; then
  pcs_f resource create "${GROUP}-unblock" ocf:heartbeat:portblock \
      protocol=tcp portno=2049 action=unblock ip="$VIP" \
      tickle_dir="$TICKLE_DIR" reset_local_on_unblock_stop=true \
      op monitor interval=10s timeout=20s op start timeout=60s op stop timeout=60s \
      --group "$GROUP"
fi
# Tell NFSv3 clients to reclaim their locks, from the floating address.
pcs_f resource create "${GROUP}-notify" ocf:heartbeat:nfsnotify \
    source_host="$VIP" \
    op monitor interval=30s timeout=60s op start timeout=90s \
    --group "$GROUP"

if [ -n "$PREFERRED_NODE" ]; then
  pcs_f constraint location "$GROUP" prefers "$PREFERRED_NODE=50"
fi

# ---- 4. Activate --------------------------------------------------------------
pcs cluster cib-push "$CIB" --config
rm -f "$CIB"
echo "configured group $GROUP; watch it with: crm_mon"
