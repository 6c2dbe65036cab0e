//! Starting and stopping the kernel NFS server through its control files.
//!
//! Start: timers first (the NFSv4 lease and grace times and lockd's NLM
//! grace period can only change while nfsd is stopped, and are read when it
//! starts), then — in a child process with its own UTS namespace whose
//! host name is the server scope, because nfsd takes its NFSv4 server
//! scope (and server owner) from the node name of whoever writes `threads`
//! — listening sockets handed over by file descriptor (as rpc.nfsd does,
//! so that the kernel registers NFSv3 with rpcbind) and the thread count.
//! Raising the threads from 0 starts nfsd's NFSv4 grace period and, when
//! NFSv3 is served and lockd is not already up, lockd and its NLM grace.
//!
//! Stop: threads to 0. That ends nfsd in this network namespace: every
//! NFSv4 client's state (opens, locks, delegations) is dropped, the file
//! cache is emptied, the listeners are closed and unregistered, and lockd
//! stops unless NFS client mounts keep it. Writes that can block in the
//! kernel run in a child process abandoned at the deadline.

use super::ProcRoots;
use crate::ocf::{Deadline, OcfError, OcfResult, ResultExt};
use crate::sys::{bounded, fsfile, process, program, storage};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

/// The standard NFS port.
pub const NFS_PORT: u16 = 2049;

/// How nfsd is to run on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// NFSv4 lease time, seconds (10..3600).
    pub lease: u32,
    /// NFSv4 grace time, seconds (10..3600).
    pub grace: u32,
    /// lockd's NLM grace period, seconds (0..240).
    pub nlm_grace: u32,
    pub threads: u32,
    /// The NFSv4 server scope (and server owner), the same on every node
    /// that may serve the same clients.
    pub scope: String,
    pub port: u16,
}

/// A server scope: what the kernel can announce and an administrator can
/// type the same on every node.
pub fn parse_scope(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return Err(format!("contains {c:?} (use letters, digits and . _ -)"));
    }
    Ok(s.to_string())
}

/// The running kernel's release as (major, minor), e.g. (6, 1).
pub fn kernel_release() -> (u32, u32) {
    let rel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_release(&rel)
}

pub fn parse_release(rel: &str) -> (u32, u32) {
    let mut it = rel
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let major = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor)
}

/// Before Linux 6.6, SIGKILL to the lockd thread drops every NLM lock and
/// restarts the NLM grace period ("lockd: remove SIGKILL handling", 6.6).
pub fn lockd_sigkill_restarts_grace(release: (u32, u32)) -> bool {
    release < (6, 6)
}

/// The first release whose `unlock_filesystem` revokes NFSv4 state (opens,
/// locks, delegations: "admin-revoked"); 6.1 does not, 6.12 does (both
/// tested), the release between is read from the kernel's history.
pub const UNLOCK_REVOKES_V4_FROM: (u32, u32) = (6, 9);

/// The kernel-dependent paths nfs-grace takes on this node, in one
/// sentence for the log at each start: how lockd's NLM grace period
/// begins, and what a stop on a node shared with another service does.
/// `lockd_kept_up`: lockd runs with nfsd stopped (NFS client mounts).
pub fn kernel_paths(release: (u32, u32), lockd_kept_up: bool) -> String {
    let (major, minor) = release;
    let grace = match (lockd_kept_up, lockd_sigkill_restarts_grace(release)) {
        (false, _) => "lockd's NLM grace period begins with lockd, which starts with nfsd",
        (true, true) => {
            "lockd stays up for NFS client mounts here: its NLM grace period is restarted by SIGKILL (before 6.6)"
        }
        (true, false) => {
            "lockd stays up for NFS client mounts here and cannot restart its NLM grace period (6.6 and later)"
        }
    };
    let stop = if release >= UNLOCK_REVOKES_V4_FROM {
        "unlock_filesystem revokes NFSv4 state, so a stop on a node shared with another service keeps nfsd running once the clients free it"
    } else {
        "unlock_filesystem keeps NFSv4 state, so a stop on a node shared with another service restarts nfsd when its clients hold NFSv4 state there"
    };
    format!("Linux {major}.{minor}: {grace}; {stop}")
}

