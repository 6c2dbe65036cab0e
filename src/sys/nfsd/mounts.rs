//! The mount table (`/proc/self/mountinfo`): which file system a path lies
//! on, and where the NFS control file systems are mounted. Reading it never
//! touches the file systems themselves, so it cannot hang on dead storage.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The device (major, minor), as `stat` would give `st_dev`.
    pub dev: (u32, u32),
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text (one mount per line:
/// `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`).
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split_whitespace().collect();
            let r: Vec<&str> = right.split_whitespace().collect();
            let (maj, min) = f.get(2)?.split_once(':')?;
            Some(Mount {
                dev: (maj.parse().ok()?, min.parse().ok()?),
                mount_point: PathBuf::from(unescape(f.get(4)?)),
                fstype: r.first()?.to_string(),
                source: r.get(1).map(|s| unescape(s)).unwrap_or_default(),
            })
        })
        .collect()
}

/// The current mount table of this process's mount namespace.
pub fn current() -> Vec<Mount> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|s| parse(&s))
        .unwrap_or_default()
}

/// The mount that contains `path` (lexically: the longest mount point that
/// is a prefix of it; the last such mount wins, as it hides earlier ones).
pub fn containing<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    let mut best: Option<&Mount> = None;
    for m in mounts {
        if path.starts_with(&m.mount_point) {
            match best {
                Some(b)
                    if b.mount_point.components().count() > m.mount_point.components().count() => {}
                _ => best = Some(m),
            }
        }
    }
    best
}

/// Whether `path` lies on this node's root file system (no other mount
/// contains it): local disk, where shared storage was expected.
pub fn on_root_fs(path: &Path) -> bool {
    containing(&current(), path).is_some_and(|m| m.mount_point == Path::new("/"))
}

/// Mount points of every mount of file system type `fstype`.
pub fn of_type(mounts: &[Mount], fstype: &str) -> Vec<PathBuf> {
    mounts
        .iter()
        .filter(|m| m.fstype == fstype)
        .map(|m| m.mount_point.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
21 1 0:21 / / ro,relatime - hostfs /dev/root ro
22 21 0:5 / /dev rw,relatime - devtmpfs devtmpfs rw,mode=755
30 21 0:26 / /run rw,relatime - tmpfs tmpfs rw
31 30 0:27 / /run/rpc_pipefs rw,relatime - rpc_pipefs sunrpc rw
40 21 7:0 / /srv/nfs\\040a rw,relatime shared:5 - ext4 /dev/loop0 rw
41 40 7:1 / /srv/nfs\\040a/inner rw,relatime - ext4 /dev/loop1 rw
50 21 0:40 / /proc/fs/nfsd rw,relatime - nfsd nfsd rw
";

    #[test]
    fn parses_and_finds() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 7);
        assert_eq!(m[4].mount_point, PathBuf::from("/srv/nfs a"));
        assert_eq!(m[4].dev, (7, 0));
        assert_eq!(m[4].fstype, "ext4");
        assert_eq!(
            containing(&m, Path::new("/srv/nfs a/data")).unwrap().dev,
            (7, 0)
        );
        assert_eq!(
            containing(&m, Path::new("/srv/nfs a/inner/x")).unwrap().dev,
            (7, 1)
        );
        assert_eq!(
            containing(&m, Path::new("/srv/nfs ab"))
                .unwrap()
                .mount_point,
            PathBuf::from("/")
        );
        assert_eq!(
            of_type(&m, "rpc_pipefs"),
            vec![PathBuf::from("/run/rpc_pipefs")]
        );
        assert_eq!(of_type(&m, "nfsd"), vec![PathBuf::from("/proc/fs/nfsd")]);
        assert_eq!(unescape("a\\134b\\"), "a\\b\\");
    }
}
