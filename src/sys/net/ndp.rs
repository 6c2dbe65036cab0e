//! IPv6 neighbour discovery messages (RFC 4861) for a floating address:
//! the unsolicited neighbour advertisement that moves the address to our
//! hardware address in every neighbour's cache (7.2.6: to all-nodes,
//! override flag, target link-layer address option), and the duplicate
//! address detection solicitation (RFC 4862 5.4.2: from the unspecified
//! address to the target's solicited-node group). Whole IPv6 packets are
//! built here, checksum included, to be sent on a link-layer socket.

use super::MacAddr;
use std::net::Ipv6Addr;

pub const NEXT_HEADER_ICMPV6: u8 = 58;
/// Neighbour discovery messages must carry hop limit 255 (RFC 4861 6.1).
pub const HOP_LIMIT: u8 = 255;
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

const TYPE_SOLICITATION: u8 = 135;
const TYPE_ADVERTISEMENT: u8 = 136;
const OPT_TARGET_LLADDR: u8 = 2;
const FLAG_OVERRIDE: u32 = 0x2000_0000;
const IPV6_HEADER_LEN: usize = 40;

/// The solicited-node multicast group of `ip` (ff02::1:ffXX:XXXX).
pub fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet address an IPv6 multicast group maps to (RFC 2464 7).
pub fn multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The ICMPv6 checksum over the pseudo-header and `msg` (whose checksum
/// field must be zero).
pub fn checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, NEXT_HEADER_ICMPV6]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, mut icmp: Vec<u8>) -> Vec<u8> {
    let c = checksum(src, dst, &icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = Vec::with_capacity(IPV6_HEADER_LEN + icmp.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    p.push(NEXT_HEADER_ICMPV6);
    p.push(HOP_LIMIT);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&icmp);
    p
}

/// An unsolicited neighbour advertisement for `ip` at `our_mac`, from
/// `ip` to all nodes; send it to [`multicast_mac`]`(ALL_NODES)`.
pub fn unsolicited_advertisement(our_mac: MacAddr, ip: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![TYPE_ADVERTISEMENT, 0, 0, 0];
    m.extend_from_slice(&FLAG_OVERRIDE.to_be_bytes());
    m.extend_from_slice(&ip.octets());
    m.extend_from_slice(&[OPT_TARGET_LLADDR, 1]);
    m.extend_from_slice(&our_mac.0);
    ipv6_packet(ip, ALL_NODES, m)
}

/// A duplicate address detection solicitation for `ip`: from `::`, no
/// options; send it to [`multicast_mac`]`(`[`solicited_node`]`(ip))`.
pub fn dad_solicitation(ip: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![TYPE_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&ip.octets());
    ipv6_packet(Ipv6Addr::UNSPECIFIED, solicited_node(ip), m)
}

/// A received neighbour discovery message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NdMessage {
    Solicitation {
        source: Ipv6Addr,
        target: Ipv6Addr,
    },
    Advertisement {
        source: Ipv6Addr,
        target: Ipv6Addr,
        override_flag: bool,
        target_mac: Option<MacAddr>,
    },
}

