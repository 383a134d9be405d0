//! Running one case and comparing what came out with what it expects.
//!
//! A file case runs the flow once through [`engine::run_once`] — the code `wharf run` uses —
//! on a copy of the flow whose endpoints are all folders in a scratch directory, with a fresh
//! in-memory ledger and the case's clock. Left out, because they depend on polls across time
//! or on the outside world: readiness rules (`min_age`, `stable_for`, done files),
//! `source.command`, and awaited responses; transient errors are not retried. A `map` case
//! calls the flow's built script, a `render` case its built templates (the same
//! [`Renderer`] the pipeline writes with). What was found is judged in `check.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::check::{self, Found};
use super::{Case, CaseKind, Input, Suite};
use crate::config::Flow;
use crate::config::flow::{EndpointSpec, Ready, Retry};
use crate::endpoint::local::LocalEndpoint;
use crate::endpoint::{Entry, EntryKind};
use crate::engine::{self, RunOptions};
use crate::ledger::{Ledger, LedgerError};
use crate::steps::Step;
use crate::steps::map::{MapError, MapFailure};
use crate::steps::render::{Failure as RenderFailure, Render, Renderer};
use crate::template::NameVars;

/// One way a case did not do what it expects: a message, and the difference to show (a
/// unified diff, or the differing fields), if any.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure { message: message.into(), diff: None }
    }

    pub fn with_diff(message: impl Into<String>, diff: String) -> Self {
        Failure { message: message.into(), diff: Some(diff) }
    }
}

/// A case could not be run at all (local trouble, not the flow's).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the in-memory ledger: {0}")]
    Ledger(#[from] LedgerError),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RunError {
    let path = path.to_path_buf();
    move |source| RunError::Io { what, path, source }
}

/// Runs `case` of `suite`: the failures (none when it passed). `rt` runs the engine.
pub fn run_case(suite: &Suite, case: &Case, rt: &tokio::runtime::Runtime) -> Vec<Failure> {
    let result = match &case.kind {
        CaseKind::File(input) => file_case(&suite.flow, case, input, rt),
        CaseKind::Map(record) => Ok(map_case(&suite.flow, case, record)),
        CaseKind::Render { records, name } => render_case(&suite.flow, case, records, name),
    };
    result.unwrap_or_else(|e| vec![Failure::new(format!("could not run the case: {e}"))])
}

/// A scratch folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, RunError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("wharf-test-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io("creating the scratch folder", &dir))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The flow with every endpoint a local folder under `root` (`endpoints/0`, `endpoints/1`, …
/// in name order, since endpoint names need not be file names), without what a test leaves
/// out. Returns the folders by endpoint name.
fn isolate(flow: &Flow, root: &Path) -> Result<(Flow, BTreeMap<String, LocalEndpoint>), RunError> {
    let mut flow = flow.clone();
    let mut folders = BTreeMap::new();
    for (i, (name, spec)) in flow.endpoints.iter_mut().enumerate() {
        let dir = root.join("endpoints").join(i.to_string());
        std::fs::create_dir_all(&dir).map_err(io("creating an endpoint folder", &dir))?;
        *spec = EndpointSpec::Local { root: dir.clone() };
        folders.insert(name.clone(), LocalEndpoint::new(dir));
    }
    // Time is not a test's business; a done file is (a companion, never data, moved or
    // deleted with its file): given in `beside`, or written by `file_case`.
    flow.source.ready = Ready { done_file: flow.source.ready.done_file.take(), ..Ready::default() };
    flow.source.command = None;
    flow.response = None;
    flow.retry = Retry { attempts: 1, backoff: Duration::ZERO, give_up_after: 0 };
    Ok((flow, folders))
}

