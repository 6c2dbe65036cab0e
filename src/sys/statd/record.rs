//! statd monitor records: the files in `sm/` (and `sm.bak/`), one per
//! monitored peer, each holding one line of seven blank-separated fields per
//! registration (nfs-utils `support/nsm/file.c`):
//!
//! ```text
//! 0100007f 000186b5 00000004 00000010 00112233445566778899aabbccddeeff 192.0.2.55 nodeA
//! callback prog     vers     proc     cookie (16 bytes, hex)           mon_name   my_name
//! ```
//!
//! The callback address is the NLM service to call back (statd always
//! writes 127.0.0.1, network order); `mon_name` is the peer (the client's
//! address, or its name when lockd uses host names); `my_name` is what the
//! local lock manager called itself (the node's UTS name). The file is named
//! after statd's canonical name for `mon_name` (the address itself when it
//! has no reverse mapping). statd parses the first four fields and the
//! cookie at fixed offsets, so lines are always rendered in this exact form.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// One registration: "notify `mon_name` when `my_name` reboots".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MonitorRecord {
    /// NLM callback address, exactly as statd writes it (8 hex digits).
    pub callback: u32,
    pub prog: u32,
    pub vers: u32,
    pub proc_: u32,
    pub cookie: [u8; 16],
    pub mon_name: String,
    pub my_name: String,
}

fn hex32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// A name usable as a field (statd forbids white space; the protocol caps
/// names at 1024 bytes).
fn valid_field(s: &str) -> bool {
    !s.is_empty() && s.len() <= 1024 && !s.chars().any(|c| c.is_whitespace() || c == '\0')
}

impl MonitorRecord {
    /// Parse one line (with or without its newline); `None` when it is not
    /// a well-formed seven-field record.
    pub fn parse(line: &str) -> Option<MonitorRecord> {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() != 7 {
            return None;
        }
        let cookie_hex = f[4];
        if cookie_hex.len() != 32 || !cookie_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut cookie = [0u8; 16];
        for (i, c) in cookie.iter_mut().enumerate() {
            *c = u8::from_str_radix(&cookie_hex[2 * i..2 * i + 2], 16).ok()?;
        }
        let r = MonitorRecord {
            callback: hex32(f[0])?,
            prog: hex32(f[1])?,
            vers: hex32(f[2])?,
            proc_: hex32(f[3])?,
            cookie,
            mon_name: f[5].to_string(),
            my_name: f[6].to_string(),
        };
        (valid_field(&r.mon_name) && valid_field(&r.my_name)).then_some(r)
    }

    /// The line as statd writes it, newline included.
    pub fn to_line(&self) -> String {
        let mut cookie = String::with_capacity(32);
        for b in self.cookie {
            cookie.push_str(&format!("{b:02x}"));
        }
        format!(
            "{:08x} {:08x} {:08x} {:08x} {} {} {}\n",
            self.callback, self.prog, self.vers, self.proc_, cookie, self.mon_name, self.my_name
        )
    }

    /// The same registration as made by another local lock manager name.
    pub fn with_my_name(&self, my_name: &str) -> MonitorRecord {
        MonitorRecord {
            my_name: my_name.to_string(),
            ..self.clone()
        }
    }
}

/// Parse a record file's text. Only complete (newline-terminated) lines
/// count, so a file statd is still writing never yields a torn record;
/// malformed lines are skipped.
pub fn parse_records(text: &str) -> Vec<MonitorRecord> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('\n') {
        if let Some(r) = MonitorRecord::parse(&rest[..i]) {
            out.push(r);
        }
        rest = &rest[i + 1..];
    }
    out
}

pub fn render(records: &[MonitorRecord]) -> String {
    records.iter().map(MonitorRecord::to_line).collect()
}

/// Whether `name` may be a record file name: statd's rules (no '/', no
/// white space) plus ours (no leading '.', which marks temporary and state
/// files, and which statd skips too).
pub fn valid_file_name(name: &str) -> bool {
    valid_field(name) && !name.starts_with('.') && !name.contains('/')
}

/// Record files by file name.
pub type RecordSet = BTreeMap<String, Vec<MonitorRecord>>;

/// The largest record file read: statd writes one line of about 110
/// bytes per registration of a client, so this is hundreds of them.
pub const RECORD_CAP: u64 = 64 << 10;

/// Read one record file; `None` when it does not exist. A symbolic link,
/// anything but a regular file, or a file over [`RECORD_CAP`] is an error
/// (`fsfile::read_own_file`): sm/ belongs to the less privileged statd
/// user, and must not make root read what it points at.
pub fn read_file(path: &Path) -> io::Result<Option<Vec<MonitorRecord>>> {
    Ok(crate::sys::fsfile::read_own_file(path, RECORD_CAP)?
        .map(|b| parse_records(&String::from_utf8_lossy(&b))))
}

/// Every record file in `dir` (regular files with valid names; files
/// without a valid record are left out).
pub fn read_dir(dir: &Path) -> io::Result<RecordSet> {
    let mut set = RecordSet::new();
    for ent in std::fs::read_dir(dir)? {
        let ent = ent?;
        let Some(name) = ent.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !valid_file_name(&name) || !ent.file_type()?.is_file() {
            continue;
        }
        match read_file(&ent.path()) {
            Ok(Some(recs)) if !recs.is_empty() => {
                set.insert(name, recs);
            }
            Ok(_) => log::debug!("{}: no valid record, skipped", ent.path().display()),
            Err(e) => log::warn!("skipped in {}: {e}", dir.display()),
        }
    }
    Ok(set)
}

/// Names of the record files in `dir` (no parsing); empty when `dir` does
/// not exist.
pub fn list_names(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| valid_file_name(n))
        .collect();
    v.sort();
    v
}

