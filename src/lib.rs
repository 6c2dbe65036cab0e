//! hanfs: Pacemaker OCF resource agents for a highly available Linux kernel
//! NFS service.
//!
//! - [`ocf`] is the protocol: actions, exit codes, environment, deadlines,
//!   exit reasons, logging and the meta-data model.
//! - [`sys`] is the system: processes with deadlines, atomic files,
//!   per-instance state, and the NFS- and network-specific modules.
//!
//! Each agent in `agents/` is a thin [`ocf::Agent`] implementation over these.

pub mod ocf;
pub mod sys;
