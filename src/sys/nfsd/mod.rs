//! The kernel NFS server's control files: `/proc/fs/nfsd` (nfsd), and
//! `/proc/fs/lockd`, `/proc/sys/fs/nfs` (lockd/NLM).
//!
//! Every path hangs off a [`ProcRoots`], so tests can point it at a
//! scratch directory laid out the same way where the host kernel has no
//! nfsd. Reading `v4_end_grace`/`nlm_end_grace` tells whether grace is on.
//!
//! [`server`] starts and stops nfsd itself (timers, server scope,
//! listeners, threads); [`cld`] runs nfsdcld, which keeps the NFSv4
//! client-recovery records (and moves it to another service's database
//! when the one it serves leaves); [`mounts`] reads the mount table.

pub mod cld;
pub mod mounts;
pub mod records;
pub mod server;

use crate::ocf::{Deadline, OcfError, OcfResult, ResultExt};
use crate::sys::exports::ExportTable;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The agent whose instances run nfsd on a node (their state files say
/// which nfs-grace resources are started, or starting, here).
pub const NFS_GRACE: &str = "nfs-grace";

/// The nfs-grace resources recorded on this node, sorted by instance; each
/// state file is rewritten at its start and stop, which is when nfsd and
/// lockd restart.
pub fn grace_states(runtime_dir: &Path) -> Vec<crate::ocf::InstanceFile> {
    crate::ocf::instance_files(runtime_dir, NFS_GRACE)
}

/// How many nfs-grace resources are recorded on this node.
pub fn grace_resources(runtime_dir: &Path) -> usize {
    grace_states(runtime_dir).len()
}

/// Where the kernel's NFS control files are.
#[derive(Debug, Clone)]
pub struct ProcRoots {
    /// `/proc/fs/nfsd` (the nfsd file system mount).
    pub nfsd: PathBuf,
    /// `/proc/fs/lockd`.
    pub lockd: PathBuf,
    /// `/proc/sys/fs/nfs`.
    pub sysctl_nfs: PathBuf,
}

impl Default for ProcRoots {
    fn default() -> Self {
        ProcRoots {
            nfsd: "/proc/fs/nfsd".into(),
            lockd: "/proc/fs/lockd".into(),
            sysctl_nfs: "/proc/sys/fs/nfs".into(),
        }
    }
}

fn read_trim(p: &Path) -> OcfResult<String> {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .or_generic(|| format!("cannot read {}", p.display()))
}

fn write_str(p: &Path, v: &str) -> OcfResult<()> {
    std::fs::write(p, v).or_generic(|| format!("cannot write {v:?} to {}", p.display()))
}

fn read_num(p: &Path) -> OcfResult<u32> {
    let s = read_trim(p)?;
    s.parse()
        .map_err(|_| OcfError::generic(format!("unexpected value {s:?} in {}", p.display())))
}

/// The NFS versions nfsd serves (`/proc/fs/nfsd/versions`, e.g.
/// `+3 +4 +4.1 +4.2`, or `-2 +3 +4 -4.0 +4.1 +4.2`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NfsdVersions {
    /// (version, enabled), e.g. ("4.1", true).
    pub entries: Vec<(String, bool)>,
}

impl NfsdVersions {
    pub fn parse(s: &str) -> NfsdVersions {
        let entries = s
            .split_whitespace()
            .filter_map(|w| {
                let (on, v) = match w.as_bytes().first()? {
                    b'+' => (true, &w[1..]),
                    b'-' => (false, &w[1..]),
                    _ => return None,
                };
                Some((v.to_string(), on))
            })
            .collect();
        NfsdVersions { entries }
    }

    pub fn enabled(&self, v: &str) -> bool {
        self.entries.iter().any(|(n, on)| n == v && *on)
    }

    /// Whether nfsd serves NFSv2 or NFSv3, which is when it runs lockd
    /// (NLM) and registers with rpcbind.
    pub fn needs_lockd(&self) -> bool {
        self.enabled("2") || self.enabled("3")
    }
}

/// Whether the node is in grace, as the kernel says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraceState {
    /// nfsd has threads (the NFSv4 flag only means something then).
    pub nfsd_running: bool,
    /// nfsd's NFSv4 grace period is in force.
    pub v4: bool,
    /// lockd's NLM grace period is in force; `None` when lockd's control
    /// file is absent (lockd not loaded).
    pub nlm: Option<bool>,
}

