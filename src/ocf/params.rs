use super::metadata::{Metadata, ParamSpec, ParamType};
use super::{echo, OcfError, OcfResult};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::{Component, Path, PathBuf};

/// The instance parameters (`OCF_RESKEY_<name>`), read as the agent's
/// description declares them: a parameter with a default in the meta-data
/// is never missing (the default comes from there only), a required one is
/// an error when unset, and every parse error names the parameter in one
/// form ([`invalid`]). An empty value counts as unset.
#[derive(Debug)]
pub struct Params {
    values: BTreeMap<String, String>,
    meta: Metadata,
    read: RefCell<BTreeSet<String>>,
}

/// The one form of a bad parameter's exit reason, code 6 (wrong on every
/// node): `parameter NAME="VALUE": WHAT`, the value capped by [`echo`].
pub fn invalid(name: &str, value: &str, why: impl Display) -> OcfError {
    OcfError::configured(format!("parameter {name}={:?}: {why}", echo(value.trim())))
}

/// Values `ocf_is_true` accepts, and their opposites.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" => Some(true),
        "0" | "false" | "no" | "off" | "n" => Some(false),
        _ => None,
    }
}

fn boolean(v: &str) -> Result<bool, String> {
    parse_bool(v).ok_or_else(|| "not a boolean (use true or false)".into())
}

/// A non-negative integer within `range`.
pub fn uint_in(v: &str, range: &RangeInclusive<u64>) -> Result<u64, String> {
    let n: u64 = v
        .trim()
        .parse()
        .map_err(|_| "not a non-negative integer".to_string())?;
    if !range.contains(&n) {
        return Err(format!(
            "out of range ({} to {})",
            range.start(),
            range.end()
        ));
    }
    Ok(n)
}

/// The longest path a system call takes, without its NUL.
const PATH_MAX: usize = libc::PATH_MAX as usize - 1;
/// The longest name of one directory entry.
const NAME_MAX: usize = 255;

/// The one rule for a path parameter: absolute, without `..` (a path is
/// taken as written: lexically, never resolved, so `..` after a symbolic
/// link would not mean what it seems), not `/` itself (a directory of its
/// own, on shared storage), short enough for a system call (PATH_MAX, each
/// component NAME_MAX), no NUL. Returned tidied (`//`, `/./` and a
/// trailing `/` dropped), so that two resources naming one directory
/// compare equal.
pub fn abs_path(v: &str) -> Result<PathBuf, String> {
    let p = Path::new(v);
    if !p.is_absolute() {
        return Err("not an absolute path".into());
    }
    if v.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    if v.len() > PATH_MAX {
        return Err(format!(
            "{} bytes long, over PATH_MAX ({PATH_MAX})",
            v.len()
        ));
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                return Err("contains a '..' component (write the path without it)".into())
            }
            Component::Normal(n) if n.len() > NAME_MAX => {
                return Err(format!(
                    "has a component of {} bytes, over NAME_MAX ({NAME_MAX})",
                    n.len()
                ))
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    if out == Path::new("/") {
        return Err("is the root directory (give a directory of its own)".into());
    }
    Ok(out)
}

/// Parse each item of a list; an error names the item when the list has
/// several (`"b": not ...`), so that the reason stays one short line.
pub fn each<'a, T>(
    items: impl IntoIterator<Item = &'a str>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let items: Vec<&str> = items.into_iter().collect();
    let several = items.len() > 1;
    items
        .iter()
        .map(|i| {
            parse(i).map_err(|why| {
                if several {
                    format!("{:?}: {why}", echo(i))
                } else {
                    why
                }
            })
        })
        .collect()
}

