//! nfs-export, run for real: the real `/usr/sbin/exportfs` in a sandbox
//! with a private /var/lib/nfs (so a private etab) and /run. The host kernel
//! has no nfsd, so exportfs maintains etab only, which is what the agent
//! reads; where a test needs nfsd's control files it says so.
use crate::common::{self, AgentCmd, Sandbox};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const AGENT: &str = "nfs-export";

/// A directory under the sandbox's scratch space (visible inside it).
fn mkdir(sb: &Sandbox, rel: &str) -> PathBuf {
    let p = sb.path(rel);
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn export<'a>(
    sb: &'a Sandbox,
    instance: &str,
    dir: &std::path::Path,
    clients: &str,
) -> AgentCmd<'a> {
    sb.agent(AGENT)
        .env("OCF_RESOURCE_INSTANCE", instance)
        .param("directory", dir.to_str().unwrap())
        .param("clientspec", clients)
}

/// A directory as etab writes it (a space is `\040`; the tests' paths
/// have no other special characters).
fn etab_dir(dir: &std::path::Path) -> String {
    dir.display().to_string().replace(' ', "\\040")
}

/// The clients a directory is exported to, from etab.
fn etab_clients(sb: &Sandbox, dir: &std::path::Path) -> Vec<String> {
    let etab = sb.sh_ok("cat /var/lib/nfs/etab");
    let prefix = format!("{}\t", etab_dir(dir));
    etab.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| rest.split('(').next().unwrap().to_string())
        .collect()
}

fn etab_line(sb: &Sandbox, dir: &std::path::Path, client: &str) -> Option<String> {
    let etab = sb.sh_ok("cat /var/lib/nfs/etab");
    let prefix = format!("{}\t{client}(", etab_dir(dir));
    etab.lines()
        .find(|l| l.starts_with(&prefix))
        .map(str::to_string)
}

