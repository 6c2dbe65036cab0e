//! hanfs-import-state on the host: its refusals (each naming what is
//! wrong, nothing written) and the statd half, which copies statd's record
//! files as they are. Its NFSv4 half needs a running kernel nfsd with NFSv4
//! clients: `uml_imported_clients_reclaim` in tests/it/nfs_grace.rs runs the
//! whole thing in a UML guest, and the lab's `migrate` scenario in a
//! cluster.
use crate::common;

use std::path::Path;
use std::process::{Command, Output};

fn import(args: &[&str]) -> Output {
    Command::new(common::bin("hanfs-import-state"))
        .args(args)
        .output()
        .expect("runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn refused(o: Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains(needle), "expected {needle:?} in: {t}");
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// One line of statd's sm/ format: address, prog, vers, proc, cookie,
// mon_name, my_name.
const RECORD: &str =
    "0a4d0015 000186b5 00000004 00000010 2a3c6e5f000000000000000000000000 client1 nodea\n";

#[test]
fn refusals_name_the_problem_and_write_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = |s: &str| d.path().join(s).display().to_string();
    std::fs::create_dir_all(p("statd/sm")).unwrap();
    std::fs::write(p("statd/sm/client1"), RECORD).unwrap();
    for dir in ["holding", "recovery", "nfsd"] {
        std::fs::create_dir(p(dir)).unwrap();
    }

    refused(import(&[]), "give --holding-dir, --recovery-dir or both");
    refused(
        import(&["--holding-dir", "relative/dir"]),
        "--holding-dir relative/dir: not an existing absolute directory",
    );
    refused(import(&["--recovery-dir", &p("missing")]), "--recovery-dir");
    refused(
        import(&["--holding-dir", &p("holding"), "--statd-dir", &p("nfsd")]),
        "has no sm/ subdirectory",
    );
    // nfsd not running (no threads): the NFSv4 half is read first, so the
    // statd half writes nothing either
    refused(
        import(&[
            "--holding-dir",
            &p("holding"),
            "--statd-dir",
            &p("statd"),
            "--recovery-dir",
            &p("recovery"),
            "--nfsd-dir",
            &p("nfsd"),
        ]),
        "nfsd is not running here",
    );
    std::fs::write(p("nfsd/threads"), "8\n").unwrap();
    refused(
        import(&["--recovery-dir", &p("recovery"), "--nfsd-dir", &p("nfsd")]),
        "does not list NFSv4 clients",
    );
    assert!(entries(Path::new(&p("holding"))).is_empty());
    assert!(entries(Path::new(&p("recovery"))).is_empty());
}

#[test]
fn statd_records_are_copied_once() {
    let d = tempfile::tempdir().unwrap();
    let sm = d.path().join("statd/sm");
    let holding = d.path().join("holding");
    std::fs::create_dir_all(&sm).unwrap();
    std::fs::create_dir(&holding).unwrap();
    std::fs::write(sm.join("client1"), RECORD).unwrap();
    let statd = d.path().join("statd").display().to_string();
    let h = holding.display().to_string();

    let o = import(&["--holding-dir", &h, "--statd-dir", &statd]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("NFSv3: 1 client(s) monitored in"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("1 added or updated"), "{}", text(&o));
    assert_eq!(entries(&holding), vec!["client1"]);
    assert_eq!(
        std::fs::read_to_string(holding.join("client1")).unwrap(),
        RECORD
    );
    // again: nothing new
    let o = import(&["--holding-dir", &h, "--statd-dir", &statd]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("0 added or updated"), "{}", text(&o));
}
