//! The export table and `exportfs` (nfs-export).
//!
//! - [`etab`]: the table of current exports as the NFS server sees it
//!   (`/var/lib/nfs/etab`, which `exportfs` maintains and `rpc.mountd`
//!   serves the kernel from), read in-process and streamed.
//! - [`client`]: client specifications (host, address, subnet, wildcard,
//!   netgroup, world), parsed and written in the form etab records.
//! - [`options`]: export options with the file-system id (`fsid`) merged in.
//! - [`exportfs`]: running `exportfs` to add and remove exports, checked
//!   against etab.
//! - [`locks`]: what a stopping export leaves in nfsd (its file system's
//!   locks, NFSv4 leases).
//! - [`record`]: what one export resource exported on this node, and what
//!   that decides about the node's other exports (conflicts, what a stop
//!   removes).

pub mod client;
pub mod etab;
pub mod exportfs;
pub mod locks;
pub mod options;
pub mod record;

pub use client::{ClientSpec, ExportClient};
pub use etab::{Export, ExportTable, TableStamp};
pub use exportfs::Exportfs;
pub use options::{ExportOptions, Fsid};
pub use record::ExportRecord;
