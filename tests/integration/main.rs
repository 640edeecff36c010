//! Integration tests: the built `tend` binary against real processes, real
//! files and real commands. No fake process table here.

mod alerts;
mod checks;
mod debian;
mod doctor;
mod errors;
mod fleet;
mod holds;
mod hooks;
mod import;
mod layout;
mod metrics;
mod package;
mod pass;
mod probes;
mod sandbox;
mod shipped;
mod state;
mod systemd;
mod trust;
mod truth;
mod upgrades;
