//! hanfs-import-state: carry the lock state of an NFS server that runs now
//! into the state directories of the hanfs agents that will run it next.
//!
//! When a service moves from another HA setup (the heartbeat nfsserver
//! agent, a hand-made one) to hanfs, its clients must be able to reclaim
//! their locks once hanfs starts it:
//!
//! - `--holding-dir`: every NFSv3 client statd monitors here (its `sm/`
//!   records) is added to statd-holding's holding directory, so that
//!   statd-holding tells them to reclaim;
//! - `--recovery-dir`: every NFSv4 client the running nfsd knows
//!   (`/proc/fs/nfsd/clients/*/info`, confirmed ids) is added to the
//!   client records nfs-grace gives nfsdcld, so that their reclaims are
//!   accepted during the grace period.
//!
//! Run it where the service runs, while its nfsd still runs, after clients
//! can no longer reach it (its address is down), so the lists are final.
//! It only adds: running it twice is harmless.

use clap::{Arg, Command};
use hanfs::sys::nfsd::records::{ClientDb, Record};
use hanfs::sys::nfsd::{server, ProcRoots};
use hanfs::sys::statd::holding;
use hanfs::sys::statd::statedir::{NfsConf, StatdDir};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn cli() -> Command {
    Command::new("hanfs-import-state")
        .about(
            "Add the NFSv3 clients statd monitors and the NFSv4 clients nfsd knows on this \
             node to the holding_dir of ocf:hanfs:statd-holding and the recovery_dir of \
             ocf:hanfs:nfs-grace, so they can reclaim their locks when hanfs takes the \
             service over (see pcs-examples/migrate-from-heartbeat.sh).",
        )
        .arg(
            Arg::new("holding-dir")
                .long("holding-dir")
                .value_name("DIR")
                .help("statd-holding's holding_dir: gets statd's monitored clients"),
        )
        .arg(
            Arg::new("recovery-dir")
                .long("recovery-dir")
                .value_name("DIR")
                .help("nfs-grace's recovery_dir: gets the running nfsd's NFSv4 clients"),
        )
        .arg(
            Arg::new("statd-dir")
                .long("statd-dir")
                .value_name("DIR")
                .help("statd's state directory (default: nfs.conf, else the distribution's)"),
        )
        .arg(
            Arg::new("nfsd-dir")
                .long("nfsd-dir")
                .value_name("DIR")
                .default_value("/proc/fs/nfsd")
                .help("the nfsd control file system"),
        )
        .version(env!("CARGO_PKG_VERSION"))
}

/// The agents' path rule (`ocf::abs_path`: the same directories as their
/// holding_dir and recovery_dir), and the directory exists.
fn existing_dir(opt: Option<&String>, what: &str) -> Result<Option<PathBuf>, String> {
    let Some(p) = opt else { return Ok(None) };
    match hanfs::ocf::abs_path(p) {
        Ok(d) if d.is_dir() => Ok(Some(d)),
        _ => Err(format!("--{what} {p}: not an existing absolute directory")),
    }
}

/// statd's monitor list into the holding directory.
fn import_statd(holding_dir: &Path, statd: &StatdDir) -> Result<String, String> {
    let sm = statd.sm();
    let r = holding::reconcile(&sm, holding_dir, statd.owner().ok(), None, || (), |_| ());
    if let Some(why) = r.unrecorded_reason(holding_dir) {
        return Err(format!("copying {}: {why}", sm.display()));
    }
    Ok(format!(
        "NFSv3: {} client(s) monitored in {}, {} added or updated in {}",
        r.local,
        sm.display(),
        r.written.len(),
        holding_dir.display()
    ))
}

/// The running nfsd's confirmed NFSv4 clients, as nfsdcld records them.
fn nfsd_clients(nfsd_dir: &Path) -> Result<Vec<Record>, String> {
    let roots = ProcRoots {
        nfsd: nfsd_dir.to_path_buf(),
        ..Default::default()
    };
    if !server::running(&roots) {
        return Err(format!(
            "nfsd is not running here ({} shows no threads): its NFSv4 clients can only be \
             read while it runs",
            nfsd_dir.display()
        ));
    }
    if !nfsd_dir.join("clients").is_dir() {
        return Err(format!(
            "{}/clients is missing: this kernel does not list NFSv4 clients (Linux 5.3 or later does)",
            nfsd_dir.display()
        ));
    }
    let mut records = Vec::new();
    let mut unreadable = Vec::new();
    for c in roots.clients().into_iter().filter(|c| c.confirmed()) {
        match c.name_bytes() {
            Some(id) if !id.is_empty() => records.push(Record {
                id,
                princhash: None,
            }),
            _ => unreadable.push(format!("{} (client {})", c.name, c.id)),
        }
    }
    if !unreadable.is_empty() {
        return Err(format!(
            "cannot read the name of NFSv4 client(s) {}: nothing imported",
            unreadable.join(", ")
        ));
    }
    Ok(records)
}

/// Those clients into the recovery directory.
fn import_nfsd(recovery_dir: &Path, records: &[Record]) -> Result<String, String> {
    let added = ClientDb::open(recovery_dir)?.add_reclaimable(records)?;
    Ok(format!(
        "NFSv4: {} confirmed client(s) of this nfsd, {added} new in {}",
        records.len(),
        recovery_dir.display()
    ))
}

fn run() -> Result<Vec<String>, String> {
    let m = cli().get_matches();
    let holding_dir = existing_dir(m.get_one::<String>("holding-dir"), "holding-dir")?;
    let recovery_dir = existing_dir(m.get_one::<String>("recovery-dir"), "recovery-dir")?;
    if holding_dir.is_none() && recovery_dir.is_none() {
        return Err("nothing to do: give --holding-dir, --recovery-dir or both".into());
    }
    let statd_dir = m.get_one::<String>("statd-dir").map(PathBuf::from);
    let nfsd_dir = PathBuf::from(m.get_one::<String>("nfsd-dir").expect("has a default"));
    // find and read both sides before writing anything (a stopped nfsd or
    // a missing sm/ changes nothing)
    let v4 = match recovery_dir {
        Some(ref r) => Some((r, nfsd_clients(&nfsd_dir)?)),
        None => None,
    };
    let v3 = match holding_dir {
        Some(h) => Some((h, StatdDir::detect(statd_dir.as_deref(), &NfsConf::load())?)),
        None => None,
    };
    let mut out = Vec::new();
    if let Some((h, statd)) = v3 {
        out.push(import_statd(&h, &statd)?);
    }
    if let Some((r, records)) = v4 {
        out.push(import_nfsd(r, &records)?);
    }
    Ok(out)
}

fn main() -> ExitCode {
    match run() {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hanfs-import-state: {e}");
            ExitCode::FAILURE
        }
    }
}
