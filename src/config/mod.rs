//! Flow configuration: YAML text → [`raw::RawFlow`] → pure validation → [`flow::Flow`].
//!
//! `load_*` is the only place that reads flow files. Validation reports *every* problem in
//! one pass as a [`Diagnostic`] with file, line, column and YAML path; nothing is connected
//! or spawned until a flow validated cleanly.

pub mod flow;
pub mod raw;
pub mod secret;

pub use flow::Flow;
pub use secret::Secret;