/// Whether this kernel has nfsd: loaded already, or loadable.
pub fn available(roots: &ProcRoots, deadline: &Deadline) -> OcfResult<()> {
    if roots.nfsd_mounted() || nfsd_fs_registered() {
        return Ok(());
    }
    let o = process::run(
        program::command("modprobe").args(["-n", "-q", "nfsd"]),
        deadline,
    )?;
    if o.success() {
        Ok(())
    } else {
        Err(OcfError::installed(format!(
            "the kernel has no nfsd (no nfsd module for {}; kernel NFS server not available here)",
            nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default()
        )))
    }
}

fn nfsd_fs_registered() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|s| {
            s.lines()
                .any(|l| l.split_whitespace().last() == Some("nfsd"))
        })
        .unwrap_or(false)
}

/// Load nfsd (and with it lockd and sunrpc) and mount its control file
/// system at `roots.nfsd` when that is not done yet.
pub fn load(roots: &ProcRoots, deadline: &Deadline) -> OcfResult<()> {
    if roots.nfsd_mounted() {
        return Ok(());
    }
    if !nfsd_fs_registered() {
        let o = process::run(program::command("modprobe").arg("nfsd"), deadline)?;
        if !o.success() || !nfsd_fs_registered() {
            return Err(OcfError::installed(format!(
                "cannot load the kernel NFS server: modprobe nfsd: {}",
                o.last_words()
            )));
        }
        log::info!("loaded the nfsd kernel module");
    }
    if !roots.nfsd_mounted() {
        nix::mount::mount(
            Some("nfsd"),
            &roots.nfsd,
            Some("nfsd"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .or_generic(|| {
            format!(
                "cannot mount the nfsd file system on {}",
                roots.nfsd.display()
            )
        })?;
        log::info!("mounted the nfsd file system on {}", roots.nfsd.display());
    }
    Ok(())
}

/// nfsd has threads or listeners in this network namespace.
pub fn running(roots: &ProcRoots) -> bool {
    roots.threads().map(|t| t > 0).unwrap_or(false)
        || roots.portlist().map(|p| !p.is_empty()).unwrap_or(false)
}

/// A bound, listening TCP socket for nfsd on `addr`.
fn listener(addr: SocketAddr) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(64)?;
    Ok(s)
}

/// Start nfsd with `s`. nfsd must be stopped (timers cannot change while it
/// runs). On failure nfsd is stopped again (best effort).
pub fn start(roots: &ProcRoots, s: &ServerSettings, deadline: &Deadline) -> OcfResult<()> {
    if running(roots) {
        return Err(OcfError::generic(
            "nfsd is already running; stop it before changing its settings",
        ));
    }
    roots
        .set_lease_time(s.lease)
        .map_err(|e| OcfError::generic(format!("setting lease_time: {e}")))?;
    roots
        .set_grace_time(s.grace)
        .map_err(|e| OcfError::generic(format!("setting grace_time: {e}")))?;
    roots
        .set_nlm_grace_period(s.nlm_grace)
        .map_err(|e| OcfError::generic(format!("setting nlm_grace_time: {e}")))?;
    let r = roots.clone();
    let settings = s.clone();
    // In a child: the UTS namespace must not touch the agent itself, and
    // the writes may block in the kernel.
    let res = bounded::run(deadline, "starting nfsd threads", move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS)
            .map_err(|e| format!("cannot set the server scope (unshare UTS namespace): {e}"))?;
        nix::unistd::sethostname(&settings.scope)
            .map_err(|e| format!("cannot set the server scope {:?}: {e}", settings.scope))?;
        let mut socks = Vec::new();
        let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, settings.port));
        socks.push(listener(v4).map_err(|e| format!("cannot listen on {v4} for nfsd: {e}"))?);
        let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, settings.port));
        match listener(v6) {
            Ok(sock) => socks.push(sock),
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {}
            Err(e) => return Err(format!("cannot listen on {v6} for nfsd: {e}")),
        }
        for sock in &socks {
            r.add_listener_fd(sock.as_raw_fd()).map_err(|e| {
                format!("nfsd refused its listening socket ({e}); for NFSv3 the kernel registers with rpcbind: is rpcbind running?")
            })?;
        }
        r.set_threads(settings.threads).map_err(|e| e.reason)?;
        Ok(())
    });
    if let Err(e) = res {
        let _ = stop(roots, &deadline.within(Duration::from_secs(10)));
        return Err(e.into());
    }
    let threads = roots.threads()?;
    if threads == 0 {
        return Err(OcfError::generic(
            "nfsd did not start (0 threads after start)",
        ));
    }
    log::info!(
        "nfsd started: {threads} threads, lease {} s, grace {} s, NLM grace {} s, server scope {:?}, listening on {}",
        s.lease,
        s.grace,
        s.nlm_grace,
        s.scope,
        roots.portlist().unwrap_or_default().join(", ")
    );
    Ok(())
}