impl Params {
    /// Collect the declared parameters from `vars` (usually `std::env::vars()`).
    /// Undeclared `OCF_RESKEY_*` variables are ignored (Pacemaker adds its own).
    pub fn from_vars(meta: &Metadata, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut values = BTreeMap::new();
        for (k, v) in vars {
            if let Some(name) = k.strip_prefix("OCF_RESKEY_") {
                if meta.param(name).is_some() && !v.trim().is_empty() {
                    values.insert(name.to_string(), v);
                }
            }
        }
        Params {
            values,
            meta: meta.clone(),
            read: RefCell::new(BTreeSet::new()),
        }
    }

    /// Check the structural rules every parameter has: required ones are
    /// set; integers and booleans parse. (Agents check meaning.)
    pub fn check_declared(&self) -> OcfResult<()> {
        for p in &self.meta.params {
            match (self.raw(p), p.required) {
                (None, true) => return Err(missing(p)),
                (None, false) => {}
                (Some(v), _) => match p.kind {
                    ParamType::Integer if v.trim().parse::<i64>().is_err() => {
                        return Err(invalid(&p.name, v, "not an integer"))
                    }
                    ParamType::Boolean => {
                        boolean(v).map_err(|why| invalid(&p.name, v, why))?;
                    }
                    _ => {}
                },
            }
        }
        Ok(())
    }

    fn spec(&self, name: &str) -> &ParamSpec {
        self.read.borrow_mut().insert(name.to_string());
        self.meta
            .param(name)
            .unwrap_or_else(|| panic!("agent reads undeclared parameter {name}"))
    }

    /// The value set, else the meta-data default.
    fn raw<'a>(&'a self, spec: &'a ParamSpec) -> Option<&'a str> {
        self.values
            .get(&spec.name)
            .or(spec.default.as_ref())
            .map(String::as_str)
    }

    /// A parameter that is required or has a default in the meta-data,
    /// parsed by `parse` (which says what is wrong; the error names the
    /// parameter). Reading an optional parameter without a default this
    /// way is a bug in the agent (a panic): use [`Params::optional`].
    pub fn value<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> OcfResult<T> {
        let spec = self.spec(name);
        assert!(
            spec.required || spec.default.is_some(),
            "parameter {name} has no default and is optional: read it with Params::optional"
        );
        let v = self.raw(spec).ok_or_else(|| missing(spec))?;
        parse(v.trim()).map_err(|why| invalid(name, v, why))
    }

    /// An optional parameter without a default: `None` when unset. Reading
    /// one that has a default (or is required) this way is a bug in the
    /// agent (a panic): its default would be written twice.
    pub fn optional<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> OcfResult<Option<T>> {
        let spec = self.spec(name);
        assert!(
            !spec.required && spec.default.is_none(),
            "parameter {name} is required or has a default: read it with Params::value"
        );
        match self.values.get(name) {
            None => Ok(None),
            Some(v) => parse(v.trim())
                .map(Some)
                .map_err(|why| invalid(name, v, why)),
        }
    }

    /// A string parameter (trimmed).
    pub fn string(&self, name: &str) -> OcfResult<String> {
        self.value(name, |v| Ok(v.to_string()))
    }

    /// An optional string parameter without a default (trimmed).
    pub fn optional_string(&self, name: &str) -> OcfResult<Option<String>> {
        self.optional(name, |v| Ok(v.to_string()))
    }

    pub fn bool(&self, name: &str) -> OcfResult<bool> {
        self.value(name, boolean)
    }

    /// A non-negative integer within `range`.
    pub fn uint(&self, name: &str, range: RangeInclusive<u64>) -> OcfResult<u64> {
        self.value(name, |v| uint_in(v, &range))
    }

    /// A directory, by the one path rule ([`abs_path`]).
    pub fn abs_dir(&self, name: &str) -> OcfResult<PathBuf> {
        self.value(name, abs_path)
    }

    /// The error for a value that parses but is wrong together with the
    /// others (`grace_time` shorter than `lease_time`), in the one form.
    pub fn invalid(&self, name: &str, why: impl Display) -> OcfError {
        let v = self.raw(self.spec(name)).unwrap_or("");
        invalid(name, v, why)
    }

