//! The per-interface kernel settings float-ip reads or needs
//! (`/proc/sys/net/ipv{4,6}/conf/<nic>/...`, per network namespace).

use std::io;

fn path(family: &str, nic: &str, key: &str) -> String {
    format!("/proc/sys/net/{family}/conf/{nic}/{key}")
}

/// An integer setting, `None` when absent or unreadable.
pub fn read(family: &str, nic: &str, key: &str) -> Option<i64> {
    std::fs::read_to_string(path(family, nic, key))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether this kernel has IPv6 (`/proc/sys/net/ipv6`).
pub fn ipv6_available() -> bool {
    std::path::Path::new("/proc/sys/net/ipv6").exists()
}

/// Whether IPv6 is switched off on `nic` (`disable_ipv6=1`).
pub fn ipv6_disabled(nic: &str) -> bool {
    read("ipv6", nic, "disable_ipv6") == Some(1)
}

/// Make removing the first (primary) IPv4 address of a subnet on `nic`
/// promote the next one instead of removing every other address of that
/// subnet with it: the kernel's default (`promote_secondaries=0`) would take
/// other floating addresses down when one stops. Returns whether the
/// setting had to be changed.
pub fn ensure_promote_secondaries(nic: &str) -> io::Result<bool> {
    if read("ipv4", nic, "promote_secondaries") == Some(1) {
        return Ok(false);
    }
    std::fs::write(path("ipv4", nic, "promote_secondaries"), "1\n")?;
    Ok(true)
}