/// What of nfsd is still there after a stop.
fn leftovers(roots: &ProcRoots) -> Vec<String> {
    let mut left = Vec::new();
    match roots.threads() {
        Ok(0) => {}
        Ok(n) => left.push(format!("{n} threads")),
        Err(e) => left.push(e.reason),
    }
    if let Ok(p) = roots.portlist() {
        if !p.is_empty() {
            left.push(format!("listeners {}", p.join(", ")));
        }
    }
    let c = roots.clients();
    if !c.is_empty() {
        left.push(format!("{} NFSv4 clients with state", c.len()));
    }
    left
}

/// How long nfsd's threads may take to exit before [`stop_serving`] asks
/// whether the storage it serves still answers.
pub const STUCK_AFTER: Duration = Duration::from_secs(10);

/// How long that storage has to answer.
const STORAGE_ANSWER: Duration = Duration::from_secs(5);

/// Stop nfsd (threads to 0) and verify that it let go: no threads, no
/// listeners, no NFSv4 client state. Success when already stopped.
pub fn stop(roots: &ProcRoots, deadline: &Deadline) -> OcfResult<()> {
    stop_serving(roots, &[], deadline)
}

/// [`stop`], told directories on the storage nfsd serves. A thread busy
/// with a client's I/O exits when that I/O returns, so on storage that
/// stopped answering the threads never exit and only fencing the node
/// ends it: when they have not exited after [`STUCK_AFTER`] and one of
/// `storage` does not answer a read from its device within 5 s, the stop
/// fails at once, saying so, rather than at the end of its timeout. While
/// the storage answers, the stop waits as long as its deadline allows.
pub fn stop_serving(roots: &ProcRoots, storage: &[&Path], deadline: &Deadline) -> OcfResult<()> {
    if !roots.nfsd_mounted() {
        return Ok(());
    }
    if !running(roots) && roots.clients().is_empty() {
        return Ok(());
    }
    let r = roots.clone();
    let what = "stopping nfsd (writing 0 to threads)";
    let mut work = bounded::spawn(what, move || r.set_threads(0).map_err(|e| e.reason))?;
    let answer = match work.answer_by(&deadline.within(STUCK_AFTER)) {
        Some(answer) => answer,
        None => {
            let hung = storage
                .iter()
                .find_map(|d| storage::hung(d, &deadline.within(STORAGE_ANSWER)).map(|w| (d, w)));
            if let Some((dir, why)) = hung {
                return Err(OcfError::generic(format!(
                    "hung storage: nfsd's threads have not exited after {} s and {} does not answer; only fencing this node ends their I/O ({why})",
                    STUCK_AFTER.as_secs(),
                    dir.display()
                )));
            }
            log::info!(
                "nfsd's threads have not exited after {} s; its storage answers: waiting",
                STUCK_AFTER.as_secs()
            );
            work.wait(deadline)
        }
    };
    answer?;
    let done = deadline.poll(Duration::from_millis(20), || {
        leftovers(roots).is_empty().then_some(())
    });
    if done.is_none() {
        return Err(OcfError::generic(format!(
            "nfsd did not let go after its threads were set to 0: {}",
            leftovers(roots).join(", ")
        )));
    }
    // The file cache drops nfsd's open files shortly after shutdown; only
    // reported (the count is kernel-wide, other network namespaces add to it).
    let files = deadline
        .within(Duration::from_secs(2))
        .poll(Duration::from_millis(50), || {
            roots.cached_files().filter(|&n| n == 0)
        })
        .or(roots.cached_files());
    match files {
        Some(n) if n > 0 => {
            log::warn!("nfsd stopped, but its file cache still reports {n} open files")
        }
        _ => log::info!("nfsd stopped: no threads, no listeners, no NFSv4 state"),
    }
    Ok(())
}