impl GraceState {
    /// lockd would refuse an NLM reclaim now: nfsd, and with it lockd,
    /// runs in this network namespace and no grace period is in force
    /// (the kernel's `locks_in_grace` asks lockd's and nfsd's). False when
    /// it cannot tell.
    pub fn refuses_reclaims(&self) -> bool {
        self.nfsd_running && !self.v4 && self.nlm == Some(false)
    }

    pub fn any(&self) -> bool {
        self.v4 || self.nlm == Some(true)
    }
}

impl fmt::Display for GraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |b: bool| if b { "in grace" } else { "grace over" };
        if !self.nfsd_running {
            write!(f, "nfsd stopped")?;
        } else {
            write!(f, "NFSv4 {}", on(self.v4))?;
        }
        match self.nlm {
            Some(n) => write!(f, ", NLM {}", on(n)),
            None => write!(f, ", lockd not loaded"),
        }
    }
}

/// One NFSv4 client as nfsd lists it (`/proc/fs/nfsd/clients/<id>/info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NfsdClient {
    /// The directory name under `clients/`.
    pub id: String,
    /// The client's own name (its co_ownerid), as printed (quoted,
    /// escaped).
    pub name: String,
    pub address: String,
    /// `confirmed`, `unconfirmed`, `courtesy`, ...
    pub status: String,
    pub minor_version: Option<u32>,
}

impl NfsdClient {
    pub fn parse_info(id: &str, text: &str) -> NfsdClient {
        let mut c = NfsdClient {
            id: id.to_string(),
            ..Default::default()
        };
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.trim() {
                "name" => c.name = v.to_string(),
                "address" => c.address = v.trim_matches('"').to_string(),
                "status" => c.status = v.to_string(),
                "minor version" => c.minor_version = v.parse().ok(),
                _ => {}
            }
        }
        c
    }

    /// The client's name as the bytes it sent (what nfsdcld records), from
    /// the printed form: nfsd quotes it and writes `"`, `\` and every byte
    /// that is not printable ASCII as `\xHH` (other C escapes are read too).
    /// `None` when the text is not a quoted, well-formed string.
    pub fn name_bytes(&self) -> Option<Vec<u8>> {
        unquote(&self.name)
    }

    /// Whether the client has confirmed its id (only those hold state worth
    /// a recovery record; kernels without `status:` list only those).
    pub fn confirmed(&self) -> bool {
        matches!(
            self.status.as_str(),
            "" | "confirmed" | "courtesy" | "expirable"
        )
    }
}

/// A C-style quoted string, as the kernel's `seq_escape_mem` prints it.
fn unquote(s: &str) -> Option<Vec<u8>> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let e = *inner.get(i)?;
        i += 1;
        match e {
            b'x' => {
                let hex = std::str::from_utf8(inner.get(i..i + 2)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b'0'..=b'7' => {
                let start = i - 1;
                let end = (start + 3).min(inner.len());
                let n = inner[start..end]
                    .iter()
                    .take_while(|b| (b'0'..=b'7').contains(b))
                    .count();
                let oct = std::str::from_utf8(&inner[start..start + n]).ok()?;
                out.push(u8::try_from(u32::from_str_radix(oct, 8).ok()?).ok()?);
                i = start + n;
            }
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'f' => out.push(0x0c),
            b'v' => out.push(0x0b),
            b'a' => out.push(0x07),
            b'e' => out.push(0x1b),
            b'\\' | b'"' => out.push(e),
            _ => return None,
        }
    }
    Some(out)
}

/// The device (major, minor) of every superblock on which the `states`
/// text of a client holds NFSv4 state (opens, locks, delegations), from
/// lines like `- 0x..: { type: open, ..., superblock: "07:00:13", ... }`.
pub fn state_devices(states: &str) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for line in states.lines() {
        let Some(rest) = line.split("superblock: \"").nth(1) else {
            continue;
        };
        let mut parts = rest.split(['"', ':']);
        let (Some(maj), Some(min)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let (Ok(a), Ok(b)) = (u32::from_str_radix(maj, 16), u32::from_str_radix(min, 16)) {
            if !out.contains(&(a, b)) {
                out.push((a, b));
            }
        }
    }
    out
}

