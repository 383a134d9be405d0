//! wharf's integration tests, one test binary.
//!
//! Every file here was once its own `tests/*.rs` binary; as modules of one binary they link
//! once instead of eighteen times, which was most of a clean CI run. Each module still reads
//! as a test file of its own; [`support`] is the shared harness (temp dirs, free ports, real
//! sshd/vsftpd/pure-ftpd servers on 127.0.0.1, HTTP and SMTP receivers).
//!
//! Run one module with `cargo test --test it MODULE::` (for example `cargo test --test it
//! conformance::`).

mod support;

mod config;
mod conformance;
mod content_commands;
mod content_sftp;
mod control;
mod examples;
mod flow_tests;
mod forget;
mod ftp_modes;
mod full_disks;
mod max_files;
mod notify;
mod on_call;
mod output;
mod partner_servers;
mod plan;
mod probe;
mod pull_ftp;
mod pull_sftp;
mod push;
mod quarantine_cli;
mod reconnect;
mod render;
mod roundtrip_ftp;
mod roundtrip_sftp;
mod sandbox;
mod serve;
mod serve_process;
mod sftp_auth;
mod sftp_refusals;
mod state_full;
mod upgrade;
