#!/bin/sh
# Move an NFS group from the heartbeat agents to hanfs, keeping its names,
# addresses, exports and fsids (clients keep their mounts: same address,
# same paths, same fsid, hence the same file handles).
#
#   before: Filesystem -> nfsserver -> exportfs... -> IPaddr2 -> nfsnotify
#   after:  Filesystem -> nfs-grace -> nfs-export... -> float-ip -> statd-holding
#
# The group is stopped for the switch (a short planned outage: clients block,
# hard mounts resume). Locks do NOT survive the switch: the old stack's
# statd list and NFSv4 client records are not carried into hanfs' holding and
# recovery directories (which start empty), so NFSv3 clients are not told to
# reclaim and NFSv4 reclaims are refused. Stop the applications that hold
# locks on the mounts first (or plan a maintenance window). This script is
# not yet run by the project's lab. Run as root on the node
# where the group runs now (it creates hanfs' state directories on the
# mounted shared disk).
# The names default to those heartbeat-active-passive.sh creates; set them
# for your own configuration.
#
# Before running it, on EVERY node:
#   1. install hanfs (package), so /usr/lib/ocf/resource.d/hanfs/* exist;
#   2. let the node run the NFS helpers the heartbeat nfsserver used to start
#      itself: rpcbind, rpc.statd --no-notify, rpc.mountd
#      (systemd: `systemctl enable --now rpcbind rpc-statd nfs-mountd`),
#      but not nfs-server itself (ocf:hanfs:nfs-grace starts nfsd);
#   3. add to /etc/nfs.conf, then restart rpc.statd:
#        [statd]
#        ha-callout=/usr/libexec/hanfs/hanfs-statd-callout
#   4. if nfsserver ran with nfs_shared_infodir, /var/lib/nfs was on the
#      shared disk only while it ran; nothing to undo on the nodes.
set -eu

GROUP=${GROUP:-nfs}
OLD_SERVER=${OLD_SERVER:-$GROUP-server}               # ocf:heartbeat:nfsserver
OLD_EXPORTS=${OLD_EXPORTS:-"$GROUP-root $GROUP-data"} # ocf:heartbeat:exportfs, in order
OLD_IP=${OLD_IP:-$GROUP-ip}                           # ocf:heartbeat:IPaddr2
OLD_NOTIFY=${OLD_NOTIFY:-$GROUP-notify}               # ocf:heartbeat:nfsnotify
SHARED_MOUNT=${SHARED_MOUNT:-/srv/nfs}                # the group's Filesystem directory
# State that moves with the service, on the shared disk (created below):
STATE_DIR=${STATE_DIR:-$SHARED_MOUNT/.nfs-ha}
RECOVERY_DIR=${RECOVERY_DIR:-$STATE_DIR/v4recovery}
HOLDING_DIR=${HOLDING_DIR:-$STATE_DIR/statd}
NFSD_THREADS=${NFSD_THREADS:-8}
CIB=${CIB:-/tmp/hanfs-migrate-cib.xml}
WAIT=${WAIT:-600}

param() { # param RESOURCE NAME: the resource's instance attribute, or empty
  crm_resource --resource "$1" --get-parameter "$2" 2>/dev/null || true
}

# ---- 1. Read the old configuration -------------------------------------------
scope=$(param "$OLD_SERVER" nfs_server_scope)
vip=$(param "$OLD_IP" ip)
netmask=$(param "$OLD_IP" cidr_netmask)
nic=$(param "$OLD_IP" nic)
[ -n "$vip" ] || { echo "no ip parameter on $OLD_IP" >&2; exit 1; }
[ -n "$scope" ] || {
  echo "$OLD_SERVER has no nfs_server_scope: NFSv4 clients will not be able to reclaim" >&2
  echo "after a failover; hanfs needs one (set SERVER_SCOPE to keep going)" >&2
  scope=${SERVER_SCOPE:?}
}

# ---- 2. State directories on the shared disk (mounted here) ---------------------
mountpoint -q "$SHARED_MOUNT" || {
  echo "$SHARED_MOUNT is not mounted here: run this on the node where $GROUP runs" >&2; exit 1; }
mkdir -p "$RECOVERY_DIR" "$HOLDING_DIR"

# ---- 3. Stop the service ---------------------------------------------------------
pcs resource disable "$GROUP" --wait="$WAIT"

# ---- 4. Replace the agents, in group order ---------------------------------------
pcs cluster cib "$CIB"
pcs_f() { pcs -f "$CIB" "$@"; }
exports=""
for e in $OLD_EXPORTS; do
  exports="$exports $e|$(param "$e" directory)|$(param "$e" clientspec)|$(param "$e" options)|$(param "$e" fsid)|$(param "$e" unlock_on_stop)"
done
for r in "$OLD_NOTIFY" "$OLD_IP" $OLD_EXPORTS "$OLD_SERVER"; do
  pcs_f resource delete "$r"
done

pcs_f resource create "$GROUP-grace" ocf:hanfs:nfs-grace \
    server_scope="$scope" recovery_dir="$RECOVERY_DIR" threads="$NFSD_THREADS" \
    op monitor interval=10s timeout=20s op start timeout=60s op stop timeout=60s \
    --group "$GROUP"
for spec in $exports; do
  IFS='|' read -r name dir clients opts fsid unlock <<EOF
$spec
EOF
  set -- directory="$dir" clientspec="$clients"
  [ -n "$opts" ] && set -- "$@" options="$opts"
  [ -n "$fsid" ] && set -- "$@" fsid="$fsid"
  case "$unlock" in 1|true|yes) set -- "$@" unlock_on_stop=true ;; esac
  pcs_f resource create "$name" ocf:hanfs:nfs-export "$@" \
      op monitor interval=10s timeout=20s op start timeout=40s op stop timeout=60s \
      --group "$GROUP"
done
set -- ip="$vip"
[ -n "$netmask" ] && set -- "$@" cidr_netmask="$netmask"
[ -n "$nic" ] && set -- "$@" nic="$nic"
pcs_f resource create "$OLD_IP" ocf:hanfs:float-ip "$@" \
    op monitor interval=10s timeout=20s op start timeout=20s op stop timeout=20s \
    --group "$GROUP"
pcs_f resource create "$GROUP-statd" ocf:hanfs:statd-holding \
    holding_dir="$HOLDING_DIR" ip="$vip" \
    op monitor interval=10s timeout=20s op start timeout=60s op stop timeout=30s \
    --group "$GROUP"
pcs cluster cib-push "$CIB" --config
rm -f "$CIB"

# ---- 5. Start ---------------------------------------------------------------------
pcs resource enable "$GROUP" --wait="$WAIT"
echo "group $GROUP now runs on hanfs agents"
