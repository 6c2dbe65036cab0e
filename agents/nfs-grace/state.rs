//! What nfs-grace records on a node: each instance's checked parameters and
//! phase (`Ctx::state_file`), and the node's nfsdcld with the recovery_dir
//! whose database it serves (one file for every instance). The plans in
//! [`crate::plan`] decide from these.

use hanfs::ocf::{self, Ctx, OcfResult};
use hanfs::sys::fsfile;
use hanfs::sys::nfsd::server::{self, ServerSettings};
use hanfs::sys::procs::ProcId;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The checked parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// What nfsd runs with: shared by every nfs-grace resource on a node.
    pub node: NodeSettings,
    /// This service's client-recovery records (on its shared storage).
    pub recovery_dir: PathBuf,
    pub threads: u32,
    pub end_grace_early: bool,
}

/// The settings one nfsd (one node) can have only once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSettings {
    pub lease_time: u32,
    pub grace_time: u32,
    pub nlm_grace_time: u32,
    pub server_scope: String,
}

impl Config {
    pub fn server(&self) -> ServerSettings {
        ServerSettings {
            lease: self.node.lease_time,
            grace: self.node.grace_time,
            nlm_grace: self.node.nlm_grace_time,
            threads: self.threads,
            scope: self.node.server_scope.clone(),
            port: server::NFS_PORT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Written before nfsd is touched: a failed start leaves a record, so
    /// that stop cleans up and a probe does not answer "stopped".
    Starting,
    Started,
}

/// This instance's record on this node (`Ctx::state_file`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub phase: Phase,
    pub config: Config,
}

/// The node's nfsdcld, shared by every nfs-grace resource on the node, and
/// the recovery_dir whose database it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCld {
    pub nfsdcld: ProcId,
    pub storage: PathBuf,
}

/// Not an instance's state file (`hanfs-nfs-grace.node`).
fn node_file(ctx: &Ctx) -> PathBuf {
    ctx.runtime_dir().join("hanfs-nfs-grace.node")
}

/// The node's nfsdcld as recorded (`None` when absent or damaged).
pub fn read_node(ctx: &Ctx) -> Option<NodeCld> {
    ocf::load_state(&node_file(ctx)).ok().flatten()
}

/// Record that `nfsdcld` serves the database in `storage`.
pub fn save_node(ctx: &Ctx, nfsdcld: ProcId, storage: &Path) -> OcfResult<()> {
    let node = NodeCld {
        nfsdcld,
        storage: storage.to_path_buf(),
    };
    ocf::save_state(&node_file(ctx), &node)
}

/// The last nfs-grace resource has left the node, and nfsdcld with it.
pub fn forget_node(ctx: &Ctx) -> OcfResult<()> {
    fsfile::remove_state(&node_file(ctx))
}

/// Present while hanfs holds nfsd's delegations back for a grace period
/// (`hanfs-nfs-grace.leases`, see `server::hold_delegations`).
pub fn leases_marker(ctx: &Ctx) -> PathBuf {
    ctx.runtime_dir().join("hanfs-nfs-grace.leases")
}

/// The other nfs-grace resources recorded as active on this node.
pub fn others(ctx: &Ctx) -> Vec<(String, State)> {
    ctx.other_instances()
        .into_iter()
        .filter_map(|f| match ocf::load_state::<State>(&f.path) {
            Ok(st) => Some((f.instance, st?)),
            Err(e) => {
                log::warn!("ignoring nfs-grace resource {}: {e}", f.instance);
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trip() {
        let st = State {
            phase: Phase::Started,
            config: Config {
                node: NodeSettings {
                    lease_time: 90,
                    grace_time: 90,
                    nlm_grace_time: 90,
                    server_scope: "hanfs".into(),
                },
                recovery_dir: "/srv/nfs/cld".into(),
                threads: 8,
                end_grace_early: true,
            },
        };
        let j = serde_json::to_string(&st).unwrap();
        assert!(j.contains("\"phase\":\"started\""), "{j}");
        let back: State = serde_json::from_str(&j).unwrap();
        assert_eq!(back.config, st.config);
        let n = NodeCld {
            nfsdcld: ProcId { pid: 42, start: 7 },
            storage: "/srv/a/cld".into(),
        };
        let back: NodeCld = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
        assert_eq!(back, n);
    }
}