#[test]
fn start_monitor_stop_with_many_kinds_of_client() {
    let sb = sandbox!();
    let real = mkdir(&sb, "real dir/data");
    let link = sb.path("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let real = std::fs::canonicalize(&real).unwrap();
    let clients =
        "192.0.2.5/255.255.255.0 [2001:db8::]/32 [2001:db8:1::7] *.example.com @trusted *";
    let res = || {
        export(&sb, "exp1", &link, clients)
            .param("options", "rw,no_root_squash")
            .param("fsid", "42")
    };

    res().run("validate-all").expect(0);
    res().run("monitor").expect(7);
    res().run("start").expect(0);
    // Exported under the real path, each client in the form etab records.
    let mut got = etab_clients(&sb, &real);
    got.sort();
    let mut want = vec![
        "192.0.2.0/24",
        "2001:db8::/32",
        "2001:db8:1::7",
        "*.example.com",
        "@trusted",
        "*",
    ];
    want.sort();
    assert_eq!(got, want);
    let line = etab_line(&sb, &real, "2001:db8::/32").unwrap();
    assert!(
        line.contains(",fsid=42,") && line.contains("(rw,") && line.contains("no_root_squash"),
        "{line}"
    );
    assert!(
        etab_clients(&sb, &link).is_empty(),
        "the symbolic link itself is not exported"
    );

    res().run("monitor").expect(0);
    res().interval_ms(10_000).run("monitor").expect(0);
    res().env("OCF_CHECK_LEVEL", "10").run("monitor").expect(0);
    res().run("start").expect(0); // again: idempotent
    res().run("monitor").expect(0);

    res().run("stop").expect(0);
    assert!(etab_clients(&sb, &real).is_empty());
    res().run("monitor").expect(7);
    res().run("stop").expect(0);
}

#[test]
fn stop_of_a_never_started_resource_succeeds() {
    let sb = sandbox!();
    let d = mkdir(&sb, "d");
    let res = || export(&sb, "never", &d, "192.0.2.0/24");
    res().run("stop").expect(0);
    res().run("monitor").expect(7);
    // Even with storage that is not there.
    export(&sb, "never", std::path::Path::new("/nonexistent/dir"), "*")
        .run("stop")
        .expect(0);
}

#[test]
fn host_names_are_matched_as_exportfs_records_them() {
    let sb = sandbox!();
    let hosts = sb.path("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n192.0.2.10 client1.example.test client1\n2001:db8::20 Client6.Example.Test client6\n").unwrap();
    sb.sh_ok(&format!("mount --bind {} /etc/hosts", hosts.display()));
    let d = std::fs::canonicalize(mkdir(&sb, "d")).unwrap();
    let res = || export(&sb, "byname", &d, "client1 client6 192.0.2.0/24").param("fsid", "3");
    res().run("start").expect(0);
    let mut got = etab_clients(&sb, &d);
    got.sort();
    assert_eq!(
        got,
        [
            "192.0.2.0/24",
            "Client6.Example.Test",
            "client1.example.test"
        ]
    );
    res().run("monitor").expect(0);
    res().run("stop").expect(0);
    assert!(etab_clients(&sb, &d).is_empty());

    // exportfs skips a name that does not resolve and still exits 0; the
    // agent resolves names itself first and fails, naming the client.
    let bad = || export(&sb, "badname", &d, "192.0.2.0/24 nosuchhost").param("fsid", "4");
    let r = bad().run("start");
    r.expect_reason(1, "nosuchhost");
    assert!(!etab_clients(&sb, &d).contains(&"nosuchhost".to_string()));
    bad().run("stop").expect(0);
    assert!(etab_clients(&sb, &d).is_empty());
}

#[test]
fn nfsv4_pseudo_root_and_an_export_below_it() {
    let sb = sandbox!();
    let root = std::fs::canonicalize(mkdir(&sb, "v4root")).unwrap();
    let data = mkdir(&sb, "v4root/data");
    let r = || {
        export(&sb, "root", &root, "192.0.2.0/24")
            .param("fsid", "root")
            .param("options", "ro,crossmnt")
    };
    let d = || {
        export(&sb, "data", &data, "192.0.2.0/24")
            .param("fsid", "1")
            .param("options", "rw")
    };
    r().run("start").expect(0);
    d().run("start").expect(0);
    assert!(etab_line(&sb, &root, "192.0.2.0/24")
        .unwrap()
        .contains(",fsid=0,"));
    assert!(etab_line(&sb, &data, "192.0.2.0/24")
        .unwrap()
        .contains(",fsid=1,"));
    r().run("monitor").expect(0);
    d().run("monitor").expect(0);
    // fsid=0 spelled as a number is the same export.
    export(&sb, "root", &root, "192.0.2.0/24")
        .param("fsid", "0")
        .param("options", "ro,crossmnt")
        .run("monitor")
        .expect(0);
    d().run("stop").expect(0);
    r().run("monitor").expect(0);
    r().run("stop").expect(0);
}

#[test]
fn two_resources_export_one_directory_to_different_clients() {
    let sb = sandbox!();
    let dir = std::fs::canonicalize(mkdir(&sb, "shared")).unwrap();
    let a = || {
        export(&sb, "expA", &dir, "192.0.2.0/24")
            .param("fsid", "10")
            .param("options", "rw")
    };
    let b = || {
        export(&sb, "expB", &dir, "198.51.100.0/24 [2001:db8::]/32")
            .param("fsid", "10")
            .param("options", "ro")
    };
    a().run("start").expect(0);
    b().run("start").expect(0);
    a().run("monitor").expect(0);
    b().run("monitor").expect(0);
    assert_eq!(etab_clients(&sb, &dir).len(), 3);

    // A third resource claiming a client that B owns is a configuration error.
    export(&sb, "expC", &dir, "198.51.100.0/24")
        .param("fsid", "10")
        .run("start")
        .expect_reason(6, "already exported to 198.51.100.0/24 by resource expB");

    a().run("stop").expect(0);
    a().run("monitor").expect(7);
    b().run("monitor").expect(0);
    let mut left = etab_clients(&sb, &dir);
    left.sort();
    assert_eq!(left, ["198.51.100.0/24", "2001:db8::/32"]);
    assert!(etab_line(&sb, &dir, "198.51.100.0/24")
        .unwrap()
        .contains("(ro,"));
    b().run("stop").expect(0);
    assert!(etab_clients(&sb, &dir).is_empty());
}

#[test]
fn an_fsid_used_by_another_directory_is_refused() {
    let sb = sandbox!();
    let one = mkdir(&sb, "one");
    let two = mkdir(&sb, "two");
    export(&sb, "one", &one, "*")
        .param("fsid", "0x5")
        .run("start")
        .expect(0);
    export(&sb, "two", &two, "*")
        .param("fsid", "5")
        .run("start")
        .expect_reason(6, "fsid=5 is already used by the export of");
    assert!(etab_clients(&sb, &std::fs::canonicalize(&two).unwrap()).is_empty());
}

#[test]
fn probe_after_a_reboot_reports_stopped_even_with_etab_on_disk() {
    let sb = sandbox!();
    let dir = std::fs::canonicalize(mkdir(&sb, "d")).unwrap();
    let res = || export(&sb, "rb", &dir, "192.0.2.0/24 *").param("fsid", "8");
    res().run("start").expect(0);
    sb.reboot_runtime_state();
    // etab survives (it is on disk), the state in /run does not.
    assert_eq!(etab_clients(&sb, &dir).len(), 2);
    res().run("monitor").expect(7);
    // Pacemaker then starts it (here or elsewhere); here it must work.
    res().run("start").expect(0);
    res().run("monitor").expect(0);
    res().run("stop").expect(0);
    assert!(etab_clients(&sb, &dir).is_empty());
}

#[test]
fn stop_after_a_reboot_removes_the_leftover_exports() {
    let sb = sandbox!();
    let dir = std::fs::canonicalize(mkdir(&sb, "d")).unwrap();
    let res = || export(&sb, "rb2", &dir, "192.0.2.0/24 [2001:db8::1]").param("fsid", "9");
    res().run("start").expect(0);
    sb.reboot_runtime_state();
    res().run("stop").expect(0);
    assert!(etab_clients(&sb, &dir).is_empty());
}

#[test]
fn an_export_changed_behind_our_back_fails_the_monitor() {
    let sb = sandbox!();
    let dir = std::fs::canonicalize(mkdir(&sb, "d")).unwrap();
    let res = || export(&sb, "gone", &dir, "192.0.2.0/24 [2001:db8::]/32").param("fsid", "11");
    res().run("start").expect(0);
    // A good monitor records the table version it checked (later monitors
    // skip reading an unchanged table); a change must still be seen.
    res().run("monitor").expect(0);
    let state = sb.sh_ok("cat /run/resource-agents/hanfs-nfs-export-gone");
    let parsed: serde_json::Value = serde_json::from_str(&state).expect("state is JSON");
    assert!(parsed["checked"].is_object(), "{state}");
    sb.sh_ok(&format!("exportfs -u '[2001:db8::]/32':{}", dir.display()));
    res()
        .interval_ms(10_000)
        .run("monitor")
        .expect_reason(1, "is not exported to 2001:db8::/32");
    res().run("monitor").expect(1); // a probe too: we believed it running
    res().run("start").expect(0);
    res().run("monitor").expect(0);
    // Re-exported with another fsid: clients would get stale handles.
    sb.sh_ok(&format!(
        "exportfs -o fsid=99 192.0.2.0/24:{}",
        dir.display()
    ));
    res()
        .run("monitor")
        .expect_reason(1, "with fsid=99, not fsid=11");
    res().run("stop").expect(0);
    assert!(etab_clients(&sb, &dir).is_empty());
}

#[test]
fn a_missing_directory_is_2_at_start_but_passes_validate() {
    let sb = sandbox!();
    let gone = sb.path("not-mounted-here/data");
    let res = || export(&sb, "miss", &gone, "*").param("fsid", "1");
    // The shared disk may be mounted on another node: validate-all passes.
    res().run("validate-all").expect(0);
    res()
        .run("start")
        .expect_reason(2, "does not exist on this node");
    res().run("monitor").expect(7);
    res().run("stop").expect(0);
    let file = sb.path("plain-file");
    std::fs::write(&file, "x").unwrap();
    export(&sb, "file", &file, "*")
        .run("start")
        .expect_reason(2, "is not a directory");
}

#[test]
fn options_exportfs_rejects_are_a_configuration_error() {
    let sb = sandbox!();
    let dir = mkdir(&sb, "d");
    export(&sb, "opts", &dir, "*")
        .param("options", "rw,bogus_option")
        .run("start")
        .expect_reason(6, "bogus_option");
    export(&sb, "opts", &dir, "*").run("stop").expect(0);
    assert!(etab_clients(&sb, &std::fs::canonicalize(&dir).unwrap()).is_empty());
}

#[test]
fn depth_10_notices_a_file_system_unmounted_under_the_export() {
    let sb = sandbox!();
    let dir = std::fs::canonicalize(mkdir(&sb, "mnt")).unwrap();
    sb.sh_ok(&format!("mount -t tmpfs shared {}", dir.display()));
    let res = || {
        export(&sb, "um", &dir, "*")
            .param("fsid", "12")
            .env("OCF_CHECK_LEVEL", "10")
    };
    res().run("start").expect(0);
    res().run("monitor").expect(0);
    sb.sh_ok(&format!("umount {}", dir.display()));
    res()
        .interval_ms(30_000)
        .run("monitor")
        .expect_reason(1, "no longer on the file system it was exported from");
    res().run("stop").expect(0);
}

/// Hung storage, for real: a FUSE file system whose server never answers
/// (it holds /dev/fuse open and reads nothing), mounted over the exported
/// directory. Every stat of it blocks in the kernel until the server goes.
#[test]
fn depth_10_on_hung_storage_fails_within_the_timeout() {
    let sb = sandbox!();
    if !std::path::Path::new("/dev/fuse").exists() {
        common::skip_or_fail("no /dev/fuse");
        return;
    }
    let dir = std::fs::canonicalize(mkdir(&sb, "hang")).unwrap();
    let res = || export(&sb, "hung", &dir, "192.0.2.0/24").param("fsid", "13");
    res().run("start").expect(0);
    let pidfile = sb.path("fuse.pid");
    sb.sh_ok(&format!(
        "exec 3<>/dev/fuse; mount -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0 hanfs-hang {d}; \
         (exec sleep 600 </dev/null >/dev/null 2>&1) & echo $! > {p}",
        d = dir.display(),
        p = pidfile.display()
    ));
    /// Ends the FUSE "server" (releasing every blocked stat) and the mount,
    /// however the test ends.
    struct Release<'a>(&'a Sandbox, String, PathBuf);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.0
                .sh(&format!("kill {}; umount -l {}", self.1, self.2.display()));
        }
    }
    let _release = Release(
        &sb,
        std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .to_string(),
        dir.clone(),
    );

    // Depth 0 never touches the storage.
    res().interval_ms(10_000).run("monitor").expect(0);
    // Depth 10 answers 1 with a reason instead of hanging.
    let r = res()
        .interval_ms(30_000)
        .timeout_ms(3_000)
        .env("OCF_CHECK_LEVEL", "10")
        .run("monitor");
    r.expect_reason(1, "hung storage");
    assert!(
        r.elapsed < Duration::from_secs(60),
        "the monitor hung for {:?}",
        r.elapsed
    );
    // Stop does not need the storage either (exportfs -u does not stat).
    res().timeout_ms(10_000).run("stop").expect(0);
    assert!(etab_clients(&sb, &dir).is_empty());
}