/// Whether `name` (a record file name or mon_name) is an address of the
/// other family than `addr`: sm-notify bound to an IPv6 address cannot
/// reach an IPv4 peer and vice versa. Host names match every family.
pub fn other_family(name: &str, addr: &std::net::IpAddr) -> bool {
    match name.parse::<std::net::IpAddr>() {
        Ok(a) => a.is_ipv4() != addr.is_ipv4(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str =
        "0100007f 000186b5 00000004 00000010 00112233445566778899aabbccddeeff 192.0.2.55 vm\n";

    #[test]
    fn parses_and_renders_statd_lines() {
        let r = MonitorRecord::parse(LINE).unwrap();
        assert_eq!(r.callback, 0x0100007f);
        assert_eq!(r.prog, 100021);
        assert_eq!(r.vers, 4);
        assert_eq!(r.proc_, 16);
        assert_eq!(r.cookie[0], 0x00);
        assert_eq!(r.cookie[15], 0xff);
        assert_eq!(r.mon_name, "192.0.2.55");
        assert_eq!(r.my_name, "vm");
        assert_eq!(r.to_line(), LINE);
        assert_eq!(
            r.with_my_name("nodeb").to_line(),
            LINE.replace(" vm\n", " nodeb\n")
        );
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "",
            "0100007f 000186b5 00000004 00000010 0011 192.0.2.55 vm",
            "0100007f 000186b5 00000004 00000010 00112233445566778899aabbccddeeff 192.0.2.55",
            "0100007f 000186b5 00000004 00000010 00112233445566778899aabbccddeeff a b c",
            "zz00007f 000186b5 00000004 00000010 00112233445566778899aabbccddeeff a b",
            "0100007f 000186b5 00000004 00000010 0011223344556677889900aabbccddgg a b",
            "1000000000 000186b5 00000004 00000010 00112233445566778899aabbccddeeff a b",
        ] {
            assert!(MonitorRecord::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn only_complete_lines_count() {
        let two = format!("{LINE}{}", LINE.replace("192.0.2.55", "192.0.2.56"));
        assert_eq!(parse_records(&two).len(), 2);
        let torn = &two[..two.len() - 5];
        assert_eq!(parse_records(torn).len(), 1);
        assert_eq!(parse_records(&format!("garbage\n{LINE}")).len(), 1);
        assert_eq!(render(&parse_records(&two)), two);
    }

    #[test]
    fn file_names() {
        assert!(valid_file_name("192.0.2.1"));
        assert!(valid_file_name("2001:db8::1"));
        assert!(valid_file_name("client.example.com"));
        assert!(!valid_file_name(".hanfs-tmp-x"));
        assert!(!valid_file_name("a/b"));
        assert!(!valid_file_name("a b"));
        assert!(!valid_file_name(""));
    }

    #[test]
    fn families() {
        let v4: std::net::IpAddr = "192.0.2.10".parse().unwrap();
        let v6: std::net::IpAddr = "2001:db8::10".parse().unwrap();
        assert!(!other_family("192.0.2.1", &v4));
        assert!(other_family("2001:db8::1", &v4));
        assert!(other_family("192.0.2.1", &v6));
        assert!(!other_family("client.example.com", &v6));
    }

    #[test]
    fn reads_a_directory() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("192.0.2.55"), LINE).unwrap();
        std::fs::write(d.path().join(".hanfs-tmp-1"), LINE).unwrap();
        std::fs::write(d.path().join("empty"), "").unwrap();
        std::fs::create_dir(d.path().join("subdir")).unwrap();
        let set = read_dir(d.path()).unwrap();
        assert_eq!(set.keys().collect::<Vec<_>>(), vec!["192.0.2.55"]);
        assert_eq!(list_names(d.path()), vec!["192.0.2.55", "empty", "subdir"]);
    }

    // Property tests: any text in a record file is read without a panic,
    // keeping only well-formed lines; statd's lines read back exactly.
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        let chars: Vec<char> = "abz09.:-_\u{fc}".chars().collect();
        proptest::collection::vec(proptest::sample::select(chars), 1..30)
            .prop_map(String::from_iter)
    }

    fn record() -> impl Strategy<Value = MonitorRecord> {
        (any::<[u32; 4]>(), any::<[u8; 16]>(), name(), name()).prop_map(
            |(n, cookie, mon_name, my_name)| MonitorRecord {
                callback: n[0],
                prog: n[1],
                vers: n[2],
                proc_: n[3],
                cookie,
                mon_name,
                my_name,
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_gives_only_well_formed_records(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let text = String::from_utf8_lossy(&bytes);
            for r in parse_records(&text) {
                prop_assert!(valid_field(&r.mon_name) && valid_field(&r.my_name));
                prop_assert_eq!(MonitorRecord::parse(&r.to_line()), Some(r));
            }
        }

        #[test]
        fn statd_lines_round_trip(recs in proptest::collection::vec(record(), 0..5)) {
            let text = render(&recs);
            prop_assert_eq!(parse_records(&text), recs.clone());
            // Torn at any point: only the complete lines count.
            let cut = (0..=text.len() / 2).rev().find(|&i| text.is_char_boundary(i)).unwrap();
            let whole = text[..cut].matches('\n').count();
            prop_assert_eq!(parse_records(&text[..cut]), recs[..whole].to_vec());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn any_record_file_is_read_without_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let d = tempfile::tempdir().unwrap();
            std::fs::write(d.path().join("192.0.2.5"), &bytes).unwrap();
            let set = read_dir(d.path()).unwrap();
            prop_assert!(set.values().all(|v| !v.is_empty()));
        }
    }
}
