use super::metadata::Metadata;
use super::{Action, Deadline, Invocation, OcfCode, OcfError, OcfResult, Params, ResultExt};
use std::collections::HashMap;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// What every action handler gets: the invocation, its deadline and where
/// per-instance state lives.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub agent: &'static str,
    pub inv: Invocation,
    pub deadline: Deadline,
}

impl Ctx {
    pub fn instance(&self) -> &str {
        &self.inv.instance
    }
    pub fn is_probe(&self) -> bool {
        self.inv.is_probe()
    }
    pub fn check_level(&self) -> u32 {
        self.inv.check_level
    }
    /// Per-node runtime state (`HA_RSCTMP`, default `/run/resource-agents`):
    /// on tmpfs, so it is empty after a reboot, which is what makes a probe
    /// after a reboot answer "stopped" even when the kernel's tables were
    /// restored from disk.
    pub fn runtime_dir(&self) -> PathBuf {
        runtime_dir()
    }
    /// `<runtime_dir>/hanfs-<agent>-<instance>`: this instance's state file.
    pub fn state_file(&self) -> PathBuf {
        state_file(&self.runtime_dir(), self.agent, &self.inv.instance)
    }
    /// This instance's state ([`load_state`] of [`Ctx::state_file`]).
    pub fn load_state<T: serde::de::DeserializeOwned>(&self) -> OcfResult<Option<T>> {
        load_state(&self.state_file())
    }
    /// Record this instance's state ([`save_state`]).
    pub fn save_state<T: serde::Serialize>(&self, v: &T) -> OcfResult<()> {
        save_state(&self.state_file(), v)
    }
    /// The state files of this agent's other instances on this node.
    pub fn other_instances(&self) -> Vec<InstanceFile> {
        let mine = self.state_file();
        instance_files(&self.runtime_dir(), self.agent)
            .into_iter()
            .filter(|f| f.path != mine)
            .collect()
    }
    /// `<runtime_dir>/hanfs-<agent>.lock`, locked exclusively (waiting up
    /// to the deadline): the critical section of this agent's instances on
    /// this node (a check of the node's state and the change it allows).
    /// Released when the guard is dropped or the process exits.
    pub fn node_lock(&self) -> OcfResult<nix::fcntl::Flock<std::fs::File>> {
        let dir = self.runtime_dir();
        std::fs::create_dir_all(&dir).or_generic(|| format!("cannot create {}", dir.display()))?;
        crate::sys::fsfile::lock_exclusive(&self.node_lock_path(), &self.deadline)
    }
    /// The file [`Ctx::node_lock`] locks.
    pub fn node_lock_path(&self) -> PathBuf {
        node_lock_file(&self.runtime_dir(), self.agent)
    }
    /// A context for tests and tools: no manager, the given deadline.
    pub fn standalone(agent: &'static str, action: &str, timeout: Duration) -> Ctx {
        Ctx {
            agent,
            inv: Invocation::from_env(action, &HashMap::new()),
            deadline: Deadline::from_timeout(timeout),
        }
    }
}

/// The state file of `agent`'s `instance` in `runtime_dir` ([`Ctx::state_file`]);
/// characters other than ASCII letters, digits and `-_.:` become `_`.
pub fn state_file(runtime_dir: &Path, agent: &str, instance: &str) -> PathBuf {
    let safe: String = instance
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    runtime_dir.join(format!("hanfs-{agent}-{safe}"))
}

/// An agent's runtime state file (an instance's, or a per-node one such as
/// `hanfs-<agent>.node`): JSON, read without following a symlink, as a
/// regular file of at most [`crate::sys::fsfile::STATE_CAP`] bytes, owned
/// by root ([`crate::sys::fsfile::read_trusted_file`]).
/// `None`: no file. A file that is not such a state (empty, torn, garbled,
/// a FIFO, another user's) is an error (1): the state is then unknown,
/// never "stopped".
pub fn load_state<T: serde::de::DeserializeOwned>(path: &Path) -> OcfResult<Option<T>> {
    let Some(bytes) = crate::sys::fsfile::read_trusted_file(path, crate::sys::fsfile::STATE_CAP)?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .or_generic(|| format!("state file {} is damaged", path.display()))
}

