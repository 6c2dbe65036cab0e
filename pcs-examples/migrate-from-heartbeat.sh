#!/bin/sh
# Move an NFS group from the heartbeat agents to hanfs, keeping its names,
# addresses, exports and fsids (clients keep their mounts: same address,
# same paths, same fsid, hence the same file handles) and their locks.
#
#   before: Filesystem -> nfsserver -> exportfs... -> [portblock block] -> IPaddr2
#           -> [portblock unblock] -> nfsnotify
#   after:  Filesystem -> nfs-grace -> nfs-export... -> float-ip -> statd-holding
#
# The group is stopped for the switch: a planned outage of about a minute
# (the lab measures it) during which clients block and hard mounts resume.
# Locks survive it: once the floating address is down (no client can reach
# the server any more) and while the old NFS server still runs,
# hanfs-import-state copies the NFSv3 clients statd monitors into the
# holding directory and the NFSv4 clients nfsd knows into the recovery
# directory; at start, statd-holding tells the NFSv3 clients to reclaim and
# nfs-grace lets the NFSv4 clients reclaim during its grace period.
# Run as root on the node where the group runs now (it creates hanfs' state
# directories on the mounted shared disk). tests/lab runs it (scenario
# "migrate"), then moves the migrated service to the other node and back.
# The names default to those heartbeat-active-passive.sh creates; set them
# for your own configuration.
#
# Before running it, on EVERY node:
#   1. install hanfs (package), so /usr/lib/ocf/resource.d/hanfs/* and
#      /usr/libexec/hanfs/hanfs-import-state exist;
#   2. add to /etc/nfs.conf (rpc.statd reads it when it starts):
#        [statd]
#        ha-callout=/usr/libexec/hanfs/hanfs-statd-callout
#   3. on the nodes where the group does NOT run, start the NFS helpers the
#      heartbeat nfsserver used to start itself: rpcbind, rpc.statd
#      (--no-notify), rpc.mountd; with systemd:
#        systemctl enable --now rpcbind rpc-statd nfs-mountd
#      but not nfs-server itself (ocf:hanfs:nfs-grace starts nfsd). On the
#      node where it runs they belong to nfsserver, which stops them: this
#      script starts them again when it has (NFS_HELPERS_START);
#   4. if nfsserver ran with nfs_shared_infodir, /var/lib/nfs was on the
#      shared disk only while it ran; nothing to undo on the nodes.
set -eu

GROUP=${GROUP:-nfs}
OLD_SERVER=${OLD_SERVER:-$GROUP-server}               # ocf:heartbeat:nfsserver
OLD_EXPORTS=${OLD_EXPORTS:-"$GROUP-root $GROUP-data"} # ocf:heartbeat:exportfs, in order
OLD_IP=${OLD_IP:-$GROUP-ip}                           # ocf:heartbeat:IPaddr2
OLD_NOTIFY=${OLD_NOTIFY:-$GROUP-notify}               # ocf:heartbeat:nfsnotify
OLD_PORTBLOCK=${OLD_PORTBLOCK:-"$GROUP-block $GROUP-unblock"} # ocf:heartbeat:portblock, if any
SHARED_MOUNT=${SHARED_MOUNT:-/srv/nfs}                # the group's Filesystem directory
# State that moves with the service, on the shared disk (created below):
STATE_DIR=${STATE_DIR:-$SHARED_MOUNT/.nfs-ha}
RECOVERY_DIR=${RECOVERY_DIR:-$STATE_DIR/v4recovery}
HOLDING_DIR=${HOLDING_DIR:-$STATE_DIR/statd}
# float-ip reads the list portblock's tickle_dir holds (the same format)
old_tickle=""
for r in $OLD_PORTBLOCK; do
  crm_resource --resource "$r" --query-xml >/dev/null 2>&1 || continue
  t=$(crm_resource --resource "$r" --get-parameter tickle_dir 2>/dev/null || true)
  [ -n "$t" ] && old_tickle=$t
done
TICKLE_DIR=${TICKLE_DIR:-${old_tickle:-$STATE_DIR/tickle}}
NFSD_THREADS=${NFSD_THREADS:-8}
CIB=${CIB:-/tmp/hanfs-migrate-cib.xml}
WAIT=${WAIT:-600}
IMPORT=${IMPORT:-/usr/libexec/hanfs/hanfs-import-state}
# how this node starts its NFS helpers again once nfsserver has stopped them
NFS_HELPERS_START=${NFS_HELPERS_START:-systemctl start rpcbind rpc-statd nfs-mountd}

param() { # param RESOURCE NAME: the resource's instance attribute, or empty
  crm_resource --resource "$1" --get-parameter "$2" 2>/dev/null || true
}

