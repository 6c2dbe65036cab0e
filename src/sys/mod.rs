//! System access: processes with deadlines, atomic files, and the NFS- and
//! network-specific parts (netlink addresses and announcements, the export
//! table, statd records, nfsd procfs).

pub mod exports;
pub mod fsfile;
pub mod net;
pub mod nfsd;
pub mod process;
pub mod procs;
pub mod program;
pub mod statd;
