//! System access: processes with deadlines, atomic files, and per-instance
//! state. NFS- and network-specific modules live beside these.

pub mod fsfile;
pub mod process;
