//! wharf: declarative, crash-safe file exchange with partners over SFTP, FTP/FTPS and local folders.
//!
//! Layers, top to bottom: `cli` (in the binary's use of [`cli::run`]) → [`config`] (flow files
//! to a validated [`config::Flow`]) → [`engine`] (the one per-file lifecycle: list, ready,
//! claim, stage, deliver, dispose) → [`endpoint`] (dumb protocol backends behind one trait)
//! and [`ledger`] (redb state: files, runs, observations).

/// This build's version, as `wharf --version` prints it and everything else that reports it
/// (the ledger's layout marker, `status`, `/health`, the daemon's start): the package version,
/// and for a build from a git checkout its commit, `-dirty` when the compiled sources differ
/// from it, and the commit's date: `0.1.0 (9edae47, 2026-12-07)` (set by `build.rs`).
pub const VERSION: &str = env!("WHARF_VERSION");

#[cfg(test)]
mod build_inputs;
pub mod cli;
pub mod config;
pub mod control;
pub mod durable;
pub mod endpoint;
pub mod engine;
pub mod flowtest;
pub mod ledger;
#[cfg(test)]
mod log_capture;
pub mod notify;
pub mod probe;
pub mod process;
pub mod sandbox;
pub mod schedule;
pub mod serve;
pub mod steps;
pub mod suggest;
pub mod sync;
pub mod template;
pub mod text;
pub mod timestamp;