/// Write a runtime state file ([`load_state`]): the directory created if
/// need be, the file replaced atomically (a crash leaves the old or the new
/// state), readable by root only.
pub fn save_state<T: serde::Serialize>(path: &Path, v: &T) -> OcfResult<()> {
    write_state(path, v, 0o600)
}

/// [`save_state`] for a state that an unprivileged process must read too
/// (mode 0644): statd-holding's registry, which statd's HA callout reads
/// as statd's user.
pub fn save_state_readable<T: serde::Serialize>(path: &Path, v: &T) -> OcfResult<()> {
    write_state(path, v, 0o644)
}

fn write_state<T: serde::Serialize>(path: &Path, v: &T, mode: u32) -> OcfResult<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).or_generic(|| format!("cannot create {}", dir.display()))?;
    }
    let json = serde_json::to_vec_pretty(v)
        .or_generic(|| format!("cannot encode the state for {}", path.display()))?;
    crate::sys::fsfile::write_atomic(path, &json, mode)
}

/// One instance's state file on this node, as [`instance_files`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFile {
    /// The instance's name as its file spells it ([`state_file`]).
    pub instance: String,
    pub path: PathBuf,
    /// Last written (seconds, nanoseconds).
    pub mtime: (i64, i64),
}

/// The instances of `agent` that have a state file in `runtime_dir`, sorted
/// by name: "the other instances of this agent on this node" for any
/// agent (what `ha_pseudo_resource` files are for the shell agents). Its
/// node lock and other per-node files (`hanfs-<agent>.<what>`) are not
/// instances.
pub fn instance_files(runtime_dir: &Path, agent: &str) -> Vec<InstanceFile> {
    use std::os::unix::fs::MetadataExt;
    let prefix = format!("hanfs-{agent}-");
    let mut out: Vec<InstanceFile> = std::fs::read_dir(runtime_dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name();
                    let instance = name.to_str()?.strip_prefix(&prefix)?.to_string();
                    let m = std::fs::symlink_metadata(e.path()).ok()?;
                    Some(InstanceFile {
                        instance,
                        path: e.path(),
                        mtime: (m.mtime(), m.mtime_nsec()),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.instance.cmp(&b.instance));
    out
}

/// The node lock file of `agent` ([`Ctx::node_lock`]) in `runtime_dir`.
pub fn node_lock_file(runtime_dir: &Path, agent: &str) -> PathBuf {
    runtime_dir.join(format!("hanfs-{agent}.lock"))
}

pub fn runtime_dir() -> PathBuf {
    std::env::var_os("HA_RSCTMP")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/resource-agents"))
}

/// One resource agent: its description and its action handlers. Handlers
/// take the checked configuration, never the environment.
pub trait Agent {
    /// The checked, typed parameters.
    type Config: std::fmt::Debug;
    /// The agent name (the binary's name).
    const NAME: &'static str;
    /// The description (`metadata/<agent>.xml`, embedded).
    const METADATA: &'static str;

    /// Parameters → configuration. Syntax and meaning only, no look at this
    /// host: errors are 6 (wrong everywhere).
    fn configure(p: &Params) -> OcfResult<Self::Config>;

    /// Why `action` must run as root, when it must: the runtime refuses it
    /// otherwise (4), after the configuration is checked and before any
    /// handler runs, with one message for every agent.
    fn needs_root(_action: &Action) -> Option<&'static str> {
        None
    }

    /// Checks against this host (validate-all, and before start): programs
    /// present (5), interfaces and paths usable here (2).
    fn validate(_ctx: &Ctx, _cfg: &Self::Config) -> OcfResult<()> {
        Ok(())
    }

    fn start(ctx: &Ctx, cfg: &Self::Config) -> OcfResult<()>;

    /// Must succeed when already stopped, and must not return 7.
    fn stop(ctx: &Ctx, cfg: &Self::Config) -> OcfResult<()>;

    /// `Ok` = running; `Err` with code 7 = cleanly stopped.
    fn monitor(ctx: &Ctx, cfg: &Self::Config) -> OcfResult<()>;

    /// Apply a change of `reloadable` parameters to a running resource.
    fn reload(_ctx: &Ctx, _cfg: &Self::Config) -> OcfResult<()> {
        Err(OcfError::unimplemented("reload-agent is not supported"))
    }
}

fn usage<A: Agent>() -> String {
    format!(
        "usage: {} {{start|stop|monitor|validate-all|meta-data|reload-agent}}\n\n\
         {} is an OCF resource agent (provider hanfs); Pacemaker runs it with\n\
         OCF_RESKEY_<parameter> variables set. `{} meta-data` describes them.\n",
        A::NAME,
        A::NAME,
        A::NAME
    )
}

/// Run agent `A` with the process arguments and environment; the whole OCF
/// protocol lives here. A panic becomes exit code 1 with an exit reason.
pub fn run<A: Agent>() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let env: HashMap<String, String> = std::env::vars().collect();
    let prefix = env
        .get("OCF_EXIT_REASON_PREFIX")
        .cloned()
        .unwrap_or_else(|| "ocf-exit-reason:".into());
    guarded(A::NAME, &prefix, || dispatch::<A>(&args, &env)).into()
}

