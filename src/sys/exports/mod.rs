//! The export table and `exportfs` (nfs-export).
