//! Name lookups the way sm-notify does them: `-v ADDR` is turned into a
//! host name with `getnameinfo(NI_NAMEREQD)`, and sm-notify exits ("my_name
//! ... is unusable") when there is none. These may block on a slow name
//! service: run them under [`crate::sys::bounded::run`].

use crate::ocf::{Deadline, OcfError, OcfResult};
use crate::sys::bounded;
use std::ffi::CStr;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// The host name `addr` maps back to (PTR record or /etc/hosts line).
pub fn reverse_name(addr: IpAddr) -> Result<String, String> {
    let sa = socket2::SockAddr::from(SocketAddr::new(addr, 0));
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: sa is a valid sockaddr of the given length; host is a
    // writable buffer of the given size; no service is requested.
    let rc = unsafe {
        libc::getnameinfo(
            sa.as_ptr() as *const libc::sockaddr,
            sa.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        // SAFETY: gai_strerror returns a static string.
        let why = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }
            .to_string_lossy()
            .into_owned();
        return Err(why);
    }
    // SAFETY: getnameinfo NUL-terminates on success.
    Ok(unsafe { CStr::from_ptr(host.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}

/// The addresses `name` resolves to.
pub fn forward_addrs(name: &str) -> Result<Vec<IpAddr>, String> {
    (name, 0)
        .to_socket_addrs()
        .map(|it| it.map(|sa| sa.ip()).collect())
        .map_err(|e| e.to_string())
}

/// What the check of one floating address found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AddrName {
    /// Maps to `name`, which maps back to the address.
    Consistent(String),
    /// Maps to `name`, which does not resolve back to the address
    /// (`forward` is what it resolves to, or the error).
    OneWay { name: String, forward: String },
    /// No name (sm-notify refuses such an address).
    NoName(String),
}

pub fn check_addr(addr: IpAddr) -> AddrName {
    match reverse_name(addr) {
        Err(why) => AddrName::NoName(why),
        Ok(name) => match forward_addrs(&name) {
            Ok(v) if v.contains(&addr) => AddrName::Consistent(name),
            Ok(v) => AddrName::OneWay {
                name,
                forward: v
                    .iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            },
            Err(e) => AddrName::OneWay { name, forward: e },
        },
    }
}

/// Every one of `ips` must have a host name, which `sm-notify -v` needs:
/// looked up in a child bounded by `deadline` (a name service may hang).
/// No name is this node's problem (2); a name that does not resolve back
/// to the address is only logged.
pub fn require_names(ips: &[IpAddr], deadline: &Deadline) -> OcfResult<()> {
    let ips = ips.to_vec();
    let names: Vec<(IpAddr, AddrName)> =
        bounded::run(deadline, "looking up the host names of ip", move || {
            Ok(ips.iter().map(|a| (*a, check_addr(*a))).collect())
        })?;
    for (a, n) in names {
        match n {
            AddrName::Consistent(name) => log::debug!("ip {a} is {name}"),
            AddrName::OneWay { name, forward } => log::warn!(
                "ip {a} maps to {name}, but {name} resolves to {forward}: clients may not match the notifications by name (they still match by address)"
            ),
            AddrName::NoName(why) => {
                log::error!(
                    "ip {a} does not resolve to a host name on this node: add a PTR record or an /etc/hosts line for it on every node"
                );
                return Err(OcfError::args(format!(
                    "ip {a} has no host name ({why}); sm-notify -v needs one"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_a_name() {
        // Every host maps 127.0.0.1 in /etc/hosts.
        let n = reverse_name("127.0.0.1".parse().unwrap()).unwrap();
        assert!(!n.is_empty());
        assert!(forward_addrs(&n).unwrap().iter().any(|a| a.is_loopback()));
    }
}