/// Run `f`, turning a panic into exit code 1 with an exit reason.
pub fn guarded(agent: &str, prefix: &str, f: impl FnOnce() -> OcfCode) -> OcfCode {
    // Keep the default panic message off (it would be a second, unstructured
    // line); the reason is reported below.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    match result {
        Ok(c) => c,
        Err(panic) => {
            let what = panic_text(&*panic);
            log::error!("internal error: {what}");
            let _ = writeln!(
                std::io::stderr(),
                "{prefix}internal error in {agent}: {what}"
            );
            OcfCode::ErrGeneric
        }
    }
}

fn report(inv: &Invocation, e: &OcfError) {
    let action = inv.action.name();
    match e.code {
        OcfCode::NotRunning => {
            log::info!("{action}: not running: {}", e.reason);
            return;
        }
        OcfCode::Degraded => log::error!("{action}: degraded: {}", e.reason),
        code => log::error!("{action} failed ({}): {}", code.name(), e.reason),
    }
    let _ = writeln!(std::io::stderr(), "{}{}", inv.exit_reason_prefix, e.reason);
}

/// The protocol, separated from process exit for testing.
pub fn dispatch<A: Agent>(args: &[String], env: &HashMap<String, String>) -> OcfCode {
    let Some(action_arg) = args.get(1) else {
        let _ = std::io::stderr().write_all(usage::<A>().as_bytes());
        return OcfCode::ErrArgs;
    };
    let inv = Invocation::from_env(action_arg, env);
    let meta = match Metadata::parse(A::METADATA) {
        Ok(m) => m,
        Err(e) => panic!("embedded meta-data of {} does not parse: {e}", A::NAME),
    };
    match &inv.action {
        Action::MetaData => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(meta.render(inv.metadata_form()).as_bytes());
            let _ = out.flush();
            return OcfCode::Success;
        }
        Action::Usage => {
            let _ = std::io::stdout().write_all(usage::<A>().as_bytes());
            return OcfCode::Success;
        }
        _ => {}
    }
    crate::ocf::log::init(A::NAME, &inv.instance, true);

    let timeout = inv
        .timeout()
        .or_else(|| meta.action_timeout(inv.action.name()))
        .unwrap_or(Duration::from_secs(20));
    let ctx = Ctx {
        agent: A::NAME,
        inv: inv.clone(),
        deadline: Deadline::from_timeout(timeout),
    };
    log::debug!(
        "{} (interval {} ms, timeout {} ms, depth {})",
        inv.action.name(),
        inv.interval_ms,
        timeout.as_millis(),
        inv.check_level
    );

    let params = Params::from_vars(&meta, env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let cfg = params.check_declared().and_then(|()| A::configure(&params));
    let outcome: OcfResult<()> = match (&inv.action, cfg) {
        (Action::Other(name), _) => {
            log::debug!("action {name} is not implemented");
            return OcfCode::Unimplemented;
        }
        // A resource whose configuration is wrong everywhere can never have
        // been started with it: stop has nothing to do.
        (Action::Stop, Err(e)) if e.code == OcfCode::ErrConfigured => {
            log::warn!(
                "stop: configuration is invalid ({}); nothing can be running",
                e.reason
            );
            Ok(())
        }
        (_, Err(e)) => Err(e),
        (action, Ok(cfg)) => check_root::<A>(action).and_then(|()| match action {
            Action::ValidateAll => A::validate(&ctx, &cfg),
            Action::Start => A::validate(&ctx, &cfg).and_then(|()| A::start(&ctx, &cfg)),
            Action::Stop => A::stop(&ctx, &cfg),
            Action::Monitor => A::monitor(&ctx, &cfg),
            Action::ReloadAgent if meta.has_reloadable() => A::reload(&ctx, &cfg),
            Action::ReloadAgent => Err(OcfError::unimplemented("no reloadable parameters")),
            Action::MetaData | Action::Usage | Action::Other(_) => unreachable!(),
        }),
    };
    let code = match outcome {
        Ok(()) => OcfCode::Success,
        Err(mut e) => {
            // 7 is a monitor answer only; stop must never report it.
            if e.code == OcfCode::NotRunning && inv.action != Action::Monitor {
                e.code = if inv.action == Action::Stop {
                    OcfCode::Success
                } else {
                    OcfCode::ErrGeneric
                };
            }
            // A recurring monitor must not answer 3 (Pacemaker would not
            // recover) and 2/5 there mean "broke since start": soft failure.
            if inv.is_recurring_monitor()
                && matches!(
                    e.code,
                    OcfCode::Unimplemented | OcfCode::ErrArgs | OcfCode::ErrInstalled
                )
            {
                e.code = OcfCode::ErrGeneric;
            }
            if e.code != OcfCode::Success {
                report(&inv, &e);
            }
            // 190 is a monitor answer too: any other action did its work
            // (what is wrong is logged and reported above).
            if e.code == OcfCode::Degraded && inv.action != Action::Monitor {
                e.code = OcfCode::Success;
            }
            e.code
        }
    };
    if code == OcfCode::Success {
        log::debug!("{} succeeded", inv.action.name());
    }
    code
}

