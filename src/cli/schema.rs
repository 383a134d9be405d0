//! `wharf schema`: print (or write) the JSON Schema of flow files, or the Markdown reference
//! generated from it, or the schema of test files or of `serve.yaml`.
//! `schemas/flow.schema.json`, `docs/flow-reference.md`, `schemas/flow-test.schema.json` and
//! `schemas/serve.schema.json` are produced this way, and a test fails when they are out of
//! date.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::output::out;
use crate::config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write to this file instead of printing (e.g. `schemas/flow.schema.json`).
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Produce the Markdown field reference (docs/flow-reference.md) instead of the schema.
    #[arg(long)]
    pub markdown: bool,
    /// Produce the schema of test files (`*.test.yaml`, schemas/flow-test.schema.json) instead.
    #[arg(long, conflicts_with = "markdown")]
    pub test: bool,
    /// Produce the schema of the daemon's settings (`serve.yaml`, schemas/serve.schema.json)
    /// instead.
    #[arg(long, conflicts_with_all = ["markdown", "test"])]
    pub serve: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = if args.markdown {
        config::flow_reference_markdown()
    } else {
        let schema = if args.test {
            crate::flowtest::test_schema()
        } else if args.serve {
            crate::serve::config::serve_schema()
        } else {
            config::flow_schema()
        };
        let mut json = serde_json::to_string_pretty(&schema).context("serializing the schema")?;
        json.push('\n');
        json
    };
    match args.write {
        Some(path) => std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?,
        None => out!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
