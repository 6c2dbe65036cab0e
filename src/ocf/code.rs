/// OCF exit codes (OCF 1.1, "Exit codes"), as Pacemaker reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OcfCode {
    Success = 0,
    /// Soft error: Pacemaker may recover here.
    ErrGeneric = 1,
    /// Invalid on this host (not everywhere).
    ErrArgs = 2,
    Unimplemented = 3,
    ErrPerm = 4,
    /// Something the agent needs is not installed on this host.
    ErrInstalled = 5,
    /// Fatal: the configuration is wrong everywhere.
    ErrConfigured = 6,
    /// Monitor only: cleanly stopped.
    NotRunning = 7,
    /// Monitor only: running, but something the administrator must see is
    /// wrong. Pacemaker (2.1 and later) counts it as running, recovers
    /// nothing, and lists the monitor under failed actions with its exit
    /// reason until it is cleaned up, as a failure (lab run
    /// 20261204-175626: a later answer of 0 does not clear it).
    Degraded = 190,
}

impl OcfCode {
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            OcfCode::Success => "OCF_SUCCESS",
            OcfCode::ErrGeneric => "OCF_ERR_GENERIC",
            OcfCode::ErrArgs => "OCF_ERR_ARGS",
            OcfCode::Unimplemented => "OCF_ERR_UNIMPLEMENTED",
            OcfCode::ErrPerm => "OCF_ERR_PERM",
            OcfCode::ErrInstalled => "OCF_ERR_INSTALLED",
            OcfCode::ErrConfigured => "OCF_ERR_CONFIGURED",
            OcfCode::NotRunning => "OCF_NOT_RUNNING",
            OcfCode::Degraded => "OCF_DEGRADED",
        }
    }
}

impl From<OcfCode> for std::process::ExitCode {
    fn from(c: OcfCode) -> Self {
        std::process::ExitCode::from(c.as_u8())
    }
}