/// The one root check ([`Agent::needs_root`]).
fn check_root<A: Agent>(action: &Action) -> OcfResult<()> {
    match A::needs_root(action) {
        Some(why) if !nix::unistd::geteuid().is_root() => Err(OcfError::perm(format!(
            "{} {} must run as root ({why})",
            A::NAME,
            action.name()
        ))),
        _ => Ok(()),
    }
}

/// For each agent's unit tests: with `vars` (a complete, valid parameter
/// set), `configure` must succeed and must read every parameter the
/// description declares — so the code and `metadata/<agent>.xml` cannot
/// drift apart. Returns what is wrong.
pub fn check_description_matches_code<A: Agent>(vars: &[(&str, &str)]) -> Result<(), String> {
    let meta =
        Metadata::parse(A::METADATA).map_err(|e| format!("meta-data does not parse: {e}"))?;
    if meta.name != A::NAME {
        return Err(format!(
            "meta-data names {}, agent is {}",
            meta.name,
            A::NAME
        ));
    }
    let configure = |vars: &[(&str, &str)]| -> Result<(String, Params), String> {
        let params = Params::from_vars(
            &meta,
            vars.iter()
                .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
        );
        params.check_declared().map_err(|e| e.reason)?;
        // Reading an undeclared parameter, or one the wrong way, panics.
        let cfg = catch_unwind(AssertUnwindSafe(|| A::configure(&params)))
            .map_err(|p| format!("configure panicked: {}", panic_text(&*p)))?;
        let cfg = cfg.map_err(|e| format!("configure rejected {vars:?}: {e}"))?;
        Ok((format!("{cfg:?}"), params))
    };
    let (cfg, params) = configure(vars)?;
    let read = params.names_read();
    let unread: Vec<_> = meta
        .params
        .iter()
        .map(|p| &p.name)
        .filter(|n| !read.contains(*n))
        .collect();
    if !unread.is_empty() {
        return Err(format!("declared but never read by configure: {unread:?}"));
    }
    // A default is the meta-data's: it parses, and setting it explicitly
    // configures exactly what leaving it unset does (so no default is
    // written a second time in the code).
    for p in &meta.params {
        let Some(default) = &p.default else { continue };
        if vars.iter().any(|(k, _)| *k == p.name) {
            continue;
        }
        let mut with: Vec<(&str, &str)> = vars.to_vec();
        with.push((&p.name, default));
        let (explicit, _) = configure(&with)?;
        if explicit != cfg {
            return Err(format!(
                "{}={default:?} set explicitly configures otherwise than left to its default: the code has a default of its own",
                p.name
            ));
        }
    }
    for a in ["start", "stop", "monitor", "meta-data", "validate-all"] {
        if meta.action_timeout(a).is_none() {
            return Err(format!("action {a} not advertised (with a timeout)"));
        }
    }
    if meta.has_reloadable() != meta.actions.iter().any(|a| a.name == "reload-agent") {
        return Err(
            "reload-agent must be advertised exactly when a parameter is reloadable".into(),
        );
    }
    Ok(())
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| p.downcast_ref::<&str>().copied())
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Toy;
    impl Agent for Toy {
        type Config = String;
        const NAME: &'static str = "toy";
        const METADATA: &'static str = r#"<resource-agent name="toy" version="1"><version>1.1</version>
            <longdesc lang="en">x</longdesc><shortdesc lang="en">x</shortdesc><parameters>
            <parameter name="mode" required="1"><longdesc lang="en">m</longdesc><shortdesc lang="en">m</shortdesc><content type="string"/></parameter>
            </parameters><actions><action name="start" timeout="20s"/><action name="stop" timeout="20s"/>
            <action name="monitor" timeout="20s" interval="10s"/><action name="meta-data" timeout="5s"/>
            <action name="validate-all" timeout="5s"/></actions></resource-agent>"#;
        fn configure(p: &Params) -> OcfResult<String> {
            let m = p.string("mode")?;
            if m == "bad" {
                return Err(OcfError::configured("parameter mode=bad is not allowed"));
            }
            Ok(m)
        }
        fn start(_: &Ctx, m: &String) -> OcfResult<()> {
            match m.as_str() {
                "not-running" => Err(OcfError::not_running("x")),
                "degraded" => Err(OcfError::degraded("x")),
                _ => Ok(()),
            }
        }
        fn stop(_: &Ctx, m: &String) -> OcfResult<()> {
            match m.as_str() {
                "not-running" => Err(OcfError::not_running("x")),
                _ => Ok(()),
            }
        }
        fn monitor(_: &Ctx, m: &String) -> OcfResult<()> {
            match m.as_str() {
                "unimpl" => Err(OcfError::unimplemented("x")),
                "stopped" => Err(OcfError::not_running("x")),
                "degraded" => Err(OcfError::degraded("x")),
                _ => Ok(()),
            }
        }
    }

    fn go(action: Option<&str>, env: &[(&str, &str)]) -> OcfCode {
        let mut args = vec!["toy".to_string()];
        args.extend(action.map(String::from));
        let env = env
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        dispatch::<Toy>(&args, &env)
    }

    #[test]
    fn protocol() {
        assert_eq!(go(None, &[]), OcfCode::ErrArgs);
        assert_eq!(go(Some("meta-data"), &[]), OcfCode::Success);
        assert_eq!(go(Some("promote"), &[]), OcfCode::Unimplemented);
        assert_eq!(
            go(Some("reload-agent"), &[("OCF_RESKEY_mode", "a")]),
            OcfCode::Unimplemented
        );
        // missing required / invalid: 6 everywhere but stop
        assert_eq!(go(Some("validate-all"), &[]), OcfCode::ErrConfigured);
        assert_eq!(
            go(Some("start"), &[("OCF_RESKEY_mode", "bad")]),
            OcfCode::ErrConfigured
        );
        assert_eq!(
            go(Some("monitor"), &[("OCF_RESKEY_mode", "bad")]),
            OcfCode::ErrConfigured
        );
        assert_eq!(
            go(Some("stop"), &[("OCF_RESKEY_mode", "bad")]),
            OcfCode::Success
        );
        // 7 only from monitor
        assert_eq!(
            go(Some("monitor"), &[("OCF_RESKEY_mode", "stopped")]),
            OcfCode::NotRunning
        );
        assert_eq!(
            go(Some("start"), &[("OCF_RESKEY_mode", "not-running")]),
            OcfCode::ErrGeneric
        );
        assert_eq!(
            go(Some("stop"), &[("OCF_RESKEY_mode", "not-running")]),
            OcfCode::Success
        );
        // 190 from monitor (probe or recurring) only; a start that did its
        // work succeeds
        for env in [
            &[("OCF_RESKEY_mode", "degraded")][..],
            &[
                ("OCF_RESKEY_mode", "degraded"),
                ("OCF_RESKEY_CRM_meta_interval", "10000"),
            ],
        ] {
            assert_eq!(go(Some("monitor"), env), OcfCode::Degraded);
        }
        assert_eq!(
            go(Some("start"), &[("OCF_RESKEY_mode", "degraded")]),
            OcfCode::Success
        );
        // a recurring monitor never answers 3; a probe may
        let rec = [
            ("OCF_RESKEY_mode", "unimpl"),
            ("OCF_RESKEY_CRM_meta_interval", "10000"),
        ];
        assert_eq!(go(Some("monitor"), &rec), OcfCode::ErrGeneric);
        assert_eq!(
            go(Some("monitor"), &[("OCF_RESKEY_mode", "unimpl")]),
            OcfCode::Unimplemented
        );
    }

    #[test]
    fn panics_become_generic_errors() {
        assert_eq!(guarded("toy", "p:", || panic!("boom")), OcfCode::ErrGeneric);
        assert_eq!(
            guarded("toy", "p:", || OcfCode::NotRunning),
            OcfCode::NotRunning
        );
    }

    #[test]
    fn description_check() {
        assert!(check_description_matches_code::<Toy>(&[("mode", "a")]).is_ok());
        let e = check_description_matches_code::<Toy>(&[("mode", "bad")]).unwrap_err();
        assert!(e.contains("rejected"), "{e}");
    }

    #[test]
    fn instance_files_are_the_agents_state_files() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "hanfs-nfs-grace-b",
            "hanfs-nfs-grace-a",
            "hanfs-nfs-grace.lock",
            "hanfs-nfs-grace.node",
            "hanfs-nfs-export-x",
            ".hanfs-tmp-123",
        ] {
            std::fs::write(d.path().join(f), "{}").unwrap();
        }
        let names: Vec<String> = instance_files(d.path(), "nfs-grace")
            .into_iter()
            .map(|f| f.instance)
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            state_file(d.path(), "nfs-grace", "svc/1 x"),
            d.path().join("hanfs-nfs-grace-svc_1_x")
        );
        assert!(instance_files(&d.path().join("missing"), "nfs-grace").is_empty());
    }

    #[test]
    fn runtime_state_round_trip_and_damage() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("run/hanfs-x-a");
        assert_eq!(load_state::<Vec<u32>>(&p).unwrap(), None);
        save_state(&p, &vec![1u32, 2]).unwrap();
        assert_eq!(load_state::<Vec<u32>>(&p).unwrap(), Some(vec![1, 2]));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        save_state_readable(&p, &vec![3u32]).unwrap();
        assert_eq!(load_state::<Vec<u32>>(&p).unwrap(), Some(vec![3]));
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        for damage in ["", "[1,", "garbage"] {
            std::fs::write(&p, damage).unwrap();
            let e = load_state::<Vec<u32>>(&p).unwrap_err();
            assert_eq!(e.code, OcfCode::ErrGeneric, "{damage:?}");
            assert!(e.reason.contains("is damaged"), "{e}");
        }
        std::fs::remove_file(&p).unwrap();
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(
            load_state::<Vec<u32>>(&p).unwrap_err().code,
            OcfCode::ErrGeneric
        );
    }

    // Property tests: whatever bytes a state file holds, loading it gives
    // a state or an error (1), never a panic; what is saved loads back.
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_state_file_loads_or_is_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("hanfs-x-a");
            std::fs::write(&p, &bytes).unwrap();
            if let Err(e) = load_state::<serde_json::Value>(&p) {
                prop_assert_eq!(e.code, OcfCode::ErrGeneric);
                prop_assert!(e.reason.contains("is damaged"), "{}", e);
            }
            if let Err(e) = load_state::<Vec<u32>>(&p) {
                prop_assert_eq!(e.code, OcfCode::ErrGeneric);
            }
        }

        #[test]
        fn states_round_trip(v in proptest::collection::btree_map(any::<String>(), any::<(u64, Option<i32>)>(), 0..6)) {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("hanfs-x-a");
            save_state(&p, &v).unwrap();
            prop_assert_eq!(load_state(&p).unwrap(), Some(v));
        }
    }
}