    /// Whether the user set this parameter (a default does not count).
    pub fn is_set(&self, name: &str) -> bool {
        self.spec(name);
        self.values.contains_key(name)
    }

    /// Names of declared parameters the agent has read so far (for the
    /// test that the code and the description agree).
    pub fn names_read(&self) -> BTreeSet<String> {
        self.read.borrow().clone()
    }

    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }
}

fn missing(p: &ParamSpec) -> OcfError {
    OcfError::configured(format!(
        "parameter {} is required ({})",
        p.name, p.shortdesc
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Metadata {
        Metadata::parse(
            r#"<resource-agent name="t" version="1"><version>1.1</version>
            <longdesc lang="en">x</longdesc><shortdesc lang="en">x</shortdesc>
            <parameters>
            <parameter name="ip" required="1"><longdesc lang="en">a</longdesc><shortdesc lang="en">address</shortdesc><content type="string"/></parameter>
            <parameter name="n"><longdesc lang="en">a</longdesc><shortdesc lang="en">a</shortdesc><content type="integer" default="5"/></parameter>
            <parameter name="b"><longdesc lang="en">a</longdesc><shortdesc lang="en">a</shortdesc><content type="boolean" default="true"/></parameter>
            <parameter name="dir"><longdesc lang="en">a</longdesc><shortdesc lang="en">a</shortdesc><content type="string"/></parameter>
            </parameters><actions><action name="start" timeout="20s"/></actions></resource-agent>"#,
        )
        .unwrap()
    }

    fn p(vars: &[(&str, &str)]) -> Params {
        Params::from_vars(
            &meta(),
            vars.iter()
                .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
        )
    }

    #[test]
    fn required_and_types() {
        let e = p(&[]).check_declared().unwrap_err();
        assert_eq!(e.code, crate::ocf::OcfCode::ErrConfigured);
        assert!(e.reason.contains("parameter ip is required"), "{e}");
        let e = p(&[("ip", "x"), ("n", "five")])
            .check_declared()
            .unwrap_err();
        assert!(e.reason.contains("n=\"five\": not an integer"), "{e}");
        let e = p(&[("ip", "x"), ("b", "maybe")])
            .check_declared()
            .unwrap_err();
        assert!(e.reason.contains("b=\"maybe\""), "{e}");
        assert!(p(&[("ip", "x")]).check_declared().is_ok());
        let e = p(&[]).string("ip").unwrap_err();
        assert!(e.reason.contains("parameter ip is required"), "{e}");
    }

    #[test]
    fn defaults_and_empty_values() {
        let ps = p(&[("ip", " 192.0.2.1 "), ("n", "")]);
        assert_eq!(ps.string("ip").unwrap(), "192.0.2.1");
        assert_eq!(ps.uint("n", 0..=10).unwrap(), 5);
        assert!(!ps.is_set("n"));
        assert!(ps.bool("b").unwrap());
        let e = p(&[("ip", "x"), ("n", "11")])
            .uint("n", 0..=10)
            .unwrap_err();
        assert!(e.reason.contains("out of range"));
        assert_eq!(ps.names_read().len(), 3);
        assert_eq!(ps.optional("dir", abs_path).unwrap(), None);
    }

    /// Every parse error, from the runtime's parsers or an agent's, has
    /// one form; values are echoed capped.
    #[test]
    fn one_form_for_every_parse_error() {
        let ps = p(&[("ip", "x"), ("n", "11"), ("b", "perhaps"), ("dir", "rel")]);
        let e = ps.uint("n", 0..=10).unwrap_err();
        assert_eq!(e.reason, "parameter n=\"11\": out of range (0 to 10)");
        let e = ps.bool("b").unwrap_err();
        assert_eq!(
            e.reason,
            "parameter b=\"perhaps\": not a boolean (use true or false)"
        );
        let e = ps.optional("dir", abs_path).unwrap_err();
        assert_eq!(e.reason, "parameter dir=\"rel\": not an absolute path");
        let e = ps
            .value("ip", |_| Err::<(), _>("not an IPv4 or IPv6 address".into()))
            .unwrap_err();
        assert_eq!(e.reason, "parameter ip=\"x\": not an IPv4 or IPv6 address");
        assert_eq!(e.code, crate::ocf::OcfCode::ErrConfigured);
        assert_eq!(
            ps.invalid("n", "larger than ip").reason,
            "parameter n=\"11\": larger than ip"
        );
        let long = "y".repeat(5000);
        let e = p(&[("ip", &long)])
            .value("ip", |_| Err::<(), _>("bad".into()))
            .unwrap_err();
        assert!(e.reason.len() < 200, "{e}");
    }

    #[test]
    fn a_default_is_read_as_such_and_optional_ones_without() {
        let ps = p(&[("ip", "x")]);
        let twice = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ps.optional("n", |v| Ok(v.to_string()))
        }));
        assert!(
            twice.is_err(),
            "a default read as optional would be written twice"
        );
        let missing = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ps.string("dir")));
        assert!(
            missing.is_err(),
            "an optional parameter has no value to fall back on"
        );
    }

    #[test]
    fn the_path_rule() {
        assert_eq!(abs_path("/a//b/./c/").unwrap(), Path::new("/a/b/c"));
        for (bad, why) in [
            ("a/b", "not an absolute path"),
            ("", "not an absolute path"),
            ("/a/../b", "'..'"),
            ("/", "root directory"),
            ("//", "root directory"),
            ("/./", "root directory"),
            ("/a\0b", "NUL"),
        ] {
            let e = abs_path(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let e = abs_path(&format!("/{}", "x".repeat(5000))).unwrap_err();
        assert!(e.contains("PATH_MAX"), "{e}");
        let e = abs_path(&format!("/srv/{}", "y".repeat(300))).unwrap_err();
        assert!(e.contains("NAME_MAX"), "{e}");
        assert!(abs_path(&format!("/srv/{}", "y".repeat(255))).is_ok());
    }

    #[test]
    fn list_errors_name_the_item_when_there_are_several() {
        let num = |s: &str| s.parse::<u8>().map_err(|_| "not a number".to_string());
        assert_eq!(each(["1", "2"], num).unwrap(), [1, 2]);
        assert_eq!(each(["x"], num).unwrap_err(), "not a number");
        assert_eq!(each(["1", "x"], num).unwrap_err(), "\"x\": not a number");
    }

    /// The four agents' meta-data: a parameter with a default is never
    /// missing, its value is that default, and the default has the
    /// declared type.
    #[test]
    fn every_agents_defaults_are_valid_and_are_what_is_read() {
        for xml in [
            include_str!("../../metadata/float-ip.xml"),
            include_str!("../../metadata/nfs-export.xml"),
            include_str!("../../metadata/nfs-grace.xml"),
            include_str!("../../metadata/statd-holding.xml"),
        ] {
            let meta = Metadata::parse(xml).unwrap();
            let ps = Params::from_vars(&meta, []);
            for spec in meta.params.iter().filter(|s| s.default.is_some()) {
                let want = spec.default.as_deref().unwrap().trim();
                let (agent, name) = (&meta.name, &spec.name);
                assert_eq!(ps.string(name).unwrap(), want, "{agent} {name}");
                match spec.kind {
                    ParamType::Integer => {
                        ps.uint(name, 0..=u64::MAX)
                            .unwrap_or_else(|e| panic!("{agent}: {e}"));
                    }
                    ParamType::Boolean => {
                        ps.bool(name).unwrap_or_else(|e| panic!("{agent}: {e}"));
                    }
                    ParamType::String => {}
                }
            }
        }
    }

    #[test]
    fn booleans() {
        for t in ["1", "true", "YES", "on"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["0", "false", "No", "off"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool("2"), None);
    }
}
