//! The kernel NFS server's control files: `/proc/fs/nfsd` (nfsd), and
//! `/proc/fs/lockd`, `/proc/sys/fs/nfs` (lockd/NLM).
//!
//! Every path hangs off a [`ProcRoots`], so tests can point it at a
//! scratch directory laid out the same way where the host kernel has no
//! nfsd. Reading `v4_end_grace`/`nlm_end_grace` tells whether grace is on.

use crate::ocf::{OcfError, OcfResult, ResultExt};
use std::path::{Path, PathBuf};

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

impl ProcRoots {
    /// Whether the nfsd control file system is mounted (its `threads` file
    /// exists).
    pub fn nfsd_mounted(&self) -> bool {
        self.nfsd.join("threads").exists()
    }

    /// Number of running nfsd threads (0 when nfsd is stopped).
    pub fn threads(&self) -> OcfResult<u32> {
        let s = read_trim(&self.nfsd.join("threads"))?;
        s.parse()
            .map_err(|_| OcfError::generic(format!("unexpected nfsd threads value {s:?}")))
    }

    /// NFSv4 lease time, seconds.
    pub fn lease_time(&self) -> OcfResult<u32> {
        let s = read_trim(&self.nfsd.join("nfsv4leasetime"))?;
        s.parse()
            .map_err(|_| OcfError::generic(format!("unexpected nfsv4leasetime {s:?}")))
    }

    /// NFSv4 grace time, seconds.
    pub fn grace_time(&self) -> OcfResult<u32> {
        let s = read_trim(&self.nfsd.join("nfsv4gracetime"))?;
        s.parse()
            .map_err(|_| OcfError::generic(format!("unexpected nfsv4gracetime {s:?}")))
    }

    /// Whether nfsd's (NFSv4) grace period is in force: `v4_end_grace`
    /// reads `N` while grace is on, `Y` once it has ended.
    pub fn v4_in_grace(&self) -> OcfResult<bool> {
        Ok(read_trim(&self.nfsd.join("v4_end_grace"))?.starts_with('N'))
    }

    /// End nfsd's grace period now.
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

    /// Release every NLM lock (and, on kernels ~6.9+, NFSv4 state) held on
    /// the file system that contains `path`.
    pub fn unlock_filesystem(&self, path: &Path) -> OcfResult<()> {
        write_str(
            &self.nfsd.join("unlock_filesystem"),
            &path.to_string_lossy(),
        )
    }

    /// Release every NLM lock taken through server address `ip`.
    pub fn unlock_ip(&self, ip: &std::net::IpAddr) -> OcfResult<()> {
        write_str(&self.nfsd.join("unlock_ip"), &ip.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake() -> (tempfile::TempDir, ProcRoots) {
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
        r.unlock_filesystem(Path::new("/srv/nfs")).unwrap();
        assert_eq!(
            std::fs::read_to_string(r.nfsd.join("unlock_filesystem")).unwrap(),
            "/srv/nfs"
        );
    }
}