# ---- 1. Read the old configuration -------------------------------------------
scope=$(param "$OLD_SERVER" nfs_server_scope)
vip=$(param "$OLD_IP" ip)
netmask=$(param "$OLD_IP" cidr_netmask)
nic=$(param "$OLD_IP" nic)
[ -n "$vip" ] || { echo "no ip parameter on $OLD_IP" >&2; exit 1; }
if [ -z "$scope" ]; then
  # Without nfs_server_scope the NFSv4 server scope was this node's name, so
  # NFSv4 clients never kept their locks across a failover. Keeping it makes
  # them keep their locks through this migration; every node uses it from now.
  scope=${SERVER_SCOPE:-$(uname -n)}
  echo "$OLD_SERVER has no nfs_server_scope: hanfs will use \"$scope\" on every node" >&2
fi

# ---- 2. Checks, and state directories on the shared disk (mounted here) ----------
for a in nfs-grace nfs-export float-ip statd-holding; do
  crm_resource --show-metadata "ocf:hanfs:$a" >/dev/null || {
    echo "ocf:hanfs:$a is not installed here: install hanfs on every node first" >&2; exit 1; }
done
[ -x "$IMPORT" ] || { echo "$IMPORT is missing: install hanfs first" >&2; exit 1; }
mountpoint -q "$SHARED_MOUNT" || {
  echo "$SHARED_MOUNT is not mounted here: run this on the node where $GROUP runs" >&2; exit 1; }
mkdir -p "$RECOVERY_DIR" "$HOLDING_DIR" "$TICKLE_DIR"
# A first import while clients are still served: it checks that everything
# can be read before anything is stopped (imports only ever add).
"$IMPORT" --holding-dir "$HOLDING_DIR" --recovery-dir "$RECOVERY_DIR"

# ---- 3. The new configuration, built while the service still runs ----------------
# (in a copy of the CIB, pushed as a whole in step 5: make no other
# configuration change while this script runs, it would be undone)
pcs cluster cib "$CIB"
pcs_f() { pcs -f "$CIB" "$@"; }
exports=""
for e in $OLD_EXPORTS; do
  exports="$exports $e|$(param "$e" directory)|$(param "$e" clientspec)|$(param "$e" options)|$(param "$e" fsid)|$(param "$e" unlock_on_stop)"
done
old_portblock=""
for r in $OLD_PORTBLOCK; do
  crm_resource --resource "$r" --query-xml >/dev/null 2>&1 && old_portblock="$old_portblock $r"
done
# float-ip's tickles replace the portblock pair
for r in "$OLD_NOTIFY" $old_portblock "$OLD_IP" $OLD_EXPORTS "$OLD_SERVER"; do
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
set -- ip="$vip" tickle_dir="$TICKLE_DIR"
[ -n "$netmask" ] && set -- "$@" cidr_netmask="$netmask"
[ -n "$nic" ] && set -- "$@" nic="$nic"
pcs_f resource create "$OLD_IP" ocf:hanfs:float-ip "$@" \
    op monitor interval=10s timeout=20s op start timeout=20s op stop timeout=20s \
    --group "$GROUP"
pcs_f resource create "$GROUP-statd" ocf:hanfs:statd-holding \
    holding_dir="$HOLDING_DIR" ip="$vip" \
    op monitor interval=10s timeout=20s op start timeout=60s op stop timeout=30s \
    --group "$GROUP"

# ---- 4. Stop the service, carrying its clients' lock state over -------------------
# The address goes first (and the notifier after it in the group): no client
# can reach the server any more, so the lists are final; the old server
# still runs, so nfsd still knows its NFSv4 clients. Clients wait from here.
pcs resource disable "$OLD_IP" --wait="$WAIT"
"$IMPORT" --holding-dir "$HOLDING_DIR" --recovery-dir "$RECOVERY_DIR" || {
  echo "could not carry the clients' state over: restarting $OLD_IP, nothing changed" >&2
  pcs resource enable "$OLD_IP" --wait="$WAIT"
  exit 1
}
pcs resource disable "$GROUP" --wait="$WAIT"
# nfsserver stopped statd and mountd here; statd now starts with the callout
$NFS_HELPERS_START

# ---- 5. Switch the agents and start -------------------------------------------------
# The new configuration has neither stop mark of step 4: pushing it starts
# the group on the hanfs agents.
pcs cluster cib-push "$CIB" --config || {
  echo "the new configuration was not accepted: $GROUP is stopped, on the old agents;" >&2
  echo "'pcs resource enable $GROUP' brings it back as it was" >&2
  exit 1
}
rm -f "$CIB"
pcs resource enable "$GROUP" --wait="$WAIT"
echo "group $GROUP now runs on hanfs agents"