/// How many NFSv4 states in a client's `states` text were revoked by
/// `unlock_filesystem` (Linux 6.9 and later: `admin-revoked`) and not yet
/// freed by the client. Their lines no longer name a superblock, yet they
/// keep their file system busy (seen on 6.12) until the client frees them
/// (FREE_STATEID, once a SEQUENCE reply tells it of the revocation) or
/// its lease expires.
pub fn revoked_states(states: &str) -> usize {
    states
        .lines()
        .filter(|l| l.trim_end().ends_with("admin-revoked }"))
        .count()
}

impl ProcRoots {
    /// Whether the nfsd control file system is mounted (its `threads` file
    /// exists).
    pub fn nfsd_mounted(&self) -> bool {
        self.nfsd.join("threads").exists()
    }

    /// Number of running nfsd threads (0 when nfsd is stopped).
    pub fn threads(&self) -> OcfResult<u32> {
        read_num(&self.nfsd.join("threads"))
    }

    /// Set the number of nfsd threads. Starting (0 -> n) starts nfsd, its
    /// NFSv4 grace period and, for NFSv3, lockd; 0 stops nfsd and drops all
    /// NFSv4 state. The write can block in the kernel: callers run it in a
    /// child (see [`server`]).
    pub fn set_threads(&self, n: u32) -> OcfResult<()> {
        write_str(&self.nfsd.join("threads"), &n.to_string())
    }

    /// NFSv4 lease time, seconds.
    pub fn lease_time(&self) -> OcfResult<u32> {
        read_num(&self.nfsd.join("nfsv4leasetime"))
    }

    /// Set the NFSv4 lease time (10..3600 s; only while nfsd is stopped).
    pub fn set_lease_time(&self, secs: u32) -> OcfResult<()> {
        write_str(&self.nfsd.join("nfsv4leasetime"), &secs.to_string())
    }

    /// NFSv4 grace time, seconds.
    pub fn grace_time(&self) -> OcfResult<u32> {
        read_num(&self.nfsd.join("nfsv4gracetime"))
    }

    /// Set the NFSv4 grace time (10..3600 s; only while nfsd is stopped).
    pub fn set_grace_time(&self, secs: u32) -> OcfResult<()> {
        write_str(&self.nfsd.join("nfsv4gracetime"), &secs.to_string())
    }

    /// lockd's NLM grace period setting, seconds (0 = lockd's default,
    /// 5 x nlm_timeout). Read by lockd when it starts.
    pub fn nlm_grace_period(&self) -> OcfResult<u32> {
        read_num(&self.sysctl_nfs.join("nlm_grace_period"))
    }

    /// Set lockd's NLM grace period (0..240 s; lockd rounds it up to a
    /// multiple of nlm_timeout, 10 s by default). Takes effect when lockd
    /// next starts.
    pub fn set_nlm_grace_period(&self, secs: u32) -> OcfResult<()> {
        write_str(&self.sysctl_nfs.join("nlm_grace_period"), &secs.to_string())
    }

    /// The legacy NFSv4 recovery directory (only used by kernels built with
    /// legacy client tracking, when neither nfsdcld nor nfsdcltrack
    /// answers).
    pub fn recovery_dir(&self) -> OcfResult<PathBuf> {
        read_trim(&self.nfsd.join("nfsv4recoverydir")).map(PathBuf::from)
    }

    pub fn set_recovery_dir(&self, dir: &Path) -> OcfResult<()> {
        write_str(&self.nfsd.join("nfsv4recoverydir"), &dir.to_string_lossy())
    }

    /// The NFS versions nfsd serves (or will serve when started).
    pub fn versions(&self) -> OcfResult<NfsdVersions> {
        read_trim(&self.nfsd.join("versions")).map(|s| NfsdVersions::parse(&s))
    }

