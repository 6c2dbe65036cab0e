#!/bin/sh
# PID 1 of every lab node (User-Mode Linux, host root as read-only hostfs).
#
# The kernel command line gives LAB_RUN (the host run directory) and LAB_NODE;
# everything else comes from $LAB_RUN/etc/$LAB_NODE.env, written by the driver.
# This script sets a node up the way an administrator's init system would
# (private state, /etc files, network, NFS daemons, cluster daemons) and then
# hands over to the control agent (agent.py), which stays PID 1.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
# The run directory is the node's read-write window onto the host: control
# channel, fence requests, logs. Same path inside and outside.
mount -t hostfs none "$LAB_RUN" -o "$LAB_RUN"
. "$LAB_RUN/etc/$LAB_NODE.env"
LOG=$LAB_RUN/nodes/$NODE
exec >>"$LOG/init.log" 2>&1
# a setup step that must not fail: the driver refuses a node with init errors
must() { "$@" || echo "$*: failed ($?)" >>"$LOG/init-errors-$BOOT"; }
echo "init start $(date +%s.%N) node=$NODE role=$ROLE stack=$STACK boot=$BOOT"
set -x

# --- private, writable state (the root file system is the host's, read-only)
mkdir -p /dev/shm                      # UML's devtmpfs has no /dev/shm
# world-writable ones first (pacemaker's IPC lives in /dev/shm)
for d in /tmp /var/tmp /dev/shm; do mount -t tmpfs -o mode=1777 tmpfs "$d"; done
# /run first: the overlays below keep their upper layers in it
mount -t tmpfs -o mode=0755 tmpfs /run
PRIVATE="/var/log /root /srv /mnt"
# heartbeat nfsserver bind-mounts its shared infodir on /var/lib/nfs and takes
# any mount there for "already bound": on heartbeat servers /var/lib/nfs must
# be a plain, writable directory, as on a disk-installed node (it is again
# once nfsserver stops, e.g. in the migration scenario): /var/lib becomes an
# overlay (host's below, node-private tmpfs above), /var/lib/nfs stays a
# directory in it.
if [ "$ROLE" = server ] && [ "$STACK" = heartbeat ]; then
  modprobe overlay
  mkdir -p /run/varlib-overlay/upper /run/varlib-overlay/work
  must mount -t overlay overlay -o lowerdir=/var/lib,upperdir=/run/varlib-overlay/upper,workdir=/run/varlib-overlay/work /var/lib
else
  PRIVATE="$PRIVATE /var/lib/nfs"
