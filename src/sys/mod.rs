//! System access: processes with deadlines, bounded work in a child
//! ([`bounded`]) and the directory probe built on it ([`storage`]), atomic
//! files, and the NFS- and network-specific parts (netlink addresses and announcements, the export
//! table, statd records, nfsd procfs).

pub mod bounded;
pub mod exports;
pub mod fsfile;
pub mod net;
pub mod nfsd;
pub mod process;
pub mod procs;
pub mod program;
pub mod statd;
pub mod storage;
