#!/bin/sh
# identities.sh NIC PREFIX VIP V3PATH V4PATH V4_EVERY NAME,IP...
#
# Runs in a client node: makes one NFS client identity per NAME,IP, the way
# a separate client machine would be, and mounts the service from it:
# - network namespace NAME with a macvlan on NIC (its own MAC and IP on the
#   lab bridge) and its own loopback, so its own lockd, rpcbind and statd;
# - UTS namespace: host name NAME (the NLM caller name, and the NFSv4
#   client owner string, so each identity is a separate NFSv4 client too);
# - mount namespace: its own /var/lib/nfs (statd's sm/, sm.bak/, state)
#   and /run (rpcbind's socket, statd's pid file);
# - rpcbind and rpc.statd (with sm-notify at start, as at a client's boot);
# - /mnt/NAME-v3 (NFSv3), and for every V4_EVERY-th identity /mnt/NAME-v4
#   (NFSv4.2; none with V4_EVERY 0), hard mounts.
# A `sleep` holds the namespaces; its pid is in /tmp/hanfs-ids/NAME.pid, for
# `nsenter -t PID -n -u -m` (clients.py runs each identity's writer so).
set -e
nic=$1 prefix=$2 vip=$3 v3=$4 v4=$5 every=$6
shift 6
# a module in Debian's UML 6.1, built in in the lab's 6.12 (tests/uml)
modprobe -q macvlan 2>/dev/null || true
mkdir -p /tmp/hanfs-ids
k=0
for spec in "$@"; do
  name=${spec%,*} ip=${spec#*,}
  dev=mv$k
  ip netns add "$name"
  ip link add link "$nic" name "$dev" type macvlan mode bridge
  ip link set "$dev" netns "$name"
  ip -n "$name" link set lo up
  ip -n "$name" addr add "$ip/$prefix" dev "$dev"
  ip -n "$name" link set "$dev" up
  v4mnt=
  [ "$every" -gt 0 ] && [ $((k % every)) -eq 0 ] && v4mnt=/mnt/$name-v4
  mkdir -p "/mnt/$name-v3" $v4mnt
  rm -f "/tmp/hanfs-ids/$name.pid"
  # the identity's own mount namespace (unshare -m; ip netns exec makes one
  # too, for /sys) with private /run and /var/lib/nfs
  ip netns exec "$name" unshare -u -m --propagation private sh -c '
    name=$1 vip=$2 v3=$3 v4=$4 v4mnt=$5
    exec >/dev/null 2>&1
    hostname "$name"
    mount -t tmpfs -o mode=0755 tmpfs /run
    mkdir -p /run/rpcbind /run/lock
    mount -t tmpfs -o mode=0755 tmpfs /var/lib/nfs
    mkdir -p /var/lib/nfs/sm /var/lib/nfs/sm.bak
    touch /var/lib/nfs/state
    chown statd /var/lib/nfs/sm /var/lib/nfs/sm.bak /var/lib/nfs/state
    rpcbind -w
    rpc.statd
    echo $$ >"/tmp/hanfs-ids/$name.pid.tmp"
    mv "/tmp/hanfs-ids/$name.pid.tmp" "/tmp/hanfs-ids/$name.pid"
    exec sleep 2147483647' sh "$name" "$vip" "$v3" "$v4" "$v4mnt" &
  n=0
  while [ ! -s "/tmp/hanfs-ids/$name.pid" ]; do
    n=$((n + 1)); [ $n -lt 300 ] || { echo "$name: namespaces not up" >&2; exit 1; }
    sleep 0.1
  done
  pid=$(cat "/tmp/hanfs-ids/$name.pid")
  # mounts from inside the identity, retried as the lab's own mounts are
  for m in "vers=3 $v3 /mnt/$name-v3" ${v4mnt:+"vers=4.2 $v4 $v4mnt"}; do
    set -- $m
    ok=
    for i in $(seq 1 30); do
      nsenter -t "$pid" -n -u -m mount -t nfs -o "$1,hard" "$vip:$2" "$3" && { ok=1; break; }
      sleep 5
    done
    [ -n "$ok" ] || { echo "$name: mount $vip:$2 ($1) failed" >&2; exit 1; }
  done
  echo "$name $ip up (pid $pid)${v4mnt:+, NFSv4.2 too}"
  k=$((k + 1))
done
