//! Meta-data of every agent, as the tools read it: the form printed to
//! callers that declare no OCF version (ocf-tester) must validate against
//! the OCF 1.0 DTD (`ra-api-1.dtd`, exactly as ocf-tester checks it), the
//! OCF 1.1 schema and resource-agents' `metadata.rng`; the form printed to
//! OCF 1.1 callers (Pacemaker) must validate against the OCF 1.1 schema and
//! advertise reload-agent exactly when a parameter is reloadable.
use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const AGENTS: [&str; 4] = ["nfs-export", "float-ip", "statd-holding", "nfs-grace"];

fn xmllint(args: &[&str], xml: &str, cwd: &Path) -> (bool, String) {
    let mut c = Command::new("xmllint")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xmllint (install libxml2-utils)");
    c.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn tools_present() -> bool {
    let ok = common::which("xmllint").is_some()
        && Path::new("/usr/share/resource-agents/ra-api-1.dtd").exists();
    if !ok {
        common::skip_or_fail("xmllint or resource-agents' ra-api-1.dtd missing");
    }
    ok
}

fn rng_11() -> String {
    format!("{}/tests/data/ra-api-1.1.rng", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn ocf10_form_passes_the_dtd_and_both_schemas() {
    if !tools_present() {
        return;
    }
    let ra = Path::new("/usr/share/resource-agents");
    for a in AGENTS {
        let r = common::host_agent(a).run("meta-data");
        r.expect(0);
        assert!(
            r.stderr.is_empty(),
            "{a}: meta-data wrote to stderr: {}",
            r.stderr
        );
        let xml = &r.stdout;
        assert!(xml.contains("<version>1.0</version>"), "{a}");
        assert!(
            !xml.contains("reload-agent") && !xml.contains("reloadable"),
            "{a}"
        );
        // ocf-tester's own check, from its data directory.
        let (ok, err) = xmllint(&["--noout", "--valid", "-"], xml, ra);
        assert!(ok, "{a}: not valid against ra-api-1.dtd:\n{err}");
        let (ok, err) = xmllint(&["--noout", "--relaxng", &rng_11(), "-"], xml, ra);
        assert!(ok, "{a}: not valid against OCF 1.1 ra-api.rng:\n{err}");
        let (ok, err) = xmllint(&["--noout", "--relaxng", "metadata.rng", "-"], xml, ra);
        assert!(
            ok,
            "{a}: not valid against resource-agents metadata.rng:\n{err}"
        );
    }
}

#[test]
fn ocf11_form_passes_the_11_schema() {
    if !tools_present() {
        return;
    }
    for a in AGENTS {
        let r = common::host_agent(a)
            .env("OCF_RA_VERSION_MAJOR", "1")
            .env("OCF_RA_VERSION_MINOR", "1")
            .run("meta-data");
        r.expect(0);
        let xml = &r.stdout;
        assert!(xml.contains("<version>1.1</version>"), "{a}");
        let (ok, err) = xmllint(
            &["--noout", "--relaxng", &rng_11(), "-"],
            xml,
            Path::new("."),
        );
        assert!(ok, "{a}: not valid against OCF 1.1 ra-api.rng:\n{err}");
        let reloadable = xml.contains("reloadable=\"1\"");
        assert_eq!(
            reloadable,
            xml.contains("name=\"reload-agent\""),
            "{a}: reload-agent iff reloadable params"
        );
        for action in ["start", "stop", "monitor", "meta-data", "validate-all"] {
            assert!(
                xml.contains(&format!("name=\"{action}\"")),
                "{a} lacks action {action}"
            );
        }
    }
}

#[test]
fn meta_data_works_as_nobody() {
    if !common::nix_is_root() {
        return common::skip_or_fail("not root: cannot switch to nobody");
    }
    for a in AGENTS {
        // The agent binary must be reachable by nobody (target/ may sit under
        // a private home); copy it somewhere world-readable.
        let d = tempfile::Builder::new()
            .prefix("hanfs-md-")
            .tempdir_in("/tmp")
            .unwrap();
        let p = d.path().join(a);
        std::fs::copy(common::bin(a), &p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // A child another test thread forks while the copy is open for
        // writing holds that descriptor until it execs: ETXTBSY ("Text file
        // busy") for a moment. Retry that, and only that.
        let run = || {
            Command::new("su")
                .args([
                    "nobody",
                    "-s",
                    "/bin/sh",
                    "-c",
                    &format!("{} meta-data", p.display()),
                ])
                .output()
                .unwrap()
        };
        let mut o = run();
        for _ in 0..20 {
            if o.status.success() || !String::from_utf8_lossy(&o.stderr).contains("Text file busy")
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            o = run();
        }
        assert!(
            o.status.success(),
            "{a} meta-data as nobody: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains("<resource-agent"));
    }
}

#[test]
fn protocol_edges() {
    for a in AGENTS {
        // No action: usage on stderr, 2.
        let o = Command::new(common::bin(a)).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{a}");
        assert!(o.stdout.is_empty(), "{a}: usage must not go to stdout");
        assert!(String::from_utf8_lossy(&o.stderr).contains("usage"), "{a}");
        // Unknown actions: 3.
        for act in ["promote", "frobnicate", "notify"] {
            common::host_agent(a).run(act).expect(3);
        }
        // usage/help: stdout, 0.
        let r = common::host_agent(a).run("usage");
        r.expect(0);
        assert!(r.stdout.contains("meta-data"));
    }
}
