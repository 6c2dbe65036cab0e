//! Export options, with the file-system id merged in.
//!
//! The file-system id (`fsid=`) is what NFS clients' file handles carry to
//! name the exported file system. In a cluster it must be the same on every
//! node, or clients get stale file handles after a failover; by default the
//! kernel derives it from the device, which differs between nodes.

use crate::ocf::echo;
use std::fmt;

/// A file-system id as exportfs reads it: a 32-bit number (`root` is 0,
/// the NFSv4 pseudo-root) or a UUID (32 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsid {
    Num(u32),
    Uuid([u8; 16]),
}

impl Fsid {
    /// Parse a value as exportfs does: `root`; a number in C notation
    /// (`0x1f` hex, a leading `0` octal, else decimal — exportfs uses
    /// `strtoul(…, 0)`, so we must read `010` as 8 to name the same file
    /// system); or 32 hex digits, optionally grouped by `-` or `:`.
    pub fn parse(v: &str) -> Result<Fsid, String> {
        let v = v.trim();
        if v == "root" {
            return Ok(Fsid::Num(0));
        }
        let number = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            (!h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(h, 16))
        } else if v.len() > 1 && v.starts_with('0') {
            v.bytes()
                .all(|b| (b'0'..=b'7').contains(&b))
                .then(|| u64::from_str_radix(v, 8))
        } else {
            (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.parse::<u64>())
        };
        if let Some(n) = number {
            return match n.ok().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Ok(Fsid::Num(n)),
                None => Err(format!("out of range (0 to {})", u32::MAX)),
            };
        }
        let hex: Vec<u8> = v.bytes().filter(|&b| b != b'-' && b != b':').collect();
        if hex.len() == 32 && hex.iter().all(u8::is_ascii_hexdigit) {
            let mut uuid = [0u8; 16];
            for (i, pair) in hex.chunks(2).enumerate() {
                let s = std::str::from_utf8(pair).expect("ascii");
                uuid[i] = u8::from_str_radix(s, 16).expect("hex");
            }
            return Ok(Fsid::Uuid(uuid));
        }
        Err("not a file-system id (use an integer, a UUID of 32 hex digits, or root)".into())
    }
}

