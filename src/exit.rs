//! What a run's exit status says, so the binary can serve as a check.

/// The exit status of a run; `main` turns it into the process's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every service that applies is running (or the command did its job).
    Converged = 0,
    /// Some service that applies is still down.
    Down = 1,
    /// Bad usage, or a broken policy with no last good copy.
    Broken = 2,
}

impl Exit {
    /// `Converged` when all is well, else `Down`.
    pub fn converged_if(ok: bool) -> Exit {
        if ok {
            Exit::Converged
        } else {
            Exit::Down
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}