fi
[ "$ROLE" = server ] && PRIVATE="$PRIVATE /var/lib/pacemaker /var/lib/corosync /etc/corosync /var/lib/pcsd"
for d in $PRIVATE; do mount -t tmpfs -o mode=0755 tmpfs "$d"; done
PRIVATE="/run $PRIVATE"
# The checkout, the run directory and the built agents stay visible at their
# host paths even when they live under a directory just covered by a tmpfs
# (a checkout in /tmp or /root, say).
for p in "$LAB_REPO" "$LAB_RUN" "$HANFS_BIN"; do
  [ -n "$p" ] || continue
  for d in /tmp /var/tmp /dev/shm $PRIVATE; do
    case $p in "$d"/*) mkdir -p "$p" && mount -t hostfs none "$p" -o "$p"; break;; esac
  done
done
mkdir -p /run/lock /run/rpcbind /run/sendsigs.omit.d /run/nfs-dummy /var/log/pacemaker /var/log/corosync
mkdir -p /var/lib/nfs/sm /var/lib/nfs/sm.bak /var/lib/nfs/v4recovery /var/lib/nfs/nfsdcltrack
touch /var/lib/nfs/etab /var/lib/nfs/rmtab /var/lib/nfs/state
chown statd /var/lib/nfs/sm /var/lib/nfs/sm.bak /var/lib/nfs/state

# --- /etc files an administrator would have written (bind-mounted copies)
for f in hosts nfs.conf exports; do
  cp "$LAB_RUN/etc/$f" "/run/$f" && mount --bind "/run/$f" "/etc/$f"
done
hostname "$NODE"

# --- software the lab installs into the node: /usr becomes an overlay
# (host /usr read-only below, node-private tmpfs above)
if [ "$ROLE" = server ]; then
  modprobe overlay
  mkdir -p /run/usr-overlay/upper /run/usr-overlay/work
  must mount -t overlay overlay -o lowerdir=/usr,upperdir=/run/usr-overlay/upper,workdir=/run/usr-overlay/work /usr
  # the lab's fence device (see fence_hanfs_lab)
  must install -m 0755 "$LAB_NODEDIR/fence_hanfs_lab" /usr/sbin/fence_hanfs_lab
  # systemd stand-ins: for the heartbeat nfsserver agent (nfs-server-init)
  # and for the NFS helper units a hanfs node runs (nfs-helpers)
  install -d /usr/lib/hanfs-lab
  must install -m 0755 "$LAB_NODEDIR/nfs-server-init" /usr/lib/hanfs-lab/nfs-server-init
  must install -m 0755 "$LAB_NODEDIR/nfs-helpers" /usr/lib/hanfs-lab/nfs-helpers
  # hanfs from this build (the built binaries themselves, bind-mounted), as
  # the package installs it; on heartbeat nodes too when built (the
  # migration scenario), where nothing uses it until the migration
  if [ -n "$HANFS_BIN" ]; then
    mkdir -p /usr/lib/ocf/resource.d/hanfs /usr/libexec/hanfs
    mount -t tmpfs -o mode=0755 tmpfs /usr/lib/ocf/resource.d/hanfs
    for a in $HANFS_AGENTS; do
      touch "/usr/lib/ocf/resource.d/hanfs/$a"
      must mount --bind "$HANFS_BIN/$a" "/usr/lib/ocf/resource.d/hanfs/$a"
    done
    for h in $HANFS_HELPERS; do
      touch "/usr/libexec/hanfs/$h"
      must mount --bind "$HANFS_BIN/$h" "/usr/libexec/hanfs/$h"
    done
  fi
  mkdir -p $SHARED_MOUNTS
fi

# --- network: one tap-backed interface, no default route
ip link set lo up
ip link set vec0 up
ip addr add "$IP/$PREFIX" dev vec0

# --- the shared disks under device-mapper, as LVM or multipath would put
# them (/dev/mapper/shared-b is /dev/ubdb): the hung_storage scenario
# suspends one, and its I/O then queues for ever
if [ "$ROLE" = server ]; then
  modprobe dm-mod
  for d in /dev/ubd[b-z]; do
    [ -b "$d" ] || continue
    must dmsetup create --noudevsync "shared-${d#/dev/ubd}" --table "0 $(blockdev --getsz "$d") linear $d 0"
  done
  dmsetup mknodes
fi

# --- syslog: statd's callout logs only there, and rpc.statd does (the
# client identities' ones too: /dev is shared)
python3 "$LAB_NODEDIR/syslogd.py" /dev/log "$LOG/syslog-$BOOT.log" </dev/null >/dev/null 2>&1 &
for i in 1 2 3 4 5 6 7 8 9 10; do [ -S /dev/log ] && break; sleep 0.1; done

# --- NFS daemons a node runs at boot
rpcbind -w
if [ "$ROLE" = client ]; then
  modprobe nfs; modprobe nfsv3; modprobe nfsv4
  rpc.statd
  # (the driver makes the mount points)
elif [ "$STACK" = hanfs ]; then
  # what nfs-server's systemd dependencies provide on a real node; nfsd
  # itself (threads, grace) belongs to ocf:hanfs:nfs-grace
  must /usr/lib/hanfs-lab/nfs-helpers
fi
# (heartbeat servers: ocf:heartbeat:nfsserver starts statd, mountd and nfsd)
if [ "$ROLE" = server ] && [ "$STACK" = heartbeat ]; then
  # portblock's iptables. Debian's UML kernel has no NF_TABLES_IPV4, so
  # Debian's default iptables (the nf_tables backend) cannot work in a node:
  # the node's `iptables` runs the legacy backend (ip_tables), a mount inside
  # this node only.
  must mount --bind /usr/sbin/xtables-legacy-multi /usr/sbin/xtables-nft-multi
  must modprobe -a x_tables ip_tables iptable_filter xt_multiport xt_tcpudp \
    nf_reject_ipv4 ipt_REJECT
  # portblock with the upstream fix of its rule pattern (lab.py explains)
  cp "$LAB_RUN/etc/portblock" /run/portblock && chmod 755 /run/portblock &&
    must mount --bind /run/portblock /usr/lib/ocf/resource.d/heartbeat/portblock
fi

# --- cluster daemons
if [ "$ROLE" = server ]; then
  mkdir -p /var/lib/pacemaker/cib /var/lib/pacemaker/pengine /var/lib/pacemaker/blackbox /var/lib/pacemaker/cores
  chown -R hacluster:haclient /var/lib/pacemaker /var/log/pacemaker
  cp "$LAB_RUN/etc/corosync.conf" /etc/corosync/corosync.conf
  corosync -f >"$LOG/corosync-$BOOT.out" 2>&1 &
  # PCMK_node_action_limit: Pacemaker runs at most twice the node's CPU
  # count of actions at once, and a recurring monitor holds its place while
  # it runs: 2 for these one-CPU guests, so with Filesystem's first monitor
  # running for about 4 s after its start, every later start of the group
  # waited for the previous resource's first monitor (0.25-0.35 s each; run
  # 20261204-195609: nfs-root's start initiated as nfs-grace's first monitor
  # ended). 4 is Pacemaker's default for the smallest real server, a
  # two-CPU node. An environment setting, not the node-action-limit
  # property: a node sends the DC its limit only when its load mode changes,
  # so a property set after the cluster formed may never reach the DC (run
  # 20261204-201708). The same for both stacks.
  # pacemaker's detail log goes straight to the host so a crash keeps it
  # (and not to the node's syslog too: that is for the agents and statd)
  PCMK_node_action_limit=4 \
  PCMK_logfile="$LOG/pacemaker-$BOOT.log" PCMK_logpriority=info PCMK_logfacility=none \
    pacemakerd -f >"$LOG/pacemakerd-$BOOT.out" 2>&1 &
fi

set +x
echo "init done $(date +%s.%N)"
exec python3 "$LAB_NODEDIR/agent.py" "$LAB_RUN/ctl/$NODE"
