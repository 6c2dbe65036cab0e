//! The OCF resource-agent protocol (OCF 1.1, readable by 1.0 tools).

mod agent;
mod code;
mod deadline;
mod env;
mod error;
pub mod log;
pub mod metadata;
mod params;

pub use agent::{
    check_description_matches_code, dispatch, guarded, instance_files, load_state, node_lock_file,
    run, save_state, save_state_readable, state_file, Agent, Ctx, InstanceFile,
};
pub use code::OcfCode;
pub use deadline::Deadline;
pub use env::{Action, Invocation};
pub use error::{echo, listed, OcfError, OcfResult, ResultExt, ECHO_MAX};
pub use metadata::Metadata;
pub use params::{abs_path, each, invalid, uint_in, Params};
