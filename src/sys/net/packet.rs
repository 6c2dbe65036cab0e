//! Link-layer sockets (`AF_PACKET`, `SOCK_DGRAM`) bound to one interface
//! and one EtherType: the kernel adds and strips the Ethernet header, and
//! tells the sender's hardware address of every received frame.

use super::MacAddr;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;

/// One received frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Bytes of network-layer payload in the buffer.
    pub len: usize,
    /// The sender's hardware address.
    pub source: MacAddr,
    /// A copy of a frame this host sent.
    pub outgoing: bool,
}

pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
    ethertype: u16,
}

fn sockaddr(ifindex: u32, ethertype: u16, to: Option<MacAddr>) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ethertype.to_be();
    sll.sll_ifindex = ifindex as i32;
    if let Some(mac) = to {
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&mac.0);
    }
    sll
}

impl PacketSocket {
    /// A socket on `link` for the neighbour protocol of `ip` (ARP for IPv4,
    /// IPv6 for NDP), with the link's hardware address to send from. Needs
    /// `CAP_NET_RAW`; only Ethernet-like links have such an address.
    pub fn for_neighbours(
        link: &super::Link,
        ip: &std::net::IpAddr,
    ) -> io::Result<(PacketSocket, MacAddr)> {
        let mac = link.mac.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{} has no Ethernet address", link.name),
            )
        })?;
        let ethertype = if ip.is_ipv4() { ETH_P_ARP } else { ETH_P_IPV6 };
        Ok((PacketSocket::open(link.index, ethertype)?, mac))
    }

    /// Open and bind to `ifindex` for `ethertype`. Needs `CAP_NET_RAW`
    /// (`EPERM` otherwise).
    pub fn open(ifindex: u32, ethertype: u16) -> io::Result<PacketSocket> {
        // Protocol 0 at creation: nothing is queued until bind() has chosen
        // the interface and EtherType.
        // SAFETY: plain socket(2) call.
        let raw =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sll = sockaddr(ifindex, ethertype, None);
        // SAFETY: sll is a valid sockaddr_ll of the given length.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket {
            fd,
            ifindex,
            ethertype,
        })
    }

    /// Send `payload` (an ARP or IPv6 packet) to the hardware address `to`.
    pub fn send(&self, to: MacAddr, payload: &[u8]) -> io::Result<()> {
        let sll = sockaddr(self.ifindex, self.ethertype, Some(to));
        // SAFETY: valid buffer and address.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                payload.as_ptr() as *const libc::c_void,
                payload.len(),
                0,
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Wait up to `wait` for one frame; `None` when none came.
    pub fn recv(&self, buf: &mut [u8], wait: Duration) -> io::Result<Option<Frame>> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let ms = wait.as_millis().min(60_000) as u16;
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        // SAFETY: plain data.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        let mut slen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: valid buffer and address storage.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                libc::MSG_DONTWAIT,
                &mut sll as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                &mut slen,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(None)
            } else {
                Err(e)
            };
        }
        Ok(Some(Frame {
            len: n as usize,
            source: MacAddr::from_slice(&sll.sll_addr[..]).unwrap_or(MacAddr::ZERO),
            outgoing: sll.sll_pkttype == libc::PACKET_OUTGOING,
        }))
    }
}
