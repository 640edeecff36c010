//! What to do about each service, given what was seen.
//!
//! A pure function of the observations (and, as the agent grows, the saved
//! state and the time): no I/O, so every rule is a row in a table test.

/// What the process table said about one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Pids of the processes that are this service, ascending.
    pub pids: Vec<u32>,
}

/// What the pass does about one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Running: nothing to do, nothing to say.
    Running { pid: u32 },
    /// Down: run its restart command (or, in a dry run, say it would).
    Restart,
}

/// One decision per observation, in the same order.
pub fn decide(observations: &[Observation]) -> Vec<Decision> {
    observations
        .iter()
        .map(|o| match o.pids.first() {
            Some(&pid) => Decision::Running { pid },
            None => Decision::Restart,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_table() {
        for (pids, want) in [
            (vec![], Decision::Restart),
            (vec![42], Decision::Running { pid: 42 }),
            (vec![7, 42], Decision::Running { pid: 7 }),
        ] {
            assert_eq!(
                decide(&[Observation { pids: pids.clone() }]),
                vec![want],
                "{pids:?}"
            );
        }
    }
}
