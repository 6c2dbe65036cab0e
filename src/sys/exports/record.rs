//! What one nfs-export resource exported on this node (its state file from
//! start to stop), and the decisions about the node's other exports made
//! from it: which collide with a new export, which a restart with other
//! parameters leaves stale, which a stop removes.

use super::{ClientSpec, Export, ExportClient, Fsid, TableStamp};
use crate::ocf::{OcfError, OcfResult};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What start exported, kept in the state file until stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRecord {
    pub instance: String,
    /// The real path exported (symbolic links resolved).
    pub directory: PathBuf,
    /// Its file system's device at start (depth 10 checks it is unchanged).
    pub dev: u64,
    pub clients: Vec<ExportClient>,
    pub fsid: Option<String>,
    /// The export table exportfs wrote to.
    pub etab: PathBuf,
    /// The version of that table the last good check read: while etab is
    /// unchanged, a monitor need not read it again (flat in its size).
    #[serde(default)]
    pub checked: Option<TableStamp>,
}

impl ExportRecord {
    pub fn fsid(&self) -> Option<Fsid> {
        self.fsid.as_deref().and_then(|f| Fsid::parse(f).ok())
    }

    pub fn etab_names(&self) -> Vec<String> {
        self.clients.iter().map(|c| c.etab.clone()).collect()
    }

    /// Whether this resource exports `dir` to etab's `name`.
    pub fn owns(&self, dir: &Path, name: &str) -> bool {
        self.directory == dir && self.clients.iter().any(|c| c.is(name))
    }

    /// Refuse (code 6) the same fsid as an export of another directory in
    /// `table`.
    pub fn check_fsid(&self, table: &[Export]) -> OcfResult<()> {
        let Some(f) = self.fsid() else {
            return Ok(());
        };
        match table
            .iter()
            .find(|e| e.directory != self.directory && e.fsid() == Some(f))
        {
            Some(e) => Err(OcfError::configured(format!(
                "fsid={f} is already used by the export of {} to {}; every export needs its own fsid",
                e.directory.display(),
                e.client
            ))),
            None => Ok(()),
        }
    }

    /// Refuse (code 6) a directory and client that another running
    /// resource (`others`) exports, as `table` shows.
    pub fn check_owners(&self, table: &[Export], others: &[ExportRecord]) -> OcfResult<()> {
        for other in others {
            for c in &self.clients {
                if other.owns(&self.directory, &c.etab)
                    && table.iter().any(|e| e.is(&self.directory, &c.etab))
                {
                    return Err(OcfError::configured(format!(
                        "{} is already exported to {} by resource {}",
                        self.directory.display(),
                        c.spec,
                        other.instance
                    )));
                }
            }
        }
        Ok(())
    }

    /// The etab names this earlier record exported that `new` does not.
    pub fn stale(&self, new: &ExportRecord) -> Vec<String> {
        (self.etab_names().into_iter())
            .filter(|n| !new.owns(&self.directory, n))
            .collect()
    }
}

