//! `etab`: the export table as the NFS server sees it.
//!
//! `exportfs` keeps the current exports in `<state dir>/etab` (default
//! `/var/lib/nfs`), which `rpc.mountd` answers the kernel from. One line per
//! directory and client, with the complete option list:
//!
//! ```text
//! /srv/nfs/b\040c<TAB>192.0.2.0/24(rw,sync,wdelay,...,fsid=5,anonuid=65534,...)
//! ```
//!
//! The directory is the real path with control characters, white space,
//! `"`, `\` and `#` written as `\ooo` (three octal digits); the client is as
//! exportfs recorded it (a host name as resolved, a subnet or an IPv6
//! address without brackets, `*` for everyone). exportfs replaces the file
//! by rename, so a reader always sees a whole table.
//!
//! Reading is in-process and streamed, and only lines for the directory
//! asked about are parsed further, so a lookup costs one pass over the file
//! and no process.

use super::client::ExportClient;
use super::options::Fsid;
use crate::ocf::{OcfError, OcfResult, ResultExt};
use crate::sys::fsfile;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The largest export table read: 64 MiB, some 250,000 exports of
/// exportfs's 250-byte lines.
pub const ETAB_CAP: u64 = 64 << 20;

/// One line of etab: `directory` exported to `client` with `options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub directory: PathBuf,
    pub client: String,
    pub options: Vec<String>,
}

impl Export {
    /// The value of option `key=value`, the last one if repeated.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find_map(|o| o.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }

    /// The export's file-system id, when it has one.
    pub fn fsid(&self) -> Option<Fsid> {
        self.option("fsid").and_then(|v| Fsid::parse(v).ok())
    }

    /// Whether this is the export of `dir` to `client` (client names
    /// compare without regard to case, as exportfs compares them).
    pub fn is(&self, dir: &Path, client: &str) -> bool {
        self.directory == dir && self.client.eq_ignore_ascii_case(client)
    }
}