/// rpcbind answers on its local socket (nfsd registers NFSv3 there).
pub fn rpcbind_reachable() -> bool {
    ["/run/rpcbind.sock", "/var/run/rpcbind.sock"]
        .iter()
        .any(|p| std::os::unix::net::UnixStream::connect(p).is_ok())
}

/// Warn when rpc.mountd cannot answer nfsd's export upcalls: it does only
/// if it opened the cache channels, which exist once nfsd is loaded, so
/// one started before that is deaf and clients hang at mount (seen in the
/// UML lab).
pub fn check_mountd() {
    let mountds = crate::sys::procs::named("rpc.mountd");
    if mountds.is_empty() {
        log::warn!("rpc.mountd is not running: clients cannot mount until it is started");
        return;
    }
    let serves = mountds.iter().any(|p| {
        std::fs::read_dir(format!("/proc/{p}/fd"))
            .map(|rd| {
                rd.flatten().any(|e| {
                    std::fs::read_link(e.path()).is_ok_and(|t| t.ends_with("nfsd.export/channel"))
                })
            })
            .unwrap_or(false)
    });
    if !serves {
        log::warn!(
            "rpc.mountd (pid {}) does not serve nfsd's export cache (it was started before nfsd was loaded): clients will hang at mount until it is restarted",
            mountds[0]
        );
    }
}

/// NFSv3: after a start, lockd's grace must be on for the arriving
/// clients; lockd kept up by NFS client mounts is made to restart it.
pub fn ensure_nlm_grace(roots: &ProcRoots, deadline: &Deadline) -> OcfResult<()> {
    let serves_v3 = roots.versions().map(|v| v.needs_lockd()).unwrap_or(true);
    if !serves_v3 {
        return Ok(());
    }
    match roots.nlm_in_grace() {
        Ok(true) => Ok(()),
        Ok(false) => {
            // Linux 6.6+ has no way to restart it (lockd_up_net starts the
            // grace only for a network namespace's first lockd user).
            let then = if lockd_sigkill_restarts_grace(kernel_release()) {
                "; restarting its grace period"
            } else {
                ""
            };
            log::warn!(
                "lockd did not restart with nfsd (NFS client mounts on this node keep it up){then}"
            );
            restart_nlm_grace(roots, &deadline.within(Duration::from_secs(10))).map_err(|e| {
                OcfError::generic(format!(
                    "no NLM grace period for NFSv3 clients: {e}; unmount NFSv3 mounts on this node or serve NFSv4 only"
                ))
            })
        }
        Err(e) => Err(OcfError::generic(format!(
            "cannot read lockd's grace state: {e}"
        ))),
    }
}

/// nfsd runs with these timers: one restarted behind the cluster's back
/// (rpc.nfsd, nfs-server) shows in them, and its server scope is then
/// likely wrong too.
pub fn check_timers(roots: &ProcRoots, lease: u32, grace: u32) -> OcfResult<()> {
    let times = (roots.lease_time().ok(), roots.grace_time().ok());
    if times == (Some(lease), Some(grace)) {
        return Ok(());
    }
    let show = |t: Option<u32>| {
        t.map(|v| format!("{v} s"))
            .unwrap_or_else(|| "unknown".into())
    };
    Err(OcfError::generic(format!(
        "nfsd runs with lease time {} and grace time {}, not {lease} s and {grace} s: it was restarted outside the cluster (its server scope and client tracking may be wrong too)",
        show(times.0),
        show(times.1),
    )))
}

