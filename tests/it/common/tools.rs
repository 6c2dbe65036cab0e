//! The cluster tools run on the agents as an administrator runs them,
//! finding them under `/usr/lib/ocf/resource.d/hanfs` (see
//! `Sandbox::install_agents`): `crm_resource --validate`, where Pacemaker
//! runs the agent's validate-all and prints what it answered, as `returned
//! CODE (KIND: exit reason)`, exiting with the agent's code; and
//! `ocf-tester`.

use super::Sandbox;

/// One `--option` of the command: `"name=value"` or `("name", "value")`.
pub trait CrmOption {
    fn text(&self) -> String;
}

impl CrmOption for &str {
    fn text(&self) -> String {
        (*self).to_string()
    }
}

impl CrmOption for (&str, &str) {
    fn text(&self) -> String {
        format!("{}={}", self.0, self.1)
    }
}

/// The shell command validating the hanfs agent `agent` with `opts` (each
/// quoted; a guest script may append more `--option` words).
pub fn validate_sh(agent: &str, opts: &[impl CrmOption]) -> String {
    let mut cmd = format!("crm_resource --validate --class ocf --provider hanfs --agent {agent}");
    for o in opts {
        cmd.push_str(&format!(" --option '{}'", o.text()));
    }
    cmd
}

/// How crm_resource introduces the agent's exit reason for exit `code`:
/// `returned CODE (KIND: `.
pub fn returned(code: i32) -> String {
    let kind = match code {
        1 => "error",
        2 => "invalid parameter",
        3 => "unimplemented feature",
        4 => "insufficient privileges",
        5 => "not installed",
        6 => "not configured",
        7 => "not running",
        other => panic!("no OCF exit code {other} expected from validate-all"),
    };
    format!("returned {code} ({kind}: ")
}

/// What `crm_resource --validate` answered.
pub struct Validation {
    pub command: String,
    pub code: i32,
    /// stdout and stderr together.
    pub output: String,
}

impl Validation {
    #[track_caller]
    pub fn expect_ok(&self) {
        assert_eq!(self.code, 0, "{}:\n{}", self.command, self.output);
    }

    /// Expect exit `code`; the agent's exit reason as crm_resource shows
    /// it (the rest of its `returned CODE (KIND: ` line).
    #[track_caller]
    pub fn reason(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "{}:\n{}", self.command, self.output);
        let marker = returned(code);
        let Some(at) = self.output.find(&marker) else {
            panic!("{}: no {marker:?} in:\n{}", self.command, self.output);
        };
        let rest = &self.output[at + marker.len()..];
        rest.lines().next().unwrap_or_default()
    }

    /// Expect exit `code` with an exit reason containing `part`.
    #[track_caller]
    pub fn expect_refused(&self, code: i32, part: &str) {
        assert!(
            self.reason(code).contains(part),
            "{}: expected {}...{part}...\n{}",
            self.command,
            returned(code),
            self.output
        );
    }
}

impl Sandbox {
    /// ocf-tester on the hanfs agent `agent` with `opts` (its `-o
    /// name=value` words, quoted for the shell where needed): it must pass
    /// all its tests.
    #[track_caller]
    pub fn expect_ocf_tester_passes(&self, agent: &str, opts: &str) {
        let out = self.sh(&format!(
            "ocf-tester -n test {opts} /usr/lib/ocf/resource.d/hanfs/{agent} 2>&1"
        ));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("passed all tests"),
            "ocf-tester {opts} {agent}:\n{text}"
        );
    }

    /// `crm_resource --validate` of the hanfs agent `agent` inside the
    /// sandbox (after `install_agents`).
    pub fn crm_validate(&self, agent: &str, opts: &[impl CrmOption]) -> Validation {
        let command = validate_sh(agent, opts);
        let out = self.sh(&format!("{command} 2>&1"));
        Validation {
            code: out.status.code().unwrap_or(-1),
            output: String::from_utf8_lossy(&out.stdout).into_owned(),
            command,
        }
    }
}
