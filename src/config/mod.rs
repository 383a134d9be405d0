//! Flow configuration: YAML text → [`raw::RawFlow`] → pure validation → [`flow::Flow`].
//!
//! `load_*` is the only place that reads flow files. Validation reports *every* problem in
//! one pass as a [`Diagnostic`] with file, line, column and YAML path; nothing is connected
//! or spawned until a flow validated cleanly.
//!
//! Stages, one module each: [`locate`] parses (syntax errors, every duplicate key, positions),
//! [`schema`] checks the shape against [`flow_schema`] (unknown fields, types, enums),
//! [`validate`] checks meaning and builds the [`Flow`] (references, globs, templates, paths,
//! durations, credentials), and [`load`] runs them in order; [`stray`] says when a file that is
//! not a flow (the daemon's `serve.yaml`) was taken for one. [`reference`] renders the
//! schema as `docs/flow-reference.md`. [`across`] checks the flows loaded together for what
//! no single flow shows (two flows taking each other's responses).

pub mod across;
pub mod diagnostic;
pub mod duration;
pub mod flow;
pub mod inputs;
pub mod interpolate;
pub mod key_files;
pub mod load;
pub mod locate;
pub mod paths;
pub mod programs;
pub mod raw;
pub mod raw_notify;
pub mod raw_response;
pub mod raw_schedule;
pub mod raw_steps;
pub mod reference;
pub mod schema;
pub mod secret;
pub mod stray;
pub mod validate;

pub use diagnostic::{Diagnostic, Problem};
pub use flow::Flow;
pub use load::{
    find_flows, load_flow, load_flow_str, load_flow_str_with_env, load_flow_to_read, load_flow_with_warnings, name_also_used, name_in_file,
    name_owner, name_shown_beside, name_shown_by, name_taken, unloaded_name,
};
pub use reference::flow_reference_markdown;
pub use schema::flow_schema;
pub use secret::Secret;
