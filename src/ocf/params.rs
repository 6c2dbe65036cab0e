use super::metadata::{Metadata, ParamType};
use super::{echo, OcfError, OcfResult};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// The instance parameters (`OCF_RESKEY_<name>`), checked against the
/// agent's description: defaults applied, types checked, every error naming
/// the parameter. An empty value counts as unset.
#[derive(Debug)]
pub struct Params {
    values: BTreeMap<String, String>,
    meta: Metadata,
    read: RefCell<BTreeSet<String>>,
}

/// Values `ocf_is_true` accepts, and their opposites.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" => Some(true),
        "0" | "false" | "no" | "off" | "n" => Some(false),
        _ => None,
    }
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
            let v = self.values.get(&p.name).or(p.default.as_ref());
            match (v, p.required) {
                (None, true) => {
                    return Err(OcfError::configured(format!(
                        "parameter {} is required ({})",
                        p.name, p.shortdesc
                    )))
                }
                (None, false) => {}
                (Some(v), _) => match p.kind {
                    ParamType::Integer if v.trim().parse::<i64>().is_err() => {
                        return Err(OcfError::configured(format!(
                            "parameter {}={:?} is not an integer",
                            p.name,
                            echo(v)
                        )))
                    }
                    ParamType::Boolean if parse_bool(v).is_none() => {
                        return Err(OcfError::configured(format!(
                            "parameter {}={:?} is not a boolean (use true or false)",
                            p.name,
                            echo(v)
                        )))
                    }
                    _ => {}
                },
            }
        }
        Ok(())
    }

    fn spec(&self, name: &str) -> &super::metadata::ParamSpec {
        self.read.borrow_mut().insert(name.to_string());
        self.meta
            .param(name)
            .unwrap_or_else(|| panic!("agent reads undeclared parameter {name}"))
    }

    /// The value (or the default), trimmed; `None` when unset.
    pub fn get(&self, name: &str) -> Option<String> {
        let spec = self.spec(name);
        self.values
            .get(name)
            .or(spec.default.as_ref())
            .map(|v| v.trim().to_string())
    }

    /// Whether the user set this parameter (a default does not count).
    pub fn is_set(&self, name: &str) -> bool {
        self.spec(name);
        self.values.contains_key(name)
    }

    pub fn required(&self, name: &str) -> OcfResult<String> {
        self.get(name)
            .ok_or_else(|| OcfError::configured(format!("parameter {name} is required")))
    }

    pub fn bool(&self, name: &str) -> OcfResult<bool> {
        match self.get(name) {
            None => Ok(false),
            Some(v) => parse_bool(&v).ok_or_else(|| {
                OcfError::configured(format!(
                    "parameter {name}={:?} is not a boolean (use true or false)",
                    echo(&v)
                ))
            }),
        }
    }

    /// An unsigned integer within `range`, or `None` when unset.
    pub fn uint(&self, name: &str, range: std::ops::RangeInclusive<u64>) -> OcfResult<Option<u64>> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let n: u64 = v.parse().map_err(|_| {
            OcfError::configured(format!(
                "parameter {name}={:?} is not a non-negative integer",
                echo(&v)
            ))
        })?;
        if !range.contains(&n) {
            return Err(OcfError::configured(format!(
                "parameter {name}={n} is out of range ({}..={})",
                range.start(),
                range.end()
            )));
        }
        Ok(Some(n))
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
        assert!(e.reason.contains("n=\"five\" is not an integer"), "{e}");
        let e = p(&[("ip", "x"), ("b", "maybe")])
            .check_declared()
            .unwrap_err();
        assert!(e.reason.contains("b=\"maybe\""), "{e}");
        assert!(p(&[("ip", "x")]).check_declared().is_ok());
    }

    #[test]
    fn defaults_and_empty_values() {
        let ps = p(&[("ip", " 192.0.2.1 "), ("n", "")]);
        assert_eq!(ps.get("ip").as_deref(), Some("192.0.2.1"));
        assert_eq!(ps.uint("n", 0..=10).unwrap(), Some(5));
        assert!(!ps.is_set("n"));
        assert!(ps.bool("b").unwrap());
        let e = p(&[("ip", "x"), ("n", "11")])
            .uint("n", 0..=10)
            .unwrap_err();
        assert!(e.reason.contains("out of range"));
        assert_eq!(ps.names_read().len(), 3);
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
