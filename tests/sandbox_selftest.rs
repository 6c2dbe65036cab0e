//! The harness itself: a sandbox is private, and a veth peer is reachable.
mod common;

#[test]
fn sandbox_is_private_and_peer_reachable() {
    let sb = sandbox!();
    // Private /var/lib/nfs: a file made inside is not on the host.
    let marker = common::unique_name("marker");
    sb.sh_ok(&format!("touch /var/lib/nfs/{marker}"));
    assert!(!std::path::Path::new(&format!("/var/lib/nfs/{marker}")).exists());
    // Own network: only lo before the veth.
    let links = sb.sh_ok("ls /sys/class/net");
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), vec!["lo"]);
    let peer = sb.veth_peer(
        &["192.0.2.1/24", "2001:db8::1/64"],
        &["192.0.2.2/24", "2001:db8::2/64"],
    );
    sb.sh_ok("ping -c1 -W2 192.0.2.2 >/dev/null");
    peer.sh_ok("ping -c1 -W2 192.0.2.1 >/dev/null");
    sb.sh_ok("ping -6 -c1 -W2 2001:db8::2 >/dev/null");
}

#[test]
fn agents_install_privately() {
    let sb = sandbox!();
    sb.install_agents();
    let l = sb.sh_ok("ls /usr/lib/ocf/resource.d/hanfs; test -x /usr/lib/ocf/resource.d/heartbeat/IPaddr2 && echo heartbeat-ok");
    assert!(l.contains("float-ip") && l.contains("heartbeat-ok"), "{l}");
    assert!(
        !std::path::Path::new("/usr/lib/ocf/resource.d/hanfs").exists(),
        "leaked onto the host"
    );
}
