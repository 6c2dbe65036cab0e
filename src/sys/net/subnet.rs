//! Address + prefix length arithmetic (`192.0.2.10/24`, `2001:db8::10/64`),
//! and the parsers for the ways administrators write a netmask.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address with the prefix length of its subnet, as an interface holds
/// it (`192.0.2.10/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    addr: IpAddr,
    prefix_len: u8,
}

/// 32 for IPv4, 128 for IPv6.
pub fn max_prefix_len(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask_bits(prefix_len: u8, width: u8) -> u128 {
    if prefix_len == 0 {
        0
    } else {
        (!0u128 << (width - prefix_len)) & (!0u128 >> (128 - width))
    }
}

fn to_bits(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(*a) as u128,
        IpAddr::V6(a) => u128::from(*a),
    }
}

fn from_bits(template: &IpAddr, bits: u128) -> IpAddr {
    match template {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(bits as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

impl Subnet {
    /// `None` when the prefix length is too long for the family.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Option<Subnet> {
        (prefix_len <= max_prefix_len(&addr)).then_some(Subnet { addr, prefix_len })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    fn mask(&self) -> u128 {
        mask_bits(self.prefix_len, max_prefix_len(&self.addr))
    }

    /// Whether `ip` (same family) lies in this subnet.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        to_bits(ip) & self.mask() == to_bits(&self.addr) & self.mask()
    }

    /// The subnet's network address (host bits zero).
    pub fn network(&self) -> IpAddr {
        from_bits(&self.addr, to_bits(&self.addr) & self.mask())
    }

    /// The IPv4 directed broadcast address, for subnets that have one
    /// (prefix length 30 or shorter; /31 and /32 have none, RFC 3021).
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        match self.addr {
            IpAddr::V4(a) if self.prefix_len <= 30 => {
                Some(Ipv4Addr::from(u32::from(a) | !(self.mask() as u32)))
            }
            _ => None,
        }
    }

    /// When the address is not a host of its subnet: `"network"` or
    /// `"broadcast"` (IPv4 subnets with a broadcast address, /30 or
    /// shorter, reserve both).
    pub fn reserved_role(&self) -> Option<&'static str> {
        let b = self.broadcast()?;
        if self.network() == self.addr {
            Some("network")
        } else {
            (IpAddr::V4(b) == self.addr).then_some("broadcast")
        }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// `ip` is a host of its /`prefix_len` subnet, not its network or
/// broadcast address (else "the network address of 192.0.2.0/24").
pub fn check_host(ip: IpAddr, prefix_len: u8) -> Result<(), String> {
    let s = Subnet::new(ip, prefix_len).expect("prefix length checked");
    let Some(what) = s.reserved_role() else {
        return Ok(());
    };
    let net = Subnet::new(s.network(), prefix_len).expect("same length");
    Err(format!("the {what} address of {net}"))
}

/// Parse `ip` as float-ip takes it: a bare IPv4 or IPv6 address that can
/// float (not unspecified, loopback, multicast, broadcast, IPv6 link-local
/// or IPv4-mapped), without a prefix length (that is `cidr_netmask`).
pub fn parse_floating_ip(s: &str) -> Result<IpAddr, String> {
    if s.contains('/') {
        return Err("has a prefix length: give the bare address in ip and the prefix length in cidr_netmask".into());
    }
    let ip: IpAddr = s
        .parse()
        .map_err(|_| "not an IPv4 or IPv6 address".to_string())?;
    let why = match ip {
        _ if ip.is_unspecified() => "the unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_multicast() => "a multicast address",
        IpAddr::V4(a) if a.is_broadcast() => "the limited broadcast address",
        IpAddr::V6(a) if is_link_local(&a) => {
            "link-local: it is only valid on one link; use a global or unique-local address"
        }
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => "IPv4-mapped: write the IPv4 address",
        _ => return Ok(ip),
    };
    Err(why.into())
}

/// A list of floating addresses (statd-holding's `ip`): separated by
/// blanks or commas, IPv6 optionally bracketed, each as
/// [`parse_floating_ip`] takes it; duplicates dropped, at least one.
pub fn parse_floating_ips(v: &str) -> Result<Vec<IpAddr>, String> {
    let tokens = (v.split(|c: char| c.is_whitespace() || c == ','))
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or(t)
        });
    let mut out: Vec<IpAddr> = Vec::new();
    for a in crate::ocf::each(tokens, parse_floating_ip)? {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    if out.is_empty() {
        return Err("names no address".into());
    }
    Ok(out)
}

/// fe80::/10.
pub fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Parse a netmask as `cidr_netmask` accepts it: a prefix length (`24`,
/// `/24`, `64`), or for IPv4 also a dotted mask (`255.255.255.0`) whose
/// ones are contiguous. Zero is refused: a floating address with a /0
/// subnet would claim every destination as on-link.
pub fn parse_prefix_len(s: &str, for_ip: &IpAddr) -> Result<u8, String> {
    let s = s.trim();
    let max = max_prefix_len(for_ip);
    let t = s.strip_prefix('/').unwrap_or(s);
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return match t.parse::<u8>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("prefix length {t} is out of range 1..{max}")),
        };
    }
    if for_ip.is_ipv4() {
        if let Ok(m) = t.parse::<Ipv4Addr>() {
            let bits = u32::from(m);
            let ones = bits.leading_ones();
            if bits.checked_shl(ones).unwrap_or(0) != 0 {
                return Err(format!("netmask {t} is not contiguous"));
            }
            if ones == 0 {
                return Err(format!("netmask {t} is empty"));
            }
            return Ok(ones as u8);
        }
        return Err(format!(
            "{t:?} is neither a prefix length (1..32) nor a dotted netmask"
        ));
    }
    Err(format!("{t:?} is not a prefix length (1..128)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn floating_address_lists() {
        let v = parse_floating_ips("192.0.2.10, 2001:db8::10 [2001:db8::11],192.0.2.10").unwrap();
        assert_eq!(
            v,
            [ip("192.0.2.10"), ip("2001:db8::10"), ip("2001:db8::11")]
        );
        for (bad, why) in [
            ("", "names no address"),
            (" , ", "names no address"),
            ("192.0.2", "not an IPv4"),
            ("192.0.2.10 [::1]", "\"::1\": a loopback"),
            ("fe80::1", "link-local"),
            ("[::ffff:192.0.2.1]", "IPv4-mapped"),
            ("192.0.2.1/24", "prefix length"),
            ("[192.0.2.1", "not an IPv4"),
        ] {
            let e = parse_floating_ips(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn contains_and_network() {
        let s = Subnet::new(ip("192.0.2.1"), 24).unwrap();
        assert!(s.contains(&ip("192.0.2.200")));
        assert!(!s.contains(&ip("192.0.3.1")));
        assert!(!s.contains(&ip("2001:db8::1")));
        assert_eq!(s.network(), ip("192.0.2.0"));
        assert_eq!(s.broadcast(), Some("192.0.2.255".parse().unwrap()));
        assert_eq!(s.to_string(), "192.0.2.1/24");
        let s = Subnet::new(ip("198.51.100.7"), 31).unwrap();
        assert_eq!(s.broadcast(), None);
        let s = Subnet::new(ip("2001:db8:0:1::5"), 64).unwrap();
        assert!(s.contains(&ip("2001:db8:0:1:ffff::1")));
        assert!(!s.contains(&ip("2001:db8:0:2::1")));
        assert_eq!(s.network(), ip("2001:db8:0:1::"));
        assert_eq!(s.broadcast(), None);
        assert!(Subnet::new(ip("10.0.0.1"), 33).is_none());
        let all = Subnet::new(ip("10.0.0.1"), 0).unwrap();
        assert!(all.contains(&ip("203.0.113.9")));
        let host = Subnet::new(ip("2001:db8::1"), 128).unwrap();
        assert!(host.contains(&ip("2001:db8::1")) && !host.contains(&ip("2001:db8::2")));
    }

    #[test]
    fn network_and_broadcast_are_reserved() {
        let role = |a: &str, len| Subnet::new(ip(a), len).unwrap().reserved_role();
        assert_eq!(role("192.0.2.0", 24), Some("network"));
        assert_eq!(role("192.0.2.255", 24), Some("broadcast"));
        assert_eq!(role("192.0.2.10", 24), None);
        assert_eq!(role("192.0.2.0", 31), None, "/31 has no network address");
        assert_eq!(role("2001:db8::", 64), None, "IPv6 reserves neither");
    }

    #[test]
    fn hosts_are_not_the_network_or_broadcast_address() {
        assert_eq!(
            check_host(ip("192.0.2.0"), 24).unwrap_err(),
            "the network address of 192.0.2.0/24"
        );
        assert_eq!(
            check_host(ip("192.0.2.255"), 24).unwrap_err(),
            "the broadcast address of 192.0.2.0/24"
        );
        assert!(check_host(ip("192.0.2.0"), 31).is_ok());
        assert!(check_host(ip("2001:db8::"), 64).is_ok());
    }

    #[test]
    fn netmask_forms() {
        let v4 = ip("192.0.2.1");
        let v6 = ip("2001:db8::1");
        assert_eq!(parse_prefix_len("24", &v4), Ok(24));
        assert_eq!(parse_prefix_len("/24", &v4), Ok(24));
        assert_eq!(parse_prefix_len("255.255.255.0", &v4), Ok(24));
        assert_eq!(parse_prefix_len("255.255.255.255", &v4), Ok(32));
        assert_eq!(parse_prefix_len("64", &v6), Ok(64));
        assert_eq!(parse_prefix_len("128", &v6), Ok(128));
        assert!(parse_prefix_len("33", &v4)
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_prefix_len("0", &v4).is_err());
        assert!(parse_prefix_len("129", &v6).is_err());
        assert!(parse_prefix_len("255.0.255.0", &v4)
            .unwrap_err()
            .contains("contiguous"));
        assert!(parse_prefix_len("0.0.0.0", &v4).is_err());
        assert!(parse_prefix_len("255.255.255.0", &v6).is_err());
        assert!(parse_prefix_len("abc", &v4).is_err());
        assert!(parse_prefix_len("", &v4).is_err());
    }
}