/// nfsd's control files, faked: the host kernel has no nfsd, so a scratch
/// directory is bind-mounted over /proc/fs/nfsd inside the sandbox, with
/// `threads` (so nfsd counts as running) and `nfsv4leasetime`. What the
/// agent writes to `unlock_filesystem` lands in a plain file.
fn fake_nfsd(sb: &Sandbox, lease: u32) -> PathBuf {
    let d = mkdir(sb, "fake-nfsd");
    std::fs::write(d.join("threads"), "8\n").unwrap();
    std::fs::write(d.join("nfsv4leasetime"), format!("{lease}\n")).unwrap();
    sb.sh_ok(&format!("mount --bind {} /proc/fs/nfsd", d.display()));
    d.join("unlock_filesystem")
}

#[test]
fn stop_releases_locks_and_waits_for_the_lease() {
    let sb = sandbox!();
    let unlock = fake_nfsd(&sb, 1);
    let dir = std::fs::canonicalize(mkdir(&sb, "d")).unwrap();
    let res = || {
        export(&sb, "lk", &dir, "192.0.2.0/24")
            .param("fsid", "14")
            .param("wait_for_leasetime_on_stop", "true")
    };
    res().run("start").expect(0);
    let r = res().run("stop");
    r.expect(0);
    assert_eq!(
        std::fs::read_to_string(&unlock).unwrap(),
        dir.to_str().unwrap()
    );
    // lease 1 s + 2 s: a lower bound only (sleeps are never shorter).
    assert!(
        r.elapsed >= Duration::from_secs(3),
        "stop did not wait: {:?}",
        r.elapsed
    );

    // A stop timeout too short for the lease wait fails at once, saying
    // so, and leaves the export alone.
    std::fs::write(sb.path("fake-nfsd/nfsv4leasetime"), "90\n").unwrap();
    res().run("start").expect(0);
    res()
        .timeout_ms(20_000)
        .run("stop")
        .expect_reason(1, "raise the stop timeout");
    res().run("monitor").expect(0);
    export(&sb, "lk", &dir, "192.0.2.0/24")
        .param("fsid", "14")
        .param("unlock_on_stop", "false")
        .run("stop")
        .expect(0);
}