impl fmt::Display for Fsid {
    /// The form we hand to exportfs: decimal, or the dashed lower-case UUID.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fsid::Num(n) => write!(f, "{n}"),
            Fsid::Uuid(u) => {
                for (i, b) in u.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// The options of one export: the administrator's list (minus any `fsid=`)
/// and the file-system id, from `options` or from `fsid`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportOptions {
    pub items: Vec<String>,
    pub fsid: Option<Fsid>,
}

impl ExportOptions {
    /// Parse the `options` parameter: comma-separated items, an `fsid=`
    /// among them taken out into [`ExportOptions::fsid`]. Errors say what
    /// is wrong (the runtime names the parameter).
    pub fn parse(list: &str) -> Result<ExportOptions, String> {
        let mut items = Vec::new();
        let mut fsid: Option<Fsid> = None;
        if list.trim().is_empty() {
            return Ok(ExportOptions::default());
        }
        for item in list.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err("an empty item (stray comma?)".into());
            }
            if let Some(bad) = item
                .chars()
                .find(|c| c.is_whitespace() || "()\"'\\".contains(*c))
            {
                return Err(format!(
                    "item {:?} contains {bad:?} (options are separated by commas)",
                    echo(item)
                ));
            }
            if let Some(v) = item.strip_prefix("fsid=") {
                let f = Fsid::parse(v).map_err(|e| format!("item {:?}: {e}", echo(item)))?;
                if fsid.is_some_and(|old| old != f) {
                    return Err("sets fsid twice, differently".into());
                }
                fsid = Some(f);
            } else {
                items.push(item.to_string());
            }
        }
        Ok(ExportOptions { items, fsid })
    }

    /// Merge in the `fsid` parameter: an error (naming no parameter) when
    /// the options set another one.
    pub fn with_fsid(mut self, fsid: Option<Fsid>) -> Result<ExportOptions, String> {
        match (fsid, self.fsid) {
            (Some(a), Some(b)) if a != b => {
                return Err(format!(
                    "conflicts with fsid={b} in options (set it in one place)"
                ))
            }
            (Some(a), _) => self.fsid = Some(a),
            (None, _) => {}
        }
        Ok(self)
    }

    /// The `-o` argument for exportfs, or `None` when there is nothing to
    /// say (exportfs then applies its defaults; passing an empty `-o`
    /// would swallow the next argument).
    pub fn to_arg(&self) -> Option<String> {
        let mut all = self.items.clone();
        if let Some(f) = self.fsid {
            all.push(format!("fsid={f}"));
        }
        (!all.is_empty()).then(|| all.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsid_forms() {
        assert_eq!(Fsid::parse("root"), Ok(Fsid::Num(0)));
        assert_eq!(Fsid::parse("0"), Ok(Fsid::Num(0)));
        assert_eq!(Fsid::parse("42"), Ok(Fsid::Num(42)));
        assert_eq!(Fsid::parse("0x10"), Ok(Fsid::Num(16)));
        assert_eq!(Fsid::parse("010"), Ok(Fsid::Num(8)), "as strtoul reads it");
        assert_eq!(Fsid::parse("4294967295"), Ok(Fsid::Num(u32::MAX)));
        assert!(Fsid::parse("4294967296")
            .unwrap_err()
            .contains("out of range"));
        let u = Fsid::parse("3F1B8B8C-1234-4cde-8a00-AAAAAAAAAAAA").unwrap();
        assert_eq!(u.to_string(), "3f1b8b8c-1234-4cde-8a00-aaaaaaaaaaaa");
        assert_eq!(Fsid::parse("3f1b8b8c12344cde8a00aaaaaaaaaaaa"), Ok(u));
        assert_eq!(Fsid::parse("3F1B8B8C:12344CDE:8A00AAAA:AAAAAAAA"), Ok(u));
        for bad in [
            "",
            "zz",
            "-1",
            "1.5",
            "08",
            "0x",
            "3f1b8b8c-1234",
            "root0",
            "12 3",
        ] {
            assert!(Fsid::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn merged(options: Option<&str>, fsid: Option<&str>) -> Result<ExportOptions, String> {
        let o = options.map_or(Ok(ExportOptions::default()), ExportOptions::parse)?;
        o.with_fsid(fsid.map(Fsid::parse).transpose()?)
    }

    #[test]
    fn options_merge_fsid() {
        let o = merged(Some("rw, sync,no_subtree_check"), Some("root")).unwrap();
        assert_eq!(
            o.to_arg().as_deref(),
            Some("rw,sync,no_subtree_check,fsid=0")
        );
        let o = merged(Some("rw,fsid=7"), None).unwrap();
        assert_eq!(o.fsid, Some(Fsid::Num(7)));
        assert_eq!(o.to_arg().as_deref(), Some("rw,fsid=7"));
        // The same fsid in both places is not a conflict.
        assert!(merged(Some("fsid=0x7"), Some("7")).is_ok());
        let e = merged(Some("rw,fsid=7"), Some("8")).unwrap_err();
        assert!(e.contains("conflicts"), "{e}");
        assert!(merged(Some("rw,,sync"), None)
            .unwrap_err()
            .contains("empty item"));
        assert!(merged(Some("rw sync"), None)
            .unwrap_err()
            .contains("commas"));
        // The parameter's name is the runtime's to add (nfs-export's tests).
        assert!(merged(Some("fsid=x"), None)
            .unwrap_err()
            .starts_with("item \"fsid=x\": not a file-system id"));
        assert!(merged(None, Some("nope"))
            .unwrap_err()
            .starts_with("not a file-system id"));
    }

    #[test]
    fn nothing_to_say_means_no_dash_o() {
        assert_eq!(merged(None, None).unwrap().to_arg(), None);
        assert_eq!(merged(Some("  "), None).unwrap().to_arg(), None);
        assert_eq!(
            merged(None, Some("1")).unwrap().to_arg().as_deref(),
            Some("fsid=1")
        );
    }
}
