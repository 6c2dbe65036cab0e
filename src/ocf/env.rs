use super::metadata::Form;
use std::collections::HashMap;
use std::time::Duration;

/// An OCF action, as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Monitor,
    MetaData,
    ValidateAll,
    ReloadAgent,
    Usage,
    /// Anything else: answered with 3 (unimplemented).
    Other(String),
}

impl Action {
    pub fn parse(s: &str) -> Action {
        match s {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "monitor" | "status" => Action::Monitor,
            "meta-data" | "meta_data" => Action::MetaData,
            "validate-all" => Action::ValidateAll,
            "reload-agent" => Action::ReloadAgent,
            "usage" | "help" | "--help" | "-h" => Action::Usage,
            other => Action::Other(other.to_string()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Monitor => "monitor",
            Action::MetaData => "meta-data",
            Action::ValidateAll => "validate-all",
            Action::ReloadAgent => "reload-agent",
            Action::Usage => "usage",
            Action::Other(s) => s,
        }
    }
}

/// What the cluster manager told this invocation, read once from the
/// environment (everything except the instance parameters, see `Params`).
#[derive(Debug, Clone)]
pub struct Invocation {
    pub action: Action,
    /// `OCF_RESOURCE_INSTANCE` (Pacemaker's resource id), or "default".
    pub instance: String,
    /// `OCF_RESKEY_CRM_meta_interval` in ms; 0 means a probe or a one-off.
    pub interval_ms: u64,
    /// `OCF_RESKEY_CRM_meta_timeout` in ms, when given.
    pub timeout_ms: Option<u64>,
    /// `OCF_CHECK_LEVEL` (or the older `OCF_RESKEY_OCF_CHECK_LEVEL`).
    pub check_level: u32,
    /// `OCF_RA_VERSION_MAJOR`.`OCF_RA_VERSION_MINOR`, when given.
    pub ra_version: Option<(u32, u32)>,
    /// `OCF_EXIT_REASON_PREFIX`, default `ocf-exit-reason:`.
    pub exit_reason_prefix: String,
}

impl Invocation {
    pub fn from_env(action: &str, env: &HashMap<String, String>) -> Invocation {
        let num = |k: &str| env.get(k).and_then(|v| v.trim().parse::<u64>().ok());
        let check_level = env
            .get("OCF_CHECK_LEVEL")
            .or_else(|| env.get("OCF_RESKEY_OCF_CHECK_LEVEL"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let ra_version = match (num("OCF_RA_VERSION_MAJOR"), num("OCF_RA_VERSION_MINOR")) {
            (Some(a), Some(b)) => Some((a as u32, b as u32)),
            (Some(a), None) => Some((a as u32, 0)),
            _ => None,
        };
        Invocation {
            action: Action::parse(action),
            instance: env
                .get("OCF_RESOURCE_INSTANCE")
                .filter(|s| !s.is_empty())
                .cloned()
                .unwrap_or_else(|| "default".into()),
            interval_ms: num("OCF_RESKEY_CRM_meta_interval").unwrap_or(0),
            timeout_ms: num("OCF_RESKEY_CRM_meta_timeout").filter(|&t| t > 0),
            check_level,
            ra_version,
            exit_reason_prefix: env
                .get("OCF_EXIT_REASON_PREFIX")
                .cloned()
                .unwrap_or_else(|| "ocf-exit-reason:".into()),
        }
    }

    /// A probe: a monitor with interval 0 (Pacemaker's one-off check of a
    /// node's state, including right after a reboot).
    pub fn is_probe(&self) -> bool {
        self.action == Action::Monitor && self.interval_ms == 0
    }

    /// A recurring monitor: it must never answer 3 or 2.
    pub fn is_recurring_monitor(&self) -> bool {
        self.action == Action::Monitor && self.interval_ms > 0
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_ms.map(Duration::from_millis)
    }

    /// The meta-data form the caller can read (see [`Form`]).
    pub fn metadata_form(&self) -> Form {
        match self.ra_version {
            Some((maj, min)) if (maj, min) >= (1, 1) => Form::Ocf11,
            _ => Form::Ocf10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: &[(&str, &str)]) -> HashMap<String, String> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn reads_pacemaker_environment() {
        let i = Invocation::from_env(
            "monitor",
            &env(&[
                ("OCF_RESOURCE_INSTANCE", "vip"),
                ("OCF_RESKEY_CRM_meta_interval", "0"),
                ("OCF_RESKEY_CRM_meta_timeout", "20000"),
                ("OCF_RESKEY_OCF_CHECK_LEVEL", "10"),
                ("OCF_RA_VERSION_MAJOR", "1"),
                ("OCF_RA_VERSION_MINOR", "1"),
            ]),
        );
        assert!(i.is_probe());
        assert!(!i.is_recurring_monitor());
        assert_eq!(i.instance, "vip");
        assert_eq!(i.timeout(), Some(Duration::from_secs(20)));
        assert_eq!(i.check_level, 10);
        assert_eq!(i.metadata_form(), Form::Ocf11);
        assert_eq!(i.exit_reason_prefix, "ocf-exit-reason:");
    }

    #[test]
    fn defaults_without_a_manager() {
        let i = Invocation::from_env("status", &env(&[("OCF_CHECK_LEVEL", "20")]));
        assert_eq!(i.action, Action::Monitor);
        assert_eq!(i.instance, "default");
        assert_eq!(i.timeout(), None);
        assert_eq!(i.check_level, 20);
        assert_eq!(i.metadata_form(), Form::Ocf10);
        assert_eq!(Action::parse("promote"), Action::Other("promote".into()));
    }
}