/// Undo etab's `\ooo` escapes. A backslash not followed by three octal
/// digits stands for itself.
pub fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'\\' && i + 3 < raw.len() {
            let d = &raw[i + 1..i + 4];
            if d.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = u32::from(d[0] - b'0') * 64
                    + u32::from(d[1] - b'0') * 8
                    + u32::from(d[2] - b'0');
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Write a path as etab does (the inverse of [`unescape`]).
pub fn escape(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_control() || b.is_ascii_whitespace() || b == b'"' || b == b'\\' || b == b'#' {
            out.extend_from_slice(format!("\\{b:03o}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

/// The directory field of a line (escaped), and the rest after the tab.
fn split_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let tab = line.iter().position(|&b| b == b'\t' || b == b' ')?;
    Some((&line[..tab], &line[tab + 1..]))
}

/// Whether the escaped directory field `raw` names `dir`.
fn same_dir(raw: &[u8], dir: &[u8]) -> bool {
    if raw.contains(&b'\\') {
        unescape(raw) == dir
    } else {
        raw == dir
    }
}

/// `client(opt,opt,...)` → client and options.
fn parse_client(rest: &[u8]) -> Option<(String, Vec<String>)> {
    let rest = std::str::from_utf8(rest)
        .ok()?
        .trim_end_matches(['\r', '\n', ' ', '\t']);
    let rest = rest.trim_start_matches([' ', '\t']);
    match rest.find('(') {
        Some(open) => {
            let opts = rest[open + 1..].strip_suffix(')')?;
            let client = &rest[..open];
            let options = opts
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect();
            Some((client.to_string(), options))
        }
        None if !rest.is_empty() => Some((rest.to_string(), Vec::new())),
        None => None,
    }
}

/// Parse one etab line; `None` for a blank or malformed line.
pub fn parse_line(line: &[u8]) -> Option<Export> {
    let (raw_dir, rest) = split_line(line)?;
    if raw_dir.is_empty() {
        return None;
    }
    let (client, options) = parse_client(rest)?;
    Some(Export {
        directory: PathBuf::from(std::ffi::OsString::from_vec(unescape(raw_dir))),
        client,
        options,
    })
}

/// The identity of one version of the table file: exportfs replaces etab
/// by writing a new file and renaming it, so any change gives another
/// inode, size or modification time. Lets a monitor skip re-reading a table
/// it has already checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
}

/// The export table at a given path (see [`ExportTable::system`]).
#[derive(Debug, Clone)]
pub struct ExportTable {
    path: PathBuf,
}

impl ExportTable {
    pub fn at(path: impl Into<PathBuf>) -> Self {
        ExportTable { path: path.into() }
    }

    /// The table exportfs uses on this host: `etab` in the NFS state
    /// directory, `/var/lib/nfs` unless `nfs.conf` sets
    /// `state-directory-path` (section `[mountd]`, else `[exportd]`, as
    /// exportfs reads it).
    pub fn system() -> Self {
        Self::at(state_directory(Path::new("/etc/nfs.conf")).join("etab"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The NFS state directory the table lives in exists (code 5 if not:
    /// nfs-utils is missing).
    pub fn check_state_dir(&self) -> OcfResult<()> {
        let state_dir = self.path.parent().unwrap_or(Path::new("/"));
        if !state_dir.is_dir() {
            return Err(crate::ocf::OcfError::installed(format!(
                "NFS state directory {} does not exist (is nfs-utils installed?)",
                state_dir.display()
            )));
        }
        Ok(())
    }

    /// The current version's identity (`None` when there is no table).
    pub fn stamp(&self) -> OcfResult<Option<TableStamp>> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(Some(TableStamp {
                dev: m.dev(),
                ino: m.ino(),
                size: m.size(),
                mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).or_generic(|| format!("cannot stat {}", self.path.display())),
        }
    }

    /// Stream the table, calling `f` with each line's raw directory field
    /// and the rest of the line. A missing table is an empty one; anything
    /// but a regular file of at most [`ETAB_CAP`] bytes is an error (a
    /// link to an endless file must not exhaust memory).
    fn scan(&self, mut f: impl FnMut(&[u8], &[u8])) -> OcfResult<()> {
        let Some((file, len)) = fsfile::open_regular(&self.path, true)? else {
            return Ok(());
        };
        let too_large = || {
            OcfError::generic(format!(
                "{} is larger than {ETAB_CAP} bytes",
                self.path.display()
            ))
        };
        if len > ETAB_CAP {
            return Err(too_large());
        }
        let mut r = BufReader::with_capacity(1 << 16, file.take(ETAB_CAP + 1));
        let mut total = 0u64;
        let mut line = Vec::with_capacity(512);
        loop {
            line.clear();
            let n = r
                .read_until(b'\n', &mut line)
                .or_generic(|| format!("cannot read {}", self.path.display()))?;
            if n == 0 {
                return Ok(());
            }
            total += n as u64;
            if total > ETAB_CAP {
                return Err(too_large());
            }
            if let Some((raw_dir, rest)) = split_line(&line) {
                f(raw_dir, rest);
            }
        }
    }

    /// Every export in the table.
    pub fn read_all(&self) -> OcfResult<Vec<Export>> {
        let mut all = Vec::new();
        self.scan(|raw_dir, rest| {
            if let (false, Some((client, options))) = (raw_dir.is_empty(), parse_client(rest)) {
                all.push(Export {
                    directory: PathBuf::from(std::ffi::OsString::from_vec(unescape(raw_dir))),
                    client,
                    options,
                });
            }
        })?;
        Ok(all)
    }

    /// The exports of directory `dir` (to any client), in one pass that
    /// parses only that directory's lines.
    pub fn exports_of(&self, dir: &Path) -> OcfResult<Vec<Export>> {
        let want = dir.as_os_str().as_bytes();
        let mut found = Vec::new();
        self.scan(|raw_dir, rest| {
            if same_dir(raw_dir, want) {
                if let Some((client, options)) = parse_client(rest) {
                    found.push(Export {
                        directory: dir.to_path_buf(),
                        client,
                        options,
                    });
                }
            }
        })?;
        Ok(found)
    }

    /// Which of `clients` (etab names, any case) `dir` is exported to, as
    /// etab spells them.
    pub fn clients_of(&self, dir: &Path, clients: &[String]) -> OcfResult<Vec<String>> {
        Ok(self
            .exports_of(dir)?
            .into_iter()
            .filter(|e| clients.iter().any(|c| e.client.eq_ignore_ascii_case(c)))
            .map(|e| e.client)
            .collect())
    }

    /// For each of `clients`, the export of `dir` to it, if present.
    pub fn lookup(&self, dir: &Path, clients: &[&str]) -> OcfResult<Vec<Option<Export>>> {
        let mine = self.exports_of(dir)?;
        Ok(clients
            .iter()
            .map(|c| {
                mine.iter()
                    .find(|e| e.client.eq_ignore_ascii_case(c))
                    .cloned()
            })
            .collect())
    }
}

impl ExportTable {
    /// Whether `dir` is exported to every one of `clients`, with `fsid`
    /// when one is given. `Ok(Err(why))` names the first client that is
    /// not.
    pub fn verify(
        &self,
        dir: &Path,
        clients: &[ExportClient],
        fsid: Option<Fsid>,
    ) -> OcfResult<Result<(), String>> {
        let names: Vec<&str> = clients.iter().map(|c| c.etab.as_str()).collect();
        let found = self.lookup(dir, &names)?;
        for (c, e) in clients.iter().zip(found) {
            let Some(e) = e else {
                let also = if c.spec.eq_ignore_ascii_case(&c.etab) {
                    String::new()
                } else {
                    format!(" (as {})", c.etab)
                };
                return Ok(Err(format!(
                    "{} is not exported to {}{also}",
                    dir.display(),
                    c.spec
                )));
            };
            if let (Some(w), got) = (fsid, e.fsid()) {
                if got != Some(w) {
                    let got = got.map_or_else(|| "no fsid".to_string(), |g| format!("fsid={g}"));
                    return Ok(Err(format!(
                        "{} is exported to {} with {got}, not fsid={w}",
                        dir.display(),
                        c.spec
                    )));
                }
            }
        }
        Ok(Ok(()))
    }
}

/// The NFS state directory from an `nfs.conf` (and its `.d` drop-ins).
pub fn state_directory(conf: &Path) -> PathBuf {
    let mut files = vec![conf.to_path_buf()];
    let dropins = PathBuf::from(format!("{}.d", conf.display()));
    if let Ok(rd) = std::fs::read_dir(&dropins) {
        let mut more: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        more.sort();
        files.extend(more);
    }
    let (mut mountd, mut exportd) = (None, None);
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let mut section = String::new();
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            if let Some(s) = l.strip_prefix('[') {
                section = s.trim_end_matches(']').trim().to_ascii_lowercase();
                continue;
            }
            let Some((k, v)) = l.split_once('=') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("state-directory-path") {
                let v = v.trim().trim_matches('"').to_string();
                match section.as_str() {
                    "mountd" => mountd = Some(v),
                    "exportd" => exportd = Some(v),
                    _ => {}
                }
            }
        }
    }
    mountd
        .or(exportd)
        .filter(|v| v.starts_with('/'))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/nfs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_verified_client_by_client() {
        let d = tempfile::tempdir().unwrap();
        let etab = d.path().join("etab");
        std::fs::write(
            &etab,
            "/srv/a\t192.0.2.0/24(rw,sync,fsid=7)\n/srv/a\tclient1.example.test(rw,fsid=7)\n/srv/a\t*(rw,fsid=8)\n",
        )
        .unwrap();
        let t = ExportTable::at(&etab);
        let c = |spec: &str, etab: &str| ExportClient {
            spec: spec.into(),
            etab: etab.into(),
        };
        let mut clients = vec![
            c("192.0.2.0/24", "192.0.2.0/24"),
            c("client1", "CLIENT1.example.test"),
        ];
        let (dir, seven) = (Path::new("/srv/a"), Fsid::parse("7").ok());
        assert_eq!(t.verify(dir, &clients, seven).unwrap(), Ok(()));
        clients.push(c("*", "*"));
        let why = t.verify(dir, &clients, seven).unwrap().unwrap_err();
        assert!(why.contains("with fsid=8, not fsid=7"), "{why}");
        clients[2] = c("@ng", "@ng");
        let why = t.verify(dir, &clients, seven).unwrap().unwrap_err();
        assert_eq!(why, "/srv/a is not exported to @ng");
        clients.pop();
        assert!(t
            .verify(Path::new("/srv"), &clients, None)
            .unwrap()
            .is_err());
    }

    /// Lines as exportfs 2.6.2 wrote them on Debian 12 (copied from a run in
    /// a private mount namespace).
    const SAMPLE: &str = "/tmp/nfsx/b\\040c\t192.0.2.7(rw,sync,wdelay,hide,nocrossmnt,secure,root_squash,no_all_squash,no_subtree_check,secure_locks,acl,no_pnfs,fsid=3f1b8b8c-1234-4cde-8a00-aaaaaaaaaaaa,anonuid=65534,anongid=65534,sec=sys,rw,root_squash,no_all_squash)
/tmp/nfsx/a\t2001:db8::/32(rw,sync,wdelay,hide,nocrossmnt,secure,root_squash,no_all_squash,no_subtree_check,secure_locks,acl,no_pnfs,anonuid=65534,anongid=65534,sec=sys,rw,root_squash,no_all_squash)
/tmp/nfsx/a\t192.0.2.0/24(rw,sync,wdelay,hide,nocrossmnt,secure,root_squash,no_all_squash,no_subtree_check,secure_locks,acl,no_pnfs,fsid=5,anonuid=65534,anongid=65534,sec=sys,rw,root_squash,no_all_squash)
/tmp/nfsx/a\t*.Example.COM(rw,sync,wdelay,hide,nocrossmnt,secure,root_squash,no_all_squash,no_subtree_check,secure_locks,acl,no_pnfs,anonuid=65534,anongid=65534,sec=sys,rw,root_squash,no_all_squash)
/tmp/nfsx/a\t@netg(rw,sync,wdelay,hide,nocrossmnt,secure,root_squash,no_all_squash,no_subtree_check,secure_locks,acl,no_pnfs,anonuid=65534,anongid=65534,sec=sys,rw,root_squash,no_all_squash)
/tmp/nfsx/root\t*(ro,sync,wdelay,hide,nocrossmnt,secure,root_squash,no_all_squash,no_subtree_check,secure_locks,acl,no_pnfs,fsid=0,anonuid=65534,anongid=65534,sec=sys,ro,root_squash,no_all_squash)
/tmp/nfsx/we\\043ird\\134dir\\011tab\t192.0.2.1(rw,sync)
/tmp/nfsx/\u{fc}\t192.0.2.1(rw,sync)
";

    fn table() -> (tempfile::TempDir, ExportTable) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("etab");
        std::fs::write(&p, SAMPLE).unwrap();
        (d, ExportTable::at(p))
    }

    #[test]
    fn parses_exportfs_lines() {
        let all = table().1.read_all().unwrap();
        assert_eq!(all.len(), 8);
        assert_eq!(all[0].directory, Path::new("/tmp/nfsx/b c"));
        assert_eq!(all[0].client, "192.0.2.7");
        assert_eq!(
            all[0].fsid(),
            Some(Fsid::parse("3f1b8b8c12344cde8a00aaaaaaaaaaaa").unwrap())
        );
        assert_eq!(all[1].client, "2001:db8::/32");
        assert_eq!(all[1].fsid(), None);
        assert_eq!(all[2].option("fsid"), Some("5"));
        assert_eq!(all[5].client, "*");
        assert_eq!(all[5].fsid(), Some(Fsid::Num(0)));
        assert_eq!(all[6].directory, Path::new("/tmp/nfsx/we#ird\\dir\ttab"));
        assert_eq!(all[7].directory, Path::new("/tmp/nfsx/\u{fc}"));
        assert_eq!(all[6].options, vec!["rw", "sync"]);
    }

    #[test]
    fn escapes_round_trip() {
        for p in ["/a b", "/we#ird\\dir\ttab\n", "/plain", "/q\"x", "/\u{fc}"] {
            let e = escape(Path::new(p));
            assert!(
                !e.contains(&b' ') && !e.contains(&b'\t') && !e.contains(&b'\n'),
                "{p}"
            );
            assert_eq!(unescape(&e), p.as_bytes());
        }
        assert_eq!(escape(Path::new("/a b#")), b"/a\\040b\\043");
        // Not an escape: kept as is.
        assert_eq!(unescape(b"/a\\9x\\"), b"/a\\9x\\");
        assert_eq!(unescape(b"/a\\04"), b"/a\\04");
    }

    #[test]
    fn lookup_is_exact_on_directory_and_client() {
        let (_d, t) = table();
        let got = t
            .lookup(
                Path::new("/tmp/nfsx/a"),
                &[
                    "192.0.2.0/24",
                    "*.example.com",
                    "@NETG",
                    "192.0.2.0/25",
                    "*",
                ],
            )
            .unwrap();
        assert_eq!(got[0].as_ref().unwrap().fsid(), Some(Fsid::Num(5)));
        assert!(got[1].is_some(), "client names compare without case");
        assert!(got[2].is_some());
        assert!(got[3].is_none());
        assert!(got[4].is_none(), "* is exported for /tmp/nfsx/root only");
        assert_eq!(t.exports_of(Path::new("/tmp/nfsx/b c")).unwrap().len(), 1);
        assert_eq!(t.exports_of(Path::new("/tmp/nfsx")).unwrap().len(), 0);
        assert_eq!(
            t.exports_of(Path::new("/tmp/nfsx/we#ird\\dir\ttab"))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn missing_table_is_empty_and_junk_is_skipped() {
        let d = tempfile::tempdir().unwrap();
        assert!(ExportTable::at(d.path().join("etab"))
            .read_all()
            .unwrap()
            .is_empty());
        let p = d.path().join("etab2");
        std::fs::write(&p, "\n\ngarbage\n/x\thost(rw\n/y\thost(ro)\n").unwrap();
        let all = ExportTable::at(p).read_all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].directory, Path::new("/y"));
    }

    #[test]
    fn an_endless_or_oversized_table_is_an_error_not_an_abort() {
        let d = tempfile::tempdir().unwrap();
        let link = d.path().join("etab");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let e = ExportTable::at(&link).read_all().unwrap_err();
        assert!(e.reason.contains("not a regular file"), "{e}");
        let big = d.path().join("etab-big");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(ETAB_CAP + 1).unwrap(); // sparse: no disk used
        let e = ExportTable::at(&big)
            .exports_of(Path::new("/x"))
            .unwrap_err();
        assert!(e.reason.contains("larger than"), "{e}");
    }

    #[test]
    fn state_directory_from_nfs_conf() {
        let d = tempfile::tempdir().unwrap();
        let conf = d.path().join("nfs.conf");
        assert_eq!(state_directory(&conf), Path::new("/var/lib/nfs"));
        std::fs::write(&conf, "[general]\nstate-directory-path=/nope\n[exportd]\n state-directory-path = /srv/state \n").unwrap();
        assert_eq!(state_directory(&conf), Path::new("/srv/state"));
        std::fs::create_dir(d.path().join("nfs.conf.d")).unwrap();
        std::fs::write(
            d.path().join("nfs.conf.d/ha.conf"),
            "[mountd]\nstate-directory-path=/shared/nfs\n",
        )
        .unwrap();
        assert_eq!(state_directory(&conf), Path::new("/shared/nfs"));
    }

    // Property tests: any bytes in etab are read without a panic; what
    // exportfs writes reads back exactly.
    use proptest::prelude::*;

    /// A client or option word: what exportfs writes there (no blank, no
    /// parenthesis, no comma).
    fn word() -> impl Strategy<Value = String> {
        let chars: Vec<char> = "abcXYZ019.*@:/-_=".chars().collect();
        proptest::collection::vec(proptest::sample::select(chars), 1..12)
            .prop_map(String::from_iter)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_line_parses_or_is_skipped(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_line(&line);
            prop_assert!(unescape(&line).len() <= line.len());
        }

        #[test]
        fn escape_round_trips_any_path(tail in proptest::collection::vec(1u8.., 0..64)) {
            let mut raw = b"/".to_vec();
            raw.extend(tail);
            let path = PathBuf::from(std::ffi::OsString::from_vec(raw.clone()));
            let e = escape(&path);
            prop_assert!(!e.iter().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()));
            prop_assert_eq!(unescape(&e), raw);
        }

        #[test]
        fn exportfs_lines_round_trip(
            tail in proptest::collection::vec(1u8.., 0..40),
            client in word(),
            options in proptest::collection::vec(word(), 0..6),
        ) {
            let mut raw = b"/".to_vec();
            raw.extend(tail);
            let directory = PathBuf::from(std::ffi::OsString::from_vec(raw));
            let mut line = escape(&directory);
            line.extend(format!("\t{client}({})\n", options.join(",")).bytes());
            let want = Export { directory, client, options };
            prop_assert_eq!(parse_line(&line), Some(want.clone()));
            let d = tempfile::tempdir().unwrap();
            let t = ExportTable::at(d.path().join("etab"));
            std::fs::write(t.path(), &line).unwrap();
            prop_assert_eq!(t.read_all().unwrap(), vec![want.clone()]);
            prop_assert_eq!(t.exports_of(&want.directory).unwrap(), vec![want]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A whole table of garbage: every reader answers (an empty or
        /// partial list, or a verification failure), none panics.
        #[test]
        fn any_table_is_read_without_a_panic(text in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let d = tempfile::tempdir().unwrap();
            let t = ExportTable::at(d.path().join("etab"));
            std::fs::write(t.path(), &text).unwrap();
            let all = t.read_all().unwrap();
            prop_assert!(all.len() <= text.split(|&b| b == b'\n').count());
            let c = ExportClient { spec: "*".into(), etab: "*".into() };
            let _ = t.verify(Path::new("/srv/a"), &[c], Fsid::parse("7").ok()).unwrap();
            let conf = d.path().join("nfs.conf");
            std::fs::write(&conf, &text).unwrap();
            prop_assert!(state_directory(&conf).is_absolute());
        }
    }
}