/// The etab names a stop removes from `dir`: what the record (`state`)
/// holds and what the configuration names (`clients`: a host name by the
/// name etab recorded at start, else as given); never what another
/// resource on this node (`others`) has started (a stop after a refused
/// start, same directory and client, would take the owner's export down).
pub fn stop_names(
    clients: &[ClientSpec],
    state: Option<&ExportRecord>,
    others: &[ExportRecord],
    dir: &Path,
) -> Vec<String> {
    let mut names: Vec<String> = state.map(ExportRecord::etab_names).unwrap_or_default();
    for c in clients {
        let n = c.etab_name().unwrap_or_else(|| {
            state
                .and_then(|s| s.clients.iter().find(|sc| sc.spec == c.to_string()))
                .map_or_else(|| c.to_string(), |sc| sc.etab.clone())
        });
        if !names.iter().any(|m| m.eq_ignore_ascii_case(&n)) {
            names.push(n);
        }
    }
    for other in others.iter().filter(|o| o.directory == dir) {
        names.retain(|n| {
            let theirs = other.owns(dir, n);
            if theirs {
                log::info!(
                    "not removing the export of {} to {n}: resource {} owns it",
                    dir.display(),
                    other.instance
                );
            }
            !theirs
        });
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::OcfCode;

    fn record(
        instance: &str,
        dir: &str,
        clients: &[(&str, &str)],
        fsid: Option<&str>,
    ) -> ExportRecord {
        ExportRecord {
            instance: instance.into(),
            directory: dir.into(),
            dev: 2049,
            clients: (clients.iter())
                .map(|(spec, etab)| ExportClient {
                    spec: spec.to_string(),
                    etab: etab.to_string(),
                })
                .collect(),
            fsid: fsid.map(str::to_string),
            etab: "/var/lib/nfs/etab".into(),
            checked: None,
        }
    }

    fn export(dir: &str, client: &str, options: &[&str]) -> Export {
        Export {
            directory: dir.into(),
            client: client.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn an_fsid_belongs_to_one_directory() {
        let table = [export("/srv/b", "*", &["rw", "fsid=7"])];
        let e = record("e1", "/srv/a", &[("*", "*")], Some("7"))
            .check_fsid(&table)
            .unwrap_err();
        assert_eq!(e.code, OcfCode::ErrConfigured);
        assert_eq!(
            e.reason,
            "fsid=7 is already used by the export of /srv/b to *; every export needs its own fsid"
        );
        // the same directory again (a restart), another fsid, or none: fine
        assert!(record("e1", "/srv/b", &[("*", "*")], Some("7"))
            .check_fsid(&table)
            .is_ok());
        assert!(record("e1", "/srv/a", &[("*", "*")], Some("8"))
            .check_fsid(&table)
            .is_ok());
        assert!(record("e1", "/srv/a", &[("*", "*")], None)
            .check_fsid(&table)
            .is_ok());
    }

    #[test]
    fn a_client_of_a_directory_belongs_to_one_resource() {
        let theirs = record("e2", "/srv/a", &[("client1", "client1.example.test")], None);
        let mine = record("e1", "/srv/a", &[("client1", "client1.example.test")], None);
        let table = [export("/srv/a", "CLIENT1.example.test", &["rw"])];
        let e = mine
            .check_owners(&table, std::slice::from_ref(&theirs))
            .unwrap_err();
        assert_eq!(e.code, OcfCode::ErrConfigured);
        assert_eq!(
            e.reason,
            "/srv/a is already exported to client1 by resource e2"
        );
        // not in the table (the other's start failed or it stopped): fine
        assert!(mine.check_owners(&[], &[theirs]).is_ok());
        let other_client = record("e3", "/srv/a", &[("*", "*")], None);
        assert!(mine.check_owners(&table, &[other_client]).is_ok());
    }

    #[test]
    fn a_restart_removes_what_it_no_longer_exports() {
        let old = record("e1", "/srv/a", &[("a", "a.test"), ("b", "b.test")], None);
        let new = record("e1", "/srv/a", &[("b", "B.test")], None);
        assert_eq!(old.stale(&new), ["a.test"]);
        let moved = record("e1", "/srv/other", &[("b", "b.test")], None);
        assert_eq!(old.stale(&moved), ["a.test", "b.test"]);
    }

    #[test]
    fn a_stop_removes_its_own_and_the_configured_but_not_anothers() {
        let specs = ClientSpec::parse_list("192.0.2.0/24 client1 *").unwrap();
        let state = record("e1", "/srv/a", &[("client1", "client1.example.test")], None);
        let dir = Path::new("/srv/a");
        assert_eq!(
            stop_names(&specs, Some(&state), &[], dir),
            ["client1.example.test", "192.0.2.0/24", "*"]
        );
        // without a record, a host name as given
        assert_eq!(
            stop_names(&specs, None, &[], dir),
            ["192.0.2.0/24", "client1", "*"]
        );
        let other = record("e2", "/srv/a", &[("*", "*")], None);
        let elsewhere = record("e3", "/srv/b", &[("192.0.2.0/24", "192.0.2.0/24")], None);
        assert_eq!(
            stop_names(&specs, Some(&state), &[other, elsewhere], dir),
            ["client1.example.test", "192.0.2.0/24"]
        );
    }

    #[test]
    fn the_record_round_trips() {
        let s = record(
            "exp1",
            "/srv/a b",
            &[("client1", "client1.example.test")],
            Some("3f1b8b8c-1234-4cde-8a00-aaaaaaaaaaaa"),
        );
        let back: ExportRecord = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(matches!(back.fsid(), Some(Fsid::Uuid(_))));
    }
}