fn file_case(flow: &Flow, case: &Case, input: &Input, rt: &tokio::runtime::Runtime) -> Result<Vec<Failure>, RunError> {
    let scratch = Scratch::new()?;
    let (flow, folders) = isolate(flow, &scratch.0)?;
    let src = &folders[&flow.source.endpoint];
    let path = flow.source.path.join_path(&input.name).map_err(|e| RunError::Io {
        what: "placing the input",
        path: PathBuf::from(&input.name),
        source: std::io::Error::other(e.to_string()),
    })?;
    let local = src.full(&path);
    let dir = local.parent().unwrap_or(&scratch.0).to_path_buf();
    std::fs::create_dir_all(&dir).map_err(io("creating the source folder", &dir))?;
    std::fs::write(&local, &input.content).map_err(io("writing the input", &local))?;
    for (name, content) in &input.beside {
        let p = dir.join(name);
        std::fs::write(&p, content).map_err(io("writing a file beside the input", &p))?;
    }
    // The input's done file, when the flow wants one and the case does not give it: the
    // input is complete (what the flow does with a file is tested, not when it is ready).
    if let Some(t) = &flow.source.ready.done_file {
        let entry = Entry { path: path.clone(), kind: EntryKind::File, size: input.content.len() as u64, mtime: None };
        if let Some(done) = engine::done_path(t, &entry, &input.name, case.now).map(|d| src.full(&d)).filter(|d| !d.exists()) {
            std::fs::write(&done, b"").map_err(io("writing the input's done file", &done))?;
        }
    }
    let ledger = Ledger::in_memory()?;
    let opts = RunOptions { staging_dir: scratch.0.join("staging"), now: Some(case.now), stop: Default::default() };
    let report = rt.block_on(engine::run_once(&flow, &ledger, &opts, &mut |_: &engine::FileReport| {}))?;
    if let Some(e) = &report.error {
        return Ok(vec![Failure::new(format!("the run was aborted: {e}"))]);
    }
    // A file given beside the input is a companion: one the run took as data of its own
    // (a done file or a checksum the flow does not know as such) fails the case.
    let mut beside: Vec<Failure> = report
        .files
        .iter()
        .filter(|f| f.path != path.to_string() && !f.targets.is_empty())
        .map(|f| {
            Failure::new(format!("{} (beside the input) was taken as a file of its own and delivered to {}", f.path, f.targets.join(", ")))
        })
        .collect();
    let not_taken = report.skipped_names.iter().find(|s| s.shown_path() == path.to_string()).map(|s| s.explained());
    let file = report.files.into_iter().find(|f| f.path == path.to_string());
    let result = ledger.file_result(&flow.name, path.as_str())?;
    let record = ledger.file(&flow.name, path.as_str())?;
    let source = if local.exists() {
        "kept".to_string()
    } else {
        match record.as_ref().and_then(|r| r.disposed_to.as_deref()) {
            Some(t) => format!("/{t}"),
            None => "deleted".to_string(),
        }
    };
    let found = Found { file, not_taken, result, source, folders: &folders };
    let mut failures = check::file(&case.expect, &found);
    failures.append(&mut beside);
    Ok(failures)
}

fn map_case(flow: &Flow, case: &Case, record: &Value) -> Vec<Failure> {
    let mapper = flow.steps.as_ref().and_then(|s| s.steps().iter().find_map(|s| if let Step::Map(m) = s { Some(m.clone()) } else { None }));
    // Invariant: load.rs refuses a `map` case for a flow without a `map` step.
    let Some(m) = mapper else { return vec![Failure::new("the flow has no `map` step")] };
    m.start_file();
    // A script's `print` and `debug` lines name the case (`wharf test -v` shows them).
    let out = tracing::info_span!("script", case = case.name.as_str()).in_scope(|| m.map(record));
    m.end_file();
    let out = out.map_err(|MapFailure { error, returned }| {
        let (MapError::Record(msg) | MapError::Script(msg) | MapError::Timeout(msg)) = error;
        match returned {
            Some(r) => format!("{r}: {msg}"),
            None => msg,
        }
    });
    check::records_or_error(&case.expect, out)
}

fn render_case(flow: &Flow, case: &Case, records: &[Value], name: &str) -> Result<Vec<Failure>, RunError> {
    let render: Option<Render> =
        flow.steps.as_ref().and_then(|s| s.steps().iter().find_map(|s| if let Step::Render(r) = s { Some(r.clone()) } else { None }));
    // Invariant: load.rs refuses a `render` case for a flow without a `render` step.
    let Some(render) = render else { return Ok(vec![Failure::new("the flow has no `render` step")]) };
    let scratch = Scratch::new()?;
    let out = scratch.0.join(format!("rendered.{}", render.ext()));
    let vars = NameVars::new(name, "", 0, 1, case.now);
    let rendered = (|| -> Result<(), RenderFailure> {
        let mut r = Renderer::create(&out, &render, &vars)?;
        for (i, rec) in records.iter().enumerate() {
            r.records(vec![rec.clone()]).map_err(|f| match f {
                RenderFailure::Record { field, message, .. } => {
                    let at = field.map(|f| format!(", field {f}")).unwrap_or_default();
                    RenderFailure::File(format!("record {}{at}: {message}", i + 1))
                }
                other => other,
            })?;
        }
        r.end()?;
        r.finish()?;
        Ok(())
    })();
    let text = match rendered {
        Ok(()) => Ok(std::fs::read(&out).map_err(io("reading the rendered text", &out))?),
        Err(RenderFailure::Io(e)) => return Err(RunError::Io { what: "rendering into", path: out, source: e }),
        Err(RenderFailure::File(msg)) | Err(RenderFailure::Record { message: msg, .. }) => Err(msg),
    };
    Ok(check::rendered(&case.expect, text, &format!("rendered.{}", render.ext())))
}