    /// nfsd's listeners (`portlist`: `tcp 2049`, ...); empty when none.
    pub fn portlist(&self) -> OcfResult<Vec<String>> {
        Ok(read_trim(&self.nfsd.join("portlist"))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Hand nfsd a bound (and, for TCP, listening) socket by its file
    /// descriptor number, as rpc.nfsd does: the kernel registers it with
    /// rpcbind for the versions it serves.
    pub fn add_listener_fd(&self, fd: i32) -> OcfResult<()> {
        write_str(&self.nfsd.join("portlist"), &fd.to_string())
    }

    /// Whether nfsd's (NFSv4) grace period is in force: `v4_end_grace`
    /// reads `N` while grace is on, `Y` once it has ended. Meaningful only
    /// while nfsd runs.
    pub fn v4_in_grace(&self) -> OcfResult<bool> {
        Ok(read_trim(&self.nfsd.join("v4_end_grace"))?.starts_with('N'))
    }

    /// End nfsd's grace period now. Clients recorded for reclaim that have
    /// not reclaimed by then lose their records.
    pub fn end_v4_grace(&self) -> OcfResult<()> {
        write_str(&self.nfsd.join("v4_end_grace"), "Y")
    }

    /// Whether lockd's (NLM) grace period is in force (`nlm_end_grace`).
    pub fn nlm_in_grace(&self) -> OcfResult<bool> {
        Ok(read_trim(&self.lockd.join("nlm_end_grace"))?.starts_with('N'))
    }

    /// End lockd's grace period now.
    pub fn end_nlm_grace(&self) -> OcfResult<()> {
        write_str(&self.lockd.join("nlm_end_grace"), "Y")
    }

    /// Both grace flags at once.
    pub fn grace_state(&self) -> GraceState {
        let nfsd_running = self.threads().map(|t| t > 0).unwrap_or(false);
        GraceState {
            nfsd_running,
            v4: nfsd_running && self.v4_in_grace().unwrap_or(false),
            nlm: self.nlm_in_grace().ok(),
        }
    }

    /// The NFSv4 clients nfsd currently knows (empty when nfsd is stopped
    /// or the kernel predates `clients/`).
    pub fn clients(&self) -> Vec<NfsdClient> {
        let dir = self.nfsd.join("clients");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut v: Vec<NfsdClient> = rd
            .flatten()
            .filter_map(|e| {
                let id = e.file_name().to_string_lossy().into_owned();
                let info = std::fs::read_to_string(e.path().join("info")).ok()?;
                Some(NfsdClient::parse_info(&id, &info))
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Every NFSv4 client's `states` text.
    fn client_states(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.nfsd.join("clients")) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("states")).ok())
            .collect()
    }

    /// Devices (major, minor) of the file systems on which some NFSv4
    /// client holds state (opens, locks, delegations) right now.
    pub fn v4_state_devices(&self) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for s in self.client_states() {
            for d in state_devices(&s) {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        out
    }

    /// NFSv4 states revoked by `unlock_filesystem` that their clients have
    /// not freed yet (see [`revoked_states`]), over every client.
    pub fn v4_revoked_states(&self) -> usize {
        self.client_states().iter().map(|s| revoked_states(s)).sum()
    }

    /// Wait until `deadline` (polling every 100 ms) for the clients to free
    /// the NFSv4 states that unlock_filesystem revoked; how many are still
    /// held then.
    pub fn wait_revoked_freed(&self, deadline: &Deadline) -> usize {
        let t0 = Instant::now();
        match deadline.poll(Duration::from_millis(100), || {
            (self.v4_revoked_states() == 0).then_some(())
        }) {
            Some(()) => {
                log::info!(
                    "the clients freed their revoked NFSv4 states after {:.1} s",
                    t0.elapsed().as_secs_f64()
                );
                0
            }
            None => self.v4_revoked_states(),
        }
    }

    /// Devices that hold NFSv4 state but are no longer in `exports`: what
    /// an unexport left pinned (kernels before ~6.9 do not revoke it).
    pub fn v4_state_unexported(&self, exports: &ExportTable) -> Vec<(u32, u32)> {
        let held = self.v4_state_devices();
        if held.is_empty() {
            return held;
        }
        let mounts = mounts::current();
        let table = exports.read_all().unwrap_or_else(|e| {
            log::warn!("{e}");
            Vec::new()
        });
        let exported: Vec<(u32, u32)> = table
            .iter()
            .filter_map(|e| mounts::containing(&mounts, &e.directory).map(|m| m.dev))
            .collect();
        held.into_iter().filter(|d| !exported.contains(d)).collect()
    }

    /// Files nfsd's file cache keeps open (`filecache`: "total inodes" on
    /// 6.x, "total entries" before); `None` when not reported.
    pub fn cached_files(&self) -> Option<u64> {
        let s = std::fs::read_to_string(self.nfsd.join("filecache")).ok()?;
        s.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k.trim(), "total inodes" | "total entries")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
    }

    /// Release every NLM lock (and, on kernels ~6.9+, NFSv4 state) held on
    /// the file system that contains `path`. The kernel looks the path up,
    /// which blocks on dead storage: call it in bounded work.
    pub fn unlock_filesystem(&self, path: &Path) -> OcfResult<()> {
        use std::os::unix::ffi::OsStrExt;
        let file = self.nfsd.join("unlock_filesystem");
        std::fs::write(&file, path.as_os_str().as_bytes())
            .or_generic(|| format!("cannot write {:?} to {}", path, file.display()))
    }

    /// `fs.leases-enable`, beside `fs/nfs`: whether files may be leased,
    /// and so whether nfsd may hand out NFSv4 delegations.
    fn leases_file(&self) -> PathBuf {
        self.sysctl_nfs
            .parent()
            .unwrap_or(Path::new("/proc/sys/fs"))
            .join("leases-enable")
    }

    /// Whether file leases (and nfsd's delegations) are allowed.
    pub fn leases_enabled(&self) -> OcfResult<bool> {
        read_num(&self.leases_file()).map(|n| n != 0)
    }

    /// Allow or refuse file leases: refused, nfsd hands out no delegation
    /// (the ones it holds stay until returned or recalled).
    pub fn set_leases(&self, on: bool) -> OcfResult<()> {
        write_str(&self.leases_file(), if on { "1" } else { "0" })
    }

    /// Release every NLM lock taken through server address `ip`.
    pub fn unlock_ip(&self, ip: &std::net::IpAddr) -> OcfResult<()> {
        write_str(&self.nfsd.join("unlock_ip"), &ip.to_string())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn fake() -> (tempfile::TempDir, ProcRoots) {
        let d = tempfile::tempdir().unwrap();
        let r = ProcRoots {
            nfsd: d.path().join("nfsd"),
            lockd: d.path().join("lockd"),
            sysctl_nfs: d.path().join("sys"),
        };
        for p in [&r.nfsd, &r.lockd, &r.sysctl_nfs] {
            std::fs::create_dir_all(p).unwrap();
        }
        (d, r)
    }

    #[test]
    fn reads_the_control_files() {
        let (_d, r) = fake();
        assert!(!r.nfsd_mounted());
        std::fs::write(r.nfsd.join("threads"), "8\n").unwrap();
        std::fs::write(r.nfsd.join("nfsv4leasetime"), "90\n").unwrap();
        std::fs::write(r.nfsd.join("v4_end_grace"), "N\n").unwrap();
        std::fs::write(r.lockd.join("nlm_end_grace"), "Y\n").unwrap();
        assert!(r.nfsd_mounted());
        assert_eq!(r.threads().unwrap(), 8);
        assert_eq!(r.lease_time().unwrap(), 90);
        assert!(r.v4_in_grace().unwrap());
        assert!(!r.nlm_in_grace().unwrap());
        let g = r.grace_state();
        assert_eq!(
            g,
            GraceState {
                nfsd_running: true,
                v4: true,
                nlm: Some(false)
            }
        );
        assert_eq!(g.to_string(), "NFSv4 in grace, NLM grace over");
        r.unlock_filesystem(Path::new("/srv/nfs")).unwrap();
        assert_eq!(
            std::fs::read_to_string(r.nfsd.join("unlock_filesystem")).unwrap(),
            "/srv/nfs"
        );
        r.set_nlm_grace_period(30).unwrap();
        assert_eq!(r.nlm_grace_period().unwrap(), 30);
        std::fs::write(r.nfsd.join("threads"), "0\n").unwrap();
        let g = r.grace_state();
        assert!(
            !g.nfsd_running && !g.v4,
            "v4 flag means nothing while stopped"
        );
    }

    #[test]
    fn versions() {
        let v = NfsdVersions::parse("+3 +4 +4.1 +4.2\n");
        assert!(v.enabled("3") && v.enabled("4.2") && v.needs_lockd());
        let v = NfsdVersions::parse("-2 -3 +4 -4.0 +4.1 +4.2");
        assert!(!v.needs_lockd() && !v.enabled("4.0") && v.enabled("4.1"));
        assert!(NfsdVersions::parse("").entries.is_empty());
    }

    // Text as Linux 6.1 prints it (seen in the UML lab).
    const INFO: &str =
        "clientid: 0x8cda38ac6b022e7a\naddress: \"127.0.0.1:892\"\nstatus: confirmed\n\
        seconds from last renew: 0\nname: \"Linux NFSv4.1 (none)\"\nminor version: 1\n\
        Implementation domain: \"kernel.org\"\ncallback state: UP\ncallback address: 127.0.0.1:0\n";
    const STATES: &str = "- 0x000000017a2e026bac38da8c03000000: { type: open, access: -w, deny: --, superblock: \"07:00:13\", filename: \"data/f\", owner: \"open id:\\x00\" }\n\
        - 0x000000017a2e026bac38da8c0d000000: { type: lock, superblock: \"07:00:13\", filename: \"data/f\", owner: \"lock id:\\x00\" }\n\
        - 0x0000000100000000000000000e000000: { type: deleg, access: r, superblock: \"fd:1a:99\", filename: \"x\" }\n";

    #[test]
    fn clients_and_their_state() {
        let c = NfsdClient::parse_info("3", INFO);
        assert_eq!(c.name, "\"Linux NFSv4.1 (none)\"");
        assert_eq!(c.address, "127.0.0.1:892");
        assert_eq!(c.status, "confirmed");
        assert_eq!(c.minor_version, Some(1));
        assert!(c.confirmed());
        assert_eq!(c.name_bytes().unwrap(), b"Linux NFSv4.1 (none)");
        assert_eq!(state_devices(STATES), vec![(7, 0), (0xfd, 0x1a)]);
        assert!(state_devices("").is_empty());

        let (_d, r) = fake();
        assert!(r.clients().is_empty());
        let cd = r.nfsd.join("clients/3");
        std::fs::create_dir_all(&cd).unwrap();
        std::fs::write(cd.join("info"), INFO).unwrap();
        std::fs::write(cd.join("states"), STATES).unwrap();
        assert_eq!(r.clients().len(), 1);
        assert_eq!(r.v4_state_devices(), vec![(7, 0), (0xfd, 0x1a)]);
    }

    // Linux 6.12, after unlock_filesystem (seen in UML): revoked, no superblock.
    const REVOKED: &str = "- 0x000000018dd30f6b51686d7201000000: { type: open, access: --, deny: --, owner: \"open id:\\x00n\\x86\", admin-revoked }\n\
        - 0x000000018dd30f6b51686d7202000000: { type: lock, owner: \"lock id:\\x00\\x02\", admin-revoked }\n";

    #[test]
    fn revoked_state_is_counted_not_placed() {
        assert_eq!(revoked_states(REVOKED), 2);
        assert!(state_devices(REVOKED).is_empty());
        assert_eq!(revoked_states(STATES), 0);
        let owner_says_it = "- 0x01: { type: open, owner: \"admin-revoked }\" }\n";
        assert_eq!(revoked_states(owner_says_it), 0);

        let (_d, r) = fake();
        assert_eq!(r.v4_revoked_states(), 0);
        for (n, text) in [("3", STATES), ("4", REVOKED)] {
            let cd = r.nfsd.join("clients").join(n);
            std::fs::create_dir_all(&cd).unwrap();
            std::fs::write(cd.join("states"), text).unwrap();
        }
        assert_eq!(r.v4_revoked_states(), 2);
        assert_eq!(r.v4_state_devices(), vec![(7, 0), (0xfd, 0x1a)]);
    }

    #[test]
    fn client_names_are_unescaped() {
        let name = |printed: &str| {
            NfsdClient {
                name: printed.to_string(),
                ..Default::default()
            }
            .name_bytes()
        };
        assert_eq!(
            name(r#""0.0.0.0/10.77.0.50 tcp UNIX 0""#).unwrap(),
            b"0.0.0.0/10.77.0.50 tcp UNIX 0"
        );
        assert_eq!(
            name(r#""a\x22b\x5c\x00\xffz""#).unwrap(),
            b"a\"b\\\x00\xffz"
        );
        assert_eq!(name(r#""o\101\0\n\"""#).unwrap(), b"oA\0\n\"");
        for bad in ["unquoted", r#""dangling\""#, r#""\xZZ""#, r#""\q""#, "\""] {
            assert_eq!(name(bad), None, "{bad}");
        }
        let pending = NfsdClient {
            status: "unconfirmed".into(),
            ..Default::default()
        };
        assert!(!pending.confirmed());
    }

    #[test]
    fn file_cache_count() {
        let (_d, r) = fake();
        assert_eq!(r.cached_files(), None);
        std::fs::write(
            r.nfsd.join("filecache"),
            "total inodes:  3\nhash buckets:  256\n",
        )
        .unwrap();
        assert_eq!(r.cached_files(), Some(3));
        std::fs::write(r.nfsd.join("filecache"), "total entries: 0\n").unwrap();
        assert_eq!(r.cached_files(), Some(0));
    }
}
