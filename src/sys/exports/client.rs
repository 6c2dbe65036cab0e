//! Client specifications, as exportfs and `exports(5)` know them.
//!
//! Each is parsed into a type and written back in one canonical form — the
//! form etab records when exportfs is given that form — so that matching an
//! export in etab is a plain comparison:
//!
//! | given | kind | etab / canonical |
//! |---|---|---|
//! | `*` | everyone | `*` |
//! | `@trusted` | NIS netgroup | `@trusted` |
//! | `*.example.com`, `node?`, `n[0-9]` | host-name wildcard | as given |
//! | `192.0.2.5/24`, `192.0.2.0/255.255.255.0` | IPv4 subnet | `192.0.2.0/24` |
//! | `[2001:DB8::]/32`, `2001:db8::/32`, `[2001:db8::/32]` | IPv6 subnet | `2001:db8::/32` |
//! | `192.0.2.7`, `[2001:db8::7]` | one address | `192.0.2.7`, `2001:db8::7` |
//! | `client1` | host name | what it resolves to (canonical name) |
//!
//! A host name is recorded by exportfs under its canonical name, which only
//! a resolver can tell; see [`crate::sys::exports::exportfs::canonical_name`].

use crate::ocf::echo;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSpec {
    /// `*`: every client.
    World,
    /// `@name`: an NIS netgroup.
    Netgroup(String),
    /// A host-name pattern with `*`, `?` or `[...]`.
    Wildcard(String),
    /// A network: address (host bits cleared) and prefix length.
    Subnet(IpAddr, u8),
    /// One address.
    Address(IpAddr),
    /// A host name (resolved by exportfs).
    Host(String),
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// A dotted IPv4 netmask → prefix length (contiguous masks only).
fn netmask_len(m: Ipv4Addr) -> Option<u8> {
    let v = u32::from(m);
    let len = v.leading_ones();
    (v.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

fn parse_subnet(addr: &str, len: &str) -> Result<ClientSpec, String> {
    let addr: IpAddr = addr.parse().map_err(|_| {
        format!(
            "{:?} is not an IP address (expected ADDRESS/PREFIX)",
            echo(addr)
        )
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match (len.parse::<u8>(), addr, len.parse::<Ipv4Addr>()) {
        (Ok(n), _, _) if n <= max => n,
        (Ok(_), _, _) => return Err(format!("prefix length /{len} is over {max}")),
        (Err(_), IpAddr::V4(_), Ok(m)) => {
            netmask_len(m).ok_or_else(|| format!("netmask {m} is not contiguous"))?
        }
        _ => return Err(format!("/{len} is not a prefix length")),
    };
    Ok(ClientSpec::Subnet(mask(addr, prefix), prefix))
}

/// Characters of a host name (and, with the pattern characters, of a
/// wildcard).
fn host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')
}

impl ClientSpec {
    /// Parse one specification. Errors say what is wrong (the runtime
    /// names the parameter).
    pub fn parse(s: &str) -> Result<ClientSpec, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty".into());
        }
        if s == "*" {
            return Ok(ClientSpec::World);
        }
        if s.starts_with('-') {
            return Err("must not start with -".to_string());
        }
        if let Some(bad) = s
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || "(),\"'\\;".contains(*c))
        {
            return Err(format!("{bad:?} is not allowed (separate several clients with spaces; options go into options)"));
        }
        if let Some(group) = s.strip_prefix('@') {
            if group.is_empty() || !group.chars().all(host_char) {
                return Err(
                    "a netgroup is @ followed by its name (letters, digits, - . _)".to_string(),
                );
            }
            return Ok(ClientSpec::Netgroup(group.to_string()));
        }
        // IPv6 in brackets: [addr], [addr/len] or [addr]/len.
        if let Some(inner) = s.strip_prefix('[') {
            if let Some((inside, after)) = inner.split_once(']') {
                if inside.contains(':') {
                    let (addr, len) = match (inside.split_once('/'), after) {
                        (Some((a, l)), "") => (a, Some(l)),
                        (None, "") => (inside, None),
                        (None, a) if a.starts_with('/') => (inside, Some(&a[1..])),
                        _ => {
                            return Err(
                                "expected [IPv6], [IPv6/PREFIX] or [IPv6]/PREFIX".to_string()
                            )
                        }
                    };
                    let ip: Ipv6Addr = addr
                        .parse()
                        .map_err(|_| format!("{:?} is not an IPv6 address", echo(addr)))?;
                    return match len {
                        Some(l) => parse_subnet(&ip.to_string(), l),
                        None => Ok(ClientSpec::Address(IpAddr::V6(ip))),
                    };
                }
            }
        }
        let wild = s.contains(['*', '?', '[']);
        if wild {
            if s.contains(['/', ':', '@'])
                || !s.chars().all(|c| host_char(c) || "*?[]!^".contains(c))
            {
                return Err("a wildcard is a host-name pattern with * ? or [...]".to_string());
            }
            return Ok(ClientSpec::Wildcard(s.to_string()));
        }
        if let Some((addr, len)) = s.split_once('/') {
            if addr == "gss" {
                return Err("the gss/ form is obsolete; give sec= in options instead".to_string());
            }
            return parse_subnet(addr, len);
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(ClientSpec::Address(ip));
        }
        if s.contains(':') {
            return Err("not an IPv6 address".to_string());
        }
        if !s.chars().all(host_char) || s.len() > 253 || s.split('.').any(str::is_empty) {
            return Err("not a host name, address, subnet, wildcard, @netgroup or *".to_string());
        }
        if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err("not a valid IPv4 address".to_string());
        }
        Ok(ClientSpec::Host(s.to_string()))
    }

    /// Parse a space-separated list; duplicates (after normalising) are
    /// dropped.
    pub fn parse_list(s: &str) -> Result<Vec<ClientSpec>, String> {
        let mut out: Vec<ClientSpec> = Vec::new();
        for c in crate::ocf::each(s.split_whitespace(), ClientSpec::parse)? {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        if out.is_empty() {
            return Err("names no client".into());
        }
        Ok(out)
    }

    /// The name etab records for this client, when it is known without a
    /// resolver (everything but a host name).
    pub fn etab_name(&self) -> Option<String> {
        match self {
            ClientSpec::Host(_) => None,
            other => Some(other.to_string()),
        }
    }

    /// Whether exportfs resolves this client through the resolver.
    pub fn is_host_name(&self) -> bool {
        matches!(self, ClientSpec::Host(_))
    }
}

impl fmt::Display for ClientSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientSpec::World => f.write_str("*"),
            ClientSpec::Netgroup(g) => write!(f, "@{g}"),
            ClientSpec::Wildcard(w) => f.write_str(w),
            ClientSpec::Subnet(a, l) => write!(f, "{a}/{l}"),
            ClientSpec::Address(a) => write!(f, "{a}"),
            ClientSpec::Host(h) => f.write_str(h),
        }
    }
}

