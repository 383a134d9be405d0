//! wharf: declarative, crash-safe file exchange with partners over SFTP, FTP/FTPS and local folders.
//!
//! Layers, top to bottom: `cli` (in the binary's use of [`cli::run`]) → [`config`] (flow files
//! to a validated [`config::Flow`]) → [`engine`] (the one per-file lifecycle: list, ready,
//! claim, stage, deliver, dispose) → [`endpoint`] (dumb protocol backends behind one trait)
//! and [`ledger`] (redb state: files, runs, observations).

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