#[test]
fn locks_are_kept_while_another_resource_exports_the_directory() {
    let sb = sandbox!();
    let unlock = fake_nfsd(&sb, 1);
    let dir = std::fs::canonicalize(mkdir(&sb, "d")).unwrap();
    let a = || export(&sb, "la", &dir, "192.0.2.0/24").param("fsid", "15");
    let b = || export(&sb, "lb", &dir, "198.51.100.0/24").param("fsid", "15");
    a().run("start").expect(0);
    b().run("start").expect(0);
    a().run("stop").expect(0);
    assert!(
        !unlock.exists(),
        "unlocked while lb still exports the directory"
    );
    b().run("stop").expect(0);
    assert_eq!(
        std::fs::read_to_string(&unlock).unwrap(),
        dir.to_str().unwrap()
    );
}

#[test]
fn monitor_stays_correct_with_ten_thousand_exports() {
    let sb = sandbox!();
    let dir = std::fs::canonicalize(mkdir(&sb, "big/mine")).unwrap();
    // Other exports written the way exportfs writes them.
    let mut etab = String::new();
    for i in 0..10_000 {
        etab.push_str(&format!(
            "/srv/other/{i}\t192.0.2.{}(rw,sync,wdelay,hide,nocrossmnt,secure,root_squash,no_all_squash,no_subtree_check,secure_locks,acl,no_pnfs,fsid={},anonuid=65534,anongid=65534,sec=sys,rw,root_squash,no_all_squash)\n",
            i % 250,
            i + 1000
        ));
    }
    let f = sb.path("etab-big");
    std::fs::write(&f, etab).unwrap();
    sb.sh_ok(&format!("cp {} /var/lib/nfs/etab", f.display()));
    let res = || export(&sb, "big", &dir, "198.51.100.0/24").param("fsid", "77");
    res().run("start").expect(0);
    let r = res().interval_ms(10_000).run("monitor");
    r.expect(0);
    eprintln!(
        "monitor with 10001 exports took {:?} (wall, including nsenter)",
        r.elapsed
    );
    res().run("stop").expect(0);
    assert_eq!(sb.sh_ok("wc -l < /var/lib/nfs/etab").trim(), "10000");
}

