//! statd monitor records, the holding directory, sm-notify (statd-holding).
//!
//! - [`record`]: the `sm/` record files statd writes (seven fields a line).
//! - [`statedir`]: where this node's statd keeps them, nfs.conf, rpc.statd.
//! - [`holding`]: the holding directory on shared storage.
//! - [`registry`]: the node's active instances, read by the callout.
//! - [`callout`]: the statd HA callout (`hanfs-statd-callout`).
//! - [`notify`]: sm-notify runs from a floating address.
//! - [`resolve`]: the reverse lookup sm-notify needs for `-v`.
//! - [`nlmgrace`]: ending lockd's grace once the notified clients reclaimed.

pub mod callout;
pub mod holding;
pub mod nlmgrace;
pub mod notify;
pub mod record;
pub mod registry;
pub mod resolve;
pub mod statedir;
