//! ARP for IPv4 over Ethernet (RFC 826), in the two forms RFC 5227 uses:
//! the probe ("who has ip? tell 0.0.0.0") that asks whether anyone holds an
//! address without claiming it, and the announcement (gratuitous ARP: a
//! request whose sender and target are both the address) that tells every
//! neighbour the address now lives at our hardware address.

use super::MacAddr;
use std::net::Ipv4Addr;

pub const ARP_LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket {
    pub op: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// RFC 5227 probe: sender address 0.0.0.0, so no neighbour learns
    /// anything from it; a holder of `ip` answers.
    pub fn probe(our_mac: MacAddr, ip: Ipv4Addr) -> ArpPacket {
        ArpPacket {
            op: OP_REQUEST,
            sender_mac: our_mac,
            sender_ip: Ipv4Addr::UNSPECIFIED,
            target_mac: MacAddr::ZERO,
            target_ip: ip,
        }
    }

    /// RFC 5227 announcement (gratuitous ARP request): sender = target = `ip`.
    pub fn announcement(our_mac: MacAddr, ip: Ipv4Addr) -> ArpPacket {
        ArpPacket {
            op: OP_REQUEST,
            sender_mac: our_mac,
            sender_ip: ip,
            target_mac: MacAddr::ZERO,
            target_ip: ip,
        }
    }

    pub fn to_bytes(&self) -> [u8; ARP_LEN] {
        let mut b = [0u8; ARP_LEN];
        b[0..2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        b[2..4].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac.0);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac.0);
        b[24..28].copy_from_slice(&self.target_ip.octets());
        b
    }

    /// An Ethernet/IPv4 ARP packet, or `None` for anything else.
    pub fn parse(b: &[u8]) -> Option<ArpPacket> {
        if b.len() < ARP_LEN
            || u16::from_be_bytes([b[0], b[1]]) != HTYPE_ETHERNET
            || u16::from_be_bytes([b[2], b[3]]) != PTYPE_IPV4
            || b[4] != 6
            || b[5] != 4
        {
            return None;
        }
        let ip = |o: usize| Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3]);
        Some(ArpPacket {
            op: u16::from_be_bytes([b[6], b[7]]),
            sender_mac: MacAddr::from_slice(&b[8..14])?,
            sender_ip: ip(14),
            target_mac: MacAddr::from_slice(&b[18..24])?,
            target_ip: ip(24),
        })
    }

    /// The hardware address of another host that holds `ip` (it sends ARP
    /// with `ip` as its sender address: a reply to our probe, a request or
    /// an announcement) or is probing for it at the same time (RFC 5227
    /// 2.1.1). `None` for our own packets and everything else.
    pub fn claimant(&self, ip: Ipv4Addr, our_mac: MacAddr) -> Option<MacAddr> {
        if self.sender_mac == our_mac {
            return None;
        }
        let holds = self.sender_ip == ip;
        let probes =
            self.op == OP_REQUEST && self.sender_ip.is_unspecified() && self.target_ip == ip;
        (holds || probes).then_some(self.sender_mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const THEM: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    #[test]
    fn probe_and_announcement_wire_format() {
        let ip: Ipv4Addr = "192.0.2.10".parse().unwrap();
        let p = ArpPacket::probe(US, ip).to_bytes();
        assert_eq!(&p[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&p[14..18], &[0, 0, 0, 0]);
        assert_eq!(&p[24..28], &[192, 0, 2, 10]);
        let a = ArpPacket::announcement(US, ip);
        let b = a.to_bytes();
        assert_eq!(&b[14..18], &b[24..28]);
        assert_eq!(ArpPacket::parse(&b), Some(a));
        assert_eq!(ArpPacket::parse(&b[..20]), None);
    }

    #[test]
    fn who_claims_an_address() {
        let ip: Ipv4Addr = "192.0.2.10".parse().unwrap();
        let other: Ipv4Addr = "192.0.2.11".parse().unwrap();
        // A reply to our probe, as Linux sends it (target 0.0.0.0).
        let reply = ArpPacket {
            op: OP_REPLY,
            sender_mac: THEM,
            sender_ip: ip,
            target_mac: US,
            target_ip: Ipv4Addr::UNSPECIFIED,
        };
        assert_eq!(reply.claimant(ip, US), Some(THEM));
        // Someone else probing for it at the same time.
        assert_eq!(ArpPacket::probe(THEM, ip).claimant(ip, US), Some(THEM));
        // Their announcement of it.
        assert_eq!(
            ArpPacket::announcement(THEM, ip).claimant(ip, US),
            Some(THEM)
        );
        // Our own packets, and unrelated traffic, are not claims.
        assert_eq!(ArpPacket::probe(US, ip).claimant(ip, US), None);
        assert_eq!(ArpPacket::announcement(THEM, other).claimant(ip, US), None);
        let asks = ArpPacket {
            op: OP_REQUEST,
            sender_mac: THEM,
            sender_ip: other,
            target_mac: MacAddr::ZERO,
            target_ip: ip,
        };
        assert_eq!(asks.claimant(ip, US), None);
    }
}
