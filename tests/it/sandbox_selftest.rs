//! The harness itself: a sandbox is private, and a veth peer is reachable.
use crate::common;

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

/// What the host has at /usr/lib/ocf/resource.d/hanfs (nothing, or what
/// scripts/install.sh or a package put there): names and inode numbers.
fn host_hanfs() -> Vec<(String, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut v: Vec<(String, u64)> = std::fs::read_dir("/usr/lib/ocf/resource.d/hanfs")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| {
                    let ino = e.metadata().map(|m| m.ino()).unwrap_or(0);
                    (e.file_name().to_string_lossy().into_owned(), ino)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn agents_install_privately() {
    let sb = sandbox!();
    let before = host_hanfs();
    sb.install_agents();
    let l = sb.sh_ok("readlink /usr/lib/ocf/resource.d/hanfs/float-ip; test -x /usr/lib/ocf/resource.d/heartbeat/IPaddr2 && echo heartbeat-ok");
    // inside: this build's binaries, whatever the host has installed
    let built = common::bin("float-ip");
    assert!(
        l.contains(built.to_str().unwrap()) && l.contains("heartbeat-ok"),
        "{l}"
    );
    // outside: the host's directory exactly as it was (absent on a fresh
    // machine; scripts/install.sh's agents after the README's first command)
    assert_eq!(
        host_hanfs(),
        before,
        "the sandbox's agents leaked onto the host"
    );
}