impl NdMessage {
    /// A valid neighbour solicitation or advertisement in an IPv6 packet
    /// (hop limit 255, code 0, correct checksum), or `None`.
    pub fn parse(p: &[u8]) -> Option<NdMessage> {
        if p.len() < IPV6_HEADER_LEN + 24
            || p[0] >> 4 != 6
            || p[6] != NEXT_HEADER_ICMPV6
            || p[7] != HOP_LIMIT
        {
            return None;
        }
        let plen = u16::from_be_bytes([p[4], p[5]]) as usize;
        let msg = p.get(IPV6_HEADER_LEN..IPV6_HEADER_LEN + plen)?;
        let addr =
            |b: &[u8]| -> Ipv6Addr { Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes")) };
        let (src, dst) = (addr(&p[8..24]), addr(&p[24..40]));
        if msg.len() < 24 || msg[1] != 0 {
            return None;
        }
        let mut zeroed = msg.to_vec();
        zeroed[2] = 0;
        zeroed[3] = 0;
        if checksum(src, dst, &zeroed) != u16::from_be_bytes([msg[2], msg[3]]) {
            return None;
        }
        let target = addr(&msg[8..24]);
        match msg[0] {
            TYPE_SOLICITATION => Some(NdMessage::Solicitation {
                source: src,
                target,
            }),
            TYPE_ADVERTISEMENT => {
                let flags = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
                let mut target_mac = None;
                let mut opts = &msg[24..];
                while opts.len() >= 8 {
                    let len = usize::from(opts[1]) * 8;
                    if len == 0 || len > opts.len() {
                        break;
                    }
                    if opts[0] == OPT_TARGET_LLADDR {
                        target_mac = MacAddr::from_slice(&opts[2..8]);
                    }
                    opts = &opts[len..];
                }
                Some(NdMessage::Advertisement {
                    source: src,
                    target,
                    override_flag: flags & FLAG_OVERRIDE != 0,
                    target_mac,
                })
            }
            _ => None,
        }
    }

    /// The hardware address of another host that holds `ip` (it
    /// advertises it) or is running duplicate address detection for it at
    /// the same time (a solicitation from `::`). `sender` is the frame's
    /// source address, used when an advertisement carries no target
    /// link-layer option.
    pub fn claimant(&self, ip: Ipv6Addr, our_mac: MacAddr, sender: MacAddr) -> Option<MacAddr> {
        if sender == our_mac {
            return None;
        }
        match self {
            NdMessage::Advertisement {
                target, target_mac, ..
            } if *target == ip => Some(target_mac.unwrap_or(sender)).filter(|m| *m != our_mac),
            NdMessage::Solicitation { source, target }
                if *target == ip && source.is_unspecified() =>
            {
                Some(sender)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const THEM: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn multicast_groups() {
        let t = ip("2001:db8::12:3456");
        assert_eq!(solicited_node(t), ip("ff02::1:ff12:3456"));
        assert_eq!(
            multicast_mac(solicited_node(t)).to_string(),
            "33:33:ff:12:34:56"
        );
        assert_eq!(multicast_mac(ALL_NODES).to_string(), "33:33:00:00:00:01");
    }

    #[test]
    fn advertisement_round_trip_with_valid_checksum() {
        let t = ip("2001:db8::10");
        let p = unsolicited_advertisement(US, t);
        assert_eq!(p.len(), 40 + 32);
        assert_eq!(p[7], 255);
        // Summing the whole message including its checksum gives 0xffff,
        // i.e. our checksum of it is zero.
        let msg = &p[40..];
        assert_eq!(checksum(t, ALL_NODES, msg), 0);
        assert_eq!(
            NdMessage::parse(&p),
            Some(NdMessage::Advertisement {
                source: t,
                target: t,
                override_flag: true,
                target_mac: Some(US)
            })
        );
        // A flipped bit is refused.
        let mut bad = p.clone();
        bad[60] ^= 1;
        assert_eq!(NdMessage::parse(&bad), None);
        // Hop limit other than 255 is refused (RFC 4861 7.1.2).
        let mut hop = p.clone();
        hop[7] = 64;
        assert_eq!(NdMessage::parse(&hop), None);
    }

    #[test]
    fn dad_solicitation_and_claims() {
        let t = ip("2001:db8::10");
        let p = dad_solicitation(t);
        assert_eq!(&p[8..24], &[0u8; 16]);
        assert_eq!(&p[24..40], &solicited_node(t).octets());
        let m = NdMessage::parse(&p).unwrap();
        assert_eq!(
            m,
            NdMessage::Solicitation {
                source: Ipv6Addr::UNSPECIFIED,
                target: t
            }
        );
        // Someone else's DAD for the same address is a claim; our own is not.
        assert_eq!(m.claimant(t, US, THEM), Some(THEM));
        assert_eq!(m.claimant(t, US, US), None);
        // Their advertisement is a claim, naming the advertised address.
        let na = NdMessage::parse(&unsolicited_advertisement(THEM, t)).unwrap();
        assert_eq!(na.claimant(t, US, THEM), Some(THEM));
        assert_eq!(na.claimant(ip("2001:db8::11"), US, THEM), None);
        // An ordinary solicitation (from a real address) is someone asking.
        let ask = NdMessage::Solicitation {
            source: ip("2001:db8::2"),
            target: t,
        };
        assert_eq!(ask.claimant(t, US, THEM), None);
    }
}