/// One client of an export: as configured, and as etab names it (a host
/// name as the resolver canonicalizes it, everything else as written).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportClient {
    pub spec: String,
    pub etab: String,
}

impl ExportClient {
    /// `spec` and the name etab will record for it (a host name resolved
    /// as exportfs does, bounded by `deadline`).
    pub fn name(spec: &ClientSpec, deadline: &crate::ocf::Deadline) -> crate::ocf::OcfResult<Self> {
        let etab = match spec.etab_name() {
            Some(n) => n,
            None => super::exportfs::canonical_name(&spec.to_string(), deadline)?,
        };
        Ok(ExportClient {
            spec: spec.to_string(),
            etab,
        })
    }

    /// Whether etab's `name` is this client (etab's case may differ).
    pub fn is(&self, name: &str) -> bool {
        self.etab.eq_ignore_ascii_case(name)
    }
}

/// The argument exportfs takes for `client` and `dir`: `client:dir`, with
/// an IPv6 client in brackets (`[2001:db8::/32]:/srv`), since exportfs
/// splits at the first colon otherwise.
pub fn exportfs_arg(client: &str, dir: &std::path::Path) -> std::ffi::OsString {
    let mut a = std::ffi::OsString::from(if client.contains(':') {
        format!("[{client}]:")
    } else {
        format!("{client}:")
    });
    a.push(dir.as_os_str());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        ClientSpec::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_string()
    }

    #[test]
    fn canonical_forms_are_what_etab_records() {
        assert_eq!(canon("*"), "*");
        assert_eq!(canon("@trusted_hosts"), "@trusted_hosts");
        assert_eq!(canon("*.Example.COM"), "*.Example.COM");
        assert_eq!(canon("node?"), "node?");
        assert_eq!(canon("n[0-9].example.com"), "n[0-9].example.com");
        assert_eq!(canon("192.0.2.*"), "192.0.2.*");
        assert_eq!(canon("192.0.2.0/24"), "192.0.2.0/24");
        assert_eq!(canon("192.0.2.5/24"), "192.0.2.0/24");
        assert_eq!(canon("192.0.2.0/255.255.255.0"), "192.0.2.0/24");
        assert_eq!(canon("0.0.0.0/0"), "0.0.0.0/0");
        assert_eq!(canon("2001:db8::/32"), "2001:db8::/32");
        assert_eq!(canon("[2001:DB8::]/32"), "2001:db8::/32");
        assert_eq!(canon("[2001:0db8:0::1/32]"), "2001:db8::/32");
        assert_eq!(canon("[2001:db8::7]"), "2001:db8::7");
        assert_eq!(canon("2001:DB8::7"), "2001:db8::7");
        assert_eq!(canon("192.0.2.7"), "192.0.2.7");
        assert_eq!(canon("client1"), "client1");
        assert_eq!(
            canon("nfs-client_2.example.com"),
            "nfs-client_2.example.com"
        );
    }

    #[test]
    fn kinds() {
        assert_eq!(ClientSpec::parse("*").unwrap(), ClientSpec::World);
        assert!(matches!(
            ClientSpec::parse("@g").unwrap(),
            ClientSpec::Netgroup(_)
        ));
        assert!(matches!(
            ClientSpec::parse("[2001:db8::/48]").unwrap(),
            ClientSpec::Subnet(IpAddr::V6(_), 48)
        ));
        assert!(matches!(
            ClientSpec::parse("192.0.2.1").unwrap(),
            ClientSpec::Address(_)
        ));
        let h = ClientSpec::parse("client1.example.test").unwrap();
        assert!(h.is_host_name() && h.etab_name().is_none());
        assert_eq!(
            ClientSpec::parse("10.0.0.0/8")
                .unwrap()
                .etab_name()
                .as_deref(),
            Some("10.0.0.0/8")
        );
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [
            "",
            "@",
            "@a b",
            "host(rw)",
            "a,b",
            "192.0.2.0/33",
            "192.0.2.0/255.0.255.0",
            "192.0.2.0/x",
            "2001:db8::/129",
            "[2001:db8::]/x",
            "[2001:db8::zz]",
            "[2001:db8::]junk",
            "2001:db8:::1",
            "host:1",
            "gss/krb5",
            "192.0.02.1",
            "256.1.1.1",
            "a..b",
            "*.exa/mple",
            "h%st",
            "-",
            "-o",
            "ho\\st",
        ] {
            match ClientSpec::parse(bad) {
                Ok(c) => panic!("{bad:?} accepted as {c:?}"),
                // The runtime names the parameter (nfs-export's tests).
                Err(e) => assert!(!e.is_empty(), "{bad:?}: {e}"),
            }
        }
    }

    #[test]
    fn lists() {
        let l =
            ClientSpec::parse_list(" 192.0.2.5/24  192.0.2.0/24 [2001:db8::1] *  @ng ").unwrap();
        let s: Vec<String> = l.iter().map(ToString::to_string).collect();
        assert_eq!(s, ["192.0.2.0/24", "2001:db8::1", "*", "@ng"]);
        assert!(ClientSpec::parse_list("   ").is_err());
        assert!(ClientSpec::parse_list("ok bad(x)")
            .unwrap_err()
            .contains("bad(x)"));
    }

    #[test]
    fn exportfs_arguments_bracket_ipv6() {
        let d = std::path::Path::new("/srv/a b");
        assert_eq!(exportfs_arg("2001:db8::/32", d), "[2001:db8::/32]:/srv/a b");
        assert_eq!(exportfs_arg("192.0.2.0/24", d), "192.0.2.0/24:/srv/a b");
        assert_eq!(exportfs_arg("*", d), "*:/srv/a b");
    }
}
