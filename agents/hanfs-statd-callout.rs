//! hanfs-statd-callout: rpc.statd's HA callout for statd-holding.
//!
//! `rpc.statd -H /usr/libexec/hanfs/hanfs-statd-callout` (or
//! `[statd] ha-callout=` in /etc/nfs.conf). statd runs it as
//! `add-client MON_NAME MY_NAME`, `del-client MON_NAME MY_NAME` or
//! `sm-notify MON_NAME ADDR STATE`; it records added and removed clients
//! in the holding directory of every statd-holding instance active on this
//! node (see `hanfs::sys::statd::callout`). It always exits 0, within a
//! few seconds, whatever happens.

use hanfs::sys::statd::callout::{self, Event};
use hanfs::sys::statd::registry::Registry;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args[0] == "--help" || args[0] == "-h" {
        eprintln!(
            "usage: hanfs-statd-callout add-client|del-client MON_NAME MY_NAME\n\
             rpc.statd's HA callout for ocf:hanfs:statd-holding: records NFSv3 lock-holding\n\
             clients in the holding directories of the instances active on this node."
        );
        return ExitCode::SUCCESS;
    }
    hanfs::ocf::log::init("hanfs-statd-callout", &args[0], true);
    let event = Event::parse(&args);
    if let Event::Other(what) = &event {
        log::debug!("{what}: nothing to do");
        return ExitCode::SUCCESS;
    }
    // Failures are logged (at error level: syslog, and stderr, which
    // rpc.statd run in the foreground passes on) and remembered for the
    // monitor, by `handle`.
    let began = std::time::Instant::now();
    let done = callout::handle(&event, &Registry::default(), callout::BUDGET);
    // statd waits for us before it answers SM_MON, and lockd for statd
    // before it grants the lock: the time is logged, for the reclaim storms.
    log::info!(
        "{} instance(s) done in {} ms",
        done.len(),
        began.elapsed().as_millis()
    );
    ExitCode::SUCCESS
}
