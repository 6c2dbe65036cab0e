//! The integration tests: one binary (one build, one link), one module per
//! agent or subject, over one harness (`common`). Run one module with
//! `cargo test --test it float_ip::`.
#[macro_use]
mod common;

mod float_ip;
mod import_state;
mod metadata;
mod nfs_export;
mod nfs_grace;
mod readme;
mod robustness;
mod sandbox_selftest;
mod statd_holding;