/// Log the grace state and the NFSv4 clients connected: at info level
/// when asked or while a grace period is on, else at debug level.
pub fn log_grace(roots: &ProcRoots, at_info: bool) {
    let g = roots.grace_state();
    let clients = roots.clients();
    let msg = format!("{g}; {} NFSv4 clients connected", clients.len());
    if at_info || g.any() {
        log::info!("{msg}");
    } else {
        log::debug!("{msg}");
    }
}

/// No delegation while NFSv4 clients reclaim. Linux 6.12's nfsd answers a
/// reclaiming open (CLAIM_PREVIOUS) with a delegation, a write delegation
/// for a read-write open, whether or not the client held one before, and
/// before the other clients have reclaimed theirs: the client then grants
/// its applications, locally, locks that another client still holds and
/// has yet to reclaim (lab run 20261203-201049: a probe's lock "taken"
/// without any LOCK reaching the server). Until grace ends the only
/// delegations nfsd gives are these, so file leases are refused
/// (`fs.leases-enable` = 0) from before nfsd starts until its NFSv4 grace
/// is over ([`allow_delegations`]). `marker` records that hanfs, not the
/// administrator, turned them off; an administrator's 0 is left alone.
pub fn hold_delegations(roots: &ProcRoots, marker: &Path) -> OcfResult<()> {
    let ours = marker.exists();
    if !ours && !roots.leases_enabled()? {
        log::info!("fs.leases-enable is 0 on this node: nfsd hands out no NFSv4 delegation");
        return Ok(());
    }
    if !ours {
        fsfile::write_atomic(marker, b"fs.leases-enable was 1\n", 0o644)?;
    }
    roots.set_leases(false).map_err(|e| {
        OcfError::generic(format!(
            "cannot hold NFSv4 delegations back during grace: {}",
            e.reason
        ))
    })?;
    log::info!("NFSv4 delegations held back until the grace period is over (fs.leases-enable=0)");
    Ok(())
}

/// Delegations allowed again once no reclaim can come (NFSv4 grace over, or
/// nfsd stopped), if [`hold_delegations`] refused them. Whether it did.
pub fn allow_delegations(roots: &ProcRoots, marker: &Path) -> OcfResult<bool> {
    if !marker.exists() || roots.grace_state().v4 {
        return Ok(false);
    }
    roots.set_leases(true)?;
    fsfile::remove_state(marker)?;
    log::info!("NFSv4 grace is over: nfsd may hand out delegations again (fs.leases-enable=1)");
    Ok(true)
}

/// The lockd kernel thread of this node, if running.
pub fn lockd_thread() -> Option<i32> {
    crate::sys::procs::named("lockd")
        .into_iter()
        .find(|&p| crate::sys::procs::stat(p).is_some_and(|s| s.ppid == 2))
}