#[test]
fn crm_resource_validate_gives_code_and_reason() {
    let sb = sandbox!();
    if common::which("crm_resource").is_none() {
        common::skip_or_fail("crm_resource not installed");
        return;
    }
    sb.install_agents();
    let dir = mkdir(&sb, "d");
    let d = dir.to_str().unwrap();
    sb.crm_validate(
        AGENT,
        &[
            ("directory", d),
            ("clientspec", "192.0.2.0/24"),
            ("fsid", "1"),
        ],
    )
    .expect_ok();
    for (opts, reason) in [
        (vec![("directory", d)], "parameter clientspec is required"),
        (
            vec![("directory", d), ("clientspec", "*"), ("fsid", "12abc")],
            "parameter fsid=\"12abc\": not a file-system id",
        ),
        (
            vec![("directory", d), ("clientspec", "192.0.2.0/24 host(rw)")],
            "parameter clientspec=\"192.0.2.0/24 host(rw)\": \"host(rw)\"",
        ),
        (
            vec![("directory", d), ("clientspec", "10.0.0.0/33")],
            "prefix length /33 is over 32",
        ),
        (
            vec![
                ("directory", d),
                ("clientspec", "*"),
                ("options", "rw,fsid=1"),
                ("fsid", "2"),
            ],
            "parameter fsid=\"2\": conflicts with fsid=1 in options",
        ),
        (
            vec![("directory", "relative/dir"), ("clientspec", "*")],
            "not an absolute path",
        ),
    ] {
        sb.crm_validate(AGENT, &opts).expect_refused(6, reason);
    }
}