/// An ONC RPC call (RFC 5531) with AUTH_NONE credentials, over UDP to
/// `addr`; returns the reply's results (after the accepted-reply header).
fn rpc_call_udp(
    addr: SocketAddr,
    prog: u32,
    vers: u32,
    proc_: u32,
    args: &[u8],
    wait: Duration,
) -> std::io::Result<Vec<u8>> {
    let sock = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    sock.set_read_timeout(Some(wait.max(Duration::from_millis(10))))?;
    let xid = std::process::id() ^ 0x6861_6e66;
    let mut msg = Vec::with_capacity(40 + args.len());
    // xid, CALL, RPC version 2, program, version, procedure, AUTH_NONE x2
    for w in [xid, 0, 2, prog, vers, proc_, 0, 0, 0, 0] {
        msg.extend_from_slice(&w.to_be_bytes());
    }
    msg.extend_from_slice(args);
    sock.send_to(&msg, addr)?;
    let mut buf = [0u8; 512];
    let (n, _) = sock.recv_from(&mut buf)?;
    let word = |i: usize| {
        buf.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    // xid, REPLY(1), MSG_ACCEPTED(0), verifier (flavor, length 0), SUCCESS(0)
    if word(0) != Some(xid) || word(1) != Some(1) || word(2) != Some(0) || word(5) != Some(0) {
        return Err(std::io::Error::other("RPC call not accepted"));
    }
    Ok(buf[24..n].to_vec())
}

/// The port of lockd (NLM, program 100021 version 4) over UDP or TCP: the
/// fixed port when one is configured, else rpcbind's answer
/// (PMAPPROC_GETPORT).
pub fn lockd_port(roots: &ProcRoots, tcp: bool) -> Option<u16> {
    let (knob, proto) = if tcp {
        ("nlm_tcpport", 6)
    } else {
        ("nlm_udpport", 17)
    };
    if let Ok(p) = super::read_num(&roots.sysctl_nfs.join(knob)) {
        if p > 0 {
            return u16::try_from(p).ok();
        }
    }
    let mut args = Vec::new();
    for w in [100_021u32, 4, proto, 0] {
        args.extend_from_slice(&w.to_be_bytes());
    }
    let rpcbind = SocketAddr::from((Ipv4Addr::LOCALHOST, 111));
    let r = rpc_call_udp(rpcbind, 100_000, 2, 3, &args, Duration::from_millis(500)).ok()?;
    let port = u32::from_be_bytes(r.get(..4)?.try_into().ok()?);
    u16::try_from(port).ok().filter(|&p| p > 0)
}

/// Restart lockd's NLM grace period on kernels before 6.6 by SIGKILL to
/// the lockd thread (which also drops every NLM lock it holds). lockd
/// sleeps uninterruptibly-idle and only sees the signal when a request
/// wakes it, so it is then sent RPC NULL calls until the grace is on.
pub fn restart_nlm_grace(roots: &ProcRoots, deadline: &Deadline) -> OcfResult<()> {
    let rel = kernel_release();
    if !lockd_sigkill_restarts_grace(rel) {
        return Err(OcfError::generic(format!(
            "lockd stays up (NFS client mounts on this node keep it) and Linux {}.{} cannot restart its grace period",
            rel.0, rel.1
        )));
    }
    let pid = lockd_thread().ok_or_else(|| OcfError::generic("lockd thread not found"))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .or_generic(|| format!("cannot signal lockd (pid {pid})"))?;
    let port = lockd_port(roots, false);
    deadline
        .poll(Duration::from_millis(50), || {
            if let Some(p) = port {
                let _ = rpc_call_udp(
                    SocketAddr::from((Ipv4Addr::LOCALHOST, p)),
                    100_021,
                    4,
                    0,
                    &[],
                    Duration::from_millis(200),
                );
            }
            roots.nlm_in_grace().ok().filter(|&g| g)
        })
        .map(|_| log::info!("restarted lockd's NLM grace period (SIGKILL to lockd, pid {pid})"))
        .ok_or_else(|| {
            OcfError::generic(format!(
                "lockd did not restart its grace period after SIGKILL{}",
                if port.is_none() {
                    " (its port is unknown: is rpcbind running?)"
                } else {
                    ""
                }
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegations_held_back_for_the_grace_period_only() {
        let (d, r) = super::super::tests::fake();
        let leases = d.path().join("leases-enable");
        let marker = d.path().join("held");
        let grace = |on: bool| {
            std::fs::write(r.nfsd.join("threads"), "8\n").unwrap();
            std::fs::write(r.nfsd.join("v4_end_grace"), if on { "N\n" } else { "Y\n" }).unwrap();
        };
        std::fs::write(&leases, "1\n").unwrap();
        hold_delegations(&r, &marker).unwrap();
        assert_eq!(std::fs::read_to_string(&leases).unwrap(), "0");
        assert!(marker.exists());
        // A second start in the same grace (another service): still ours.
        hold_delegations(&r, &marker).unwrap();
        assert!(marker.exists());
        grace(true);
        assert!(!allow_delegations(&r, &marker).unwrap());
        assert_eq!(std::fs::read_to_string(&leases).unwrap(), "0");
        grace(false);
        assert!(allow_delegations(&r, &marker).unwrap());
        assert_eq!(std::fs::read_to_string(&leases).unwrap(), "1");
        assert!(!marker.exists());
        assert!(!allow_delegations(&r, &marker).unwrap());

        // The administrator's 0 is theirs: never turned back on.
        std::fs::write(&leases, "0\n").unwrap();
        hold_delegations(&r, &marker).unwrap();
        assert!(!marker.exists());
        assert!(!allow_delegations(&r, &marker).unwrap());
        assert_eq!(std::fs::read_to_string(&leases).unwrap(), "0\n");

        // Unreadable or garbage: the start fails, naming the file.
        std::fs::write(&leases, "yes\n").unwrap();
        let e = hold_delegations(&r, &marker).unwrap_err();
        assert!(e.reason.contains("leases-enable"), "{}", e.reason);
    }

    #[test]
    fn server_scopes() {
        assert_eq!(parse_scope("hanfs-1.a_b").unwrap(), "hanfs-1.a_b");
        assert!(parse_scope("").is_err());
        assert!(parse_scope(&"x".repeat(65)).is_err());
        assert!(parse_scope("a/b").unwrap_err().contains("'/'"));
    }

    #[test]
    fn kernel_paths_name_the_path_each_kernel_takes() {
        let old = kernel_paths((6, 1), false);
        assert!(old.starts_with("Linux 6.1: lockd's NLM grace period begins with lockd"));
        assert!(old.contains("restarts nfsd"), "{old}");
        assert!(kernel_paths((6, 1), true).contains("restarted by SIGKILL"));
        let new = kernel_paths((6, 12), true);
        assert!(new.contains("cannot restart its NLM grace period"), "{new}");
        assert!(new.contains("keeps nfsd running"), "{new}");
        assert!(kernel_paths((6, 8), false).contains("restarts nfsd"));
    }

    #[test]
    fn kernel_releases() {
        assert_eq!(parse_release("6.1.0-28-amd64"), (6, 1));
        assert_eq!(parse_release("6.18.44-fc-v769"), (6, 18));
        assert_eq!(parse_release("5.14.0-427.el9.x86_64"), (5, 14));
        assert_eq!(parse_release(""), (0, 0));
        assert!(lockd_sigkill_restarts_grace((6, 1)));
        assert!(lockd_sigkill_restarts_grace((5, 14)));
        assert!(!lockd_sigkill_restarts_grace((6, 6)));
        assert!(!lockd_sigkill_restarts_grace((6, 12)));
    }

    #[test]
    fn stop_of_absent_nfsd_is_success() {
        let (_d, r) = super::super::tests::fake();
        stop(&r, &Deadline::after(Duration::from_secs(5))).unwrap();
        std::fs::write(r.nfsd.join("threads"), "0\n").unwrap();
        std::fs::write(r.nfsd.join("portlist"), "").unwrap();
        stop(&r, &Deadline::after(Duration::from_secs(5))).unwrap();
        assert!(!running(&r));
    }

    #[test]
    fn rpc_null_call_round_trip() {
        let srv = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = srv.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut b = [0u8; 512];
            let (n, from) = srv.recv_from(&mut b).unwrap();
            let w = |i: usize| u32::from_be_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
            // CALL of program 100021 v4 procedure 0, RPC version 2, no args
            assert_eq!((n, w(1), w(2), w(3), w(4), w(5)), (40, 0, 2, 100_021, 4, 0));
            let mut r = Vec::new();
            for x in [w(0), 1, 0, 0, 0, 0, 4045] {
                r.extend_from_slice(&u32::to_be_bytes(x));
            }
            srv.send_to(&r, from).unwrap();
        });
        let res = rpc_call_udp(addr, 100_021, 4, 0, &[], Duration::from_secs(5)).unwrap();
        assert_eq!(res, 4045u32.to_be_bytes());
        t.join().unwrap();
        // nobody there: an error, bounded by the wait
        let dead = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(rpc_call_udp(dead, 1, 1, 0, &[], Duration::from_millis(100)).is_err());
    }
}