#[test]
fn ocf_tester_passes() {
    let sb = sandbox!();
    if common::which("ocf-tester").is_none() {
        common::skip_or_fail("ocf-tester not installed");
        return;
    }
    sb.install_agents();
    let dir = mkdir(&sb, "tester");
    sb.expect_ocf_tester_passes(
        AGENT,
        &format!(
            "-o directory={} -o 'clientspec=192.0.2.0/24 [2001:db8::]/32' -o fsid=21 -o options=rw",
            dir.display()
        ),
    );
}

#[test]
fn meta_data_is_valid_for_both_schemas() {
    let r = common::host_agent(AGENT).run("meta-data");
    r.expect(0);
    assert!(r.stdout.contains("<version>1.0</version>") && r.stdout.contains("depth=\"10\""));
    if common::which("xmllint").is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let f10 = t.path().join("m10.xml");
    std::fs::write(&f10, &r.stdout).unwrap();
    let dtd = "/usr/share/resource-agents/ra-api-1.dtd";
    if std::path::Path::new(dtd).exists() {
        let o = std::process::Command::new("xmllint")
            .args(["--noout", "--dtdvalid", dtd])
            .arg(&f10)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "DTD: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let r11 = common::host_agent(AGENT)
        .env("OCF_RA_VERSION_MAJOR", "1")
        .env("OCF_RA_VERSION_MINOR", "1")
        .run("meta-data");
    r11.expect(0);
    let f11 = t.path().join("m11.xml");
    std::fs::write(&f11, &r11.stdout).unwrap();
    let rng = "/work/shared/reference/ra-api-1.1.rng";
    if std::path::Path::new(rng).exists() {
        let o = std::process::Command::new("xmllint")
            .args(["--noout", "--relaxng", rng])
            .arg(&f11)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "RNG: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn monitor_starts_no_process() {
    // The monitor reads etab in-process: run it under strace when
    // available and count the processes it creates.
    let sb = sandbox!();
    if common::which("strace").is_none() {
        eprintln!("strace not installed: process count not checked");
        return;
    }
    let dir = mkdir(&sb, "d");
    let res = || export(&sb, "nofork", &dir, "192.0.2.0/24").param("fsid", "31");
    res().run("start").expect(0);
    let t = Instant::now();
    let mut env = String::new();
    for (k, v) in res().interval_ms(10_000).params_env() {
        env.push_str(&format!("{k}='{v}' "));
    }
    let out = sb.sh(&format!(
        "env {env} strace -f -qq -e trace=fork,vfork,clone,clone3,execve -o /dev/stderr {} monitor",
        common::bin(AGENT).display()
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let spawns = err
        .lines()
        .filter(|l| l.contains("clone") || l.contains("fork") || l.contains("execve("))
        .count();
    // One execve: the agent itself.
    assert_eq!(spawns, 1, "monitor created processes:\n{err}");
    eprintln!("monitor under strace: {:?}", t.elapsed());
    res().run("stop").expect(0);
}

/// Issue 14, 1: a resource refused at start because another one owns the
/// export must not remove that export at the stop Pacemaker sends next.
#[test]
fn stop_of_a_refused_duplicate_leaves_the_owners_export() {
    let sb = sandbox!();
    let dir = std::fs::canonicalize(mkdir(&sb, "dup")).unwrap();
    let a = || export(&sb, "ownerA", &dir, "192.0.2.0/24").param("fsid", "16");
    let b = || export(&sb, "dupB", &dir, "192.0.2.0/24").param("fsid", "16");
    a().run("start").expect(0);
    b().run("start")
        .expect_reason(6, "already exported to 192.0.2.0/24 by resource ownerA");
    b().run("stop").expect(0);
    assert_eq!(etab_clients(&sb, &dir), ["192.0.2.0/24"]);
    a().run("monitor").expect(0);
    b().run("monitor").expect(7);
    a().run("stop").expect(0);
    assert!(etab_clients(&sb, &dir).is_empty());
}

/// Issue 14, 2: two resources with one fsid on different directories,
/// started at the same moment (Pacemaker starts unordered resources in
/// parallel): exactly one may succeed, every time.
#[test]
fn parallel_starts_with_one_fsid_let_only_one_through() {
    let sb = sandbox!();
    let one = std::fs::canonicalize(mkdir(&sb, "p1")).unwrap();
    let two = std::fs::canonicalize(mkdir(&sb, "p2")).unwrap();
    for round in 0..6 {
        let a = || export(&sb, "parA", &one, "*").param("fsid", "23");
        let b = || export(&sb, "parB", &two, "*").param("fsid", "23");
        let (ra, rb) = std::thread::scope(|s| {
            let ta = s.spawn(|| a().run("start"));
            let tb = s.spawn(|| b().run("start"));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let mut codes = [ra.code, rb.code];
        codes.sort();
        assert_eq!(
            codes,
            [0, 6],
            "round {round}: both starts returned {} and {}; etab:\n{}",
            ra.code,
            rb.code,
            sb.sh_ok("cat /var/lib/nfs/etab")
        );
        let loser = if ra.code == 6 { &ra } else { &rb };
        loser.expect_reason(6, "fsid=23 is already used by the export of");
        a().run("stop").expect(0);
        b().run("stop").expect(0);
        assert!(etab_clients(&sb, &one).is_empty() && etab_clients(&sb, &two).is_empty());
    }
}

/// Issue 14, 4: a FIFO where a state file should be is refused at once: it
/// hangs neither this resource's actions nor another resource's start
/// (which reads every state on the node).
#[test]
fn a_fifo_for_a_state_file_hangs_nothing() {
    let sb = sandbox!();
    let dir = mkdir(&sb, "d");
    let other = std::fs::canonicalize(mkdir(&sb, "other")).unwrap();
    let _fifo = sb.fifo(
        "/run/resource-agents/hanfs-nfs-export-fifo",
        Duration::from_secs(8),
    );
    let res = || export(&sb, "fifo", &dir, "192.0.2.0/24").param("fsid", "24");
    let quick = |r: &common::AgentRun, what: &str| {
        assert!(
            r.elapsed < Duration::from_secs(5),
            "{what} took {:?} (blocked on the FIFO?)",
            r.elapsed
        )
    };
    let r = export(&sb, "bystander", &other, "*")
        .param("fsid", "25")
        .run("start");
    quick(&r, "another resource's start");
    r.expect(0);
    let r = res().run("monitor");
    quick(&r, "monitor");
    r.expect_reason(1, "is a FIFO, not a regular file");
    let r = res().run("stop");
    quick(&r, "stop");
    r.expect(0);
    res().run("monitor").expect(7);
    export(&sb, "bystander", &other, "*")
        .param("fsid", "25")
        .run("stop")
        .expect(0);
}

/// Issue 14, 8: a directory that is a symbolic-link loop here is invalid
/// on this node (2), one whose real path is too long is wrong everywhere
/// (6); both name the parameter.
#[test]
fn a_link_loop_is_2_and_an_overlong_name_is_6() {
    let sb = sandbox!();
    let a = sb.path("loop-a");
    let b = sb.path("loop-b");
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    export(&sb, "loop", &a, "*")
        .run("start")
        .expect_reason(2, "directory");
    export(&sb, "loop", &a, "*")
        .run("start")
        .expect_reason(2, "symbolic links");
    export(&sb, "loop", &a, "*").run("stop").expect(0);
    let long = std::path::PathBuf::from(format!("/{}", "x".repeat(5000)));
    let r = export(&sb, "long", &long, "*").run("validate-all");
    r.expect_reason(6, "directory");
    assert!(
        r.exit_reason().unwrap().len() < 400,
        "{:?}",
        r.exit_reason()
    );
    export(&sb, "long", &long, "*").run("start").expect(6);
}

// ----------------------------------------------------------------- UML ---

/// Hung storage (issue: faults beyond a crash): the exported file system
/// sits on a device-mapper device whose table is suspended, so its I/O
/// queues for ever while listings still answer from the cache. The
/// monitor at depth 10 must say so within its timeout (a direct read of
/// the device, in a child abandoned at the deadline), never hang; depth 0
/// stays quick and true (the export is still there); after the resume
/// depth 10 passes again.
#[test]
fn uml_depth_10_monitor_notices_hung_storage() {
    use crate::common::uml::{agents_sh, GuestAgent};
    let vm = uml!();
    let ex = GuestAgent::new("ex", AGENT)
        .param("directory", "/run/hung/data")
        .param("clientspec", "127.0.0.1")
        .param("fsid", "7");
    let script = agents_sh(&[ex])
        + r#"
modprobe loop; modprobe dm-mod
dd if=/dev/zero of=/tmp/disk.img bs=1M count=24 2>/dev/null
L=$(losetup -f --show /tmp/disk.img)
dmsetup create hung --table "0 $(blockdev --getsz $L) linear $L 0" && dmsetup mknodes
mkfs.ext4 -q /dev/mapper/hung
mkdir -p /run/hung && mount /dev/mapper/hung /run/hung && mkdir -p /run/hung/data
modprobe nfsd; mount -t nfsd nfsd /proc/fs/nfsd 2>/dev/null; rpcbind -w; rpc.mountd
ex start; val start $?
OCF_CHECK_LEVEL=10 ex monitor; val deep_before $?
ls /run/hung/data >/dev/null
dmsetup suspend hung; val suspended $?
T0=$(date +%s%N)
OCF_CHECK_LEVEL=10 OCF_RESKEY_CRM_meta_timeout=8000 ex monitor 2>/tmp/deep.err; val deep_hung $?
val deep_hung_ms $(( ($(date +%s%N) - T0) / 1000000 ))
val deep_hung_reason "$(grep -o 'ocf-exit-reason:.*' /tmp/deep.err | tr ' ' _)"
ex monitor; val shallow_hung $?
# the cluster's recovery: stop (bounded), and a start that refuses
T0=$(date +%s%N)
OCF_RESKEY_CRM_meta_timeout=8000 ex stop; val stop_hung $?
val stop_hung_ms $(( ($(date +%s%N) - T0) / 1000000 ))
T0=$(date +%s%N)
OCF_RESKEY_CRM_meta_timeout=8000 ex start 2>/tmp/start.err; val start_hung $?
val start_hung_ms $(( ($(date +%s%N) - T0) / 1000000 ))
val start_hung_reason "$(grep -o 'ocf-exit-reason:.*' /tmp/start.err | tr ' ' _)"
dmsetup resume hung; val resumed $?
ex start; val start_after $?
OCF_CHECK_LEVEL=10 ex monitor; val deep_after $?
ex stop; val stop $?
umount /run/hung; dmsetup remove hung; losetup -d $L
"#;
    let r = vm.run(&script, Duration::from_secs(150));
    r.assert_ok();
    let v = |k: &str| r.value(k).unwrap_or_default();
    let out = &r.output;
    assert_eq!(
        (v("start"), v("deep_before"), v("suspended")),
        ("0".into(), "0".into(), "0".into()),
        "{out}"
    );
    assert_eq!(v("deep_hung"), "1", "depth 10 on hung storage: {out}");
    let ms: u64 = v("deep_hung_ms").parse().unwrap_or(u64::MAX);
    assert!(
        ms < 6000,
        "the monitor took {ms} ms, not about half its 8-s timeout: {out}"
    );
    assert!(
        v("deep_hung_reason").contains("hung_storage"),
        "exit reason: {out}"
    );
    assert_eq!(v("shallow_hung"), "0", "depth 0 reads no storage: {out}");
    let ms = |k: &str| v(k).parse::<u64>().unwrap_or(u64::MAX);
    assert!(
        v("stop_hung") == "0" && ms("stop_hung_ms") < 8000,
        "stop on hung storage: {out}"
    );
    assert_eq!(v("start_hung"), "1", "start on hung storage: {out}");
    assert!(ms("start_hung_ms") < 6000, "start overran: {out}");
    assert!(v("start_hung_reason").contains("hung_storage"), "{out}");
    assert_eq!(
        (v("resumed"), v("start_after"), v("deep_after"), v("stop")),
        ("0".into(), "0".into(), "0".into(), "0".into()),
        "{out}"
    );
}
