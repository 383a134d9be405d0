//! The test file as written (`NAME.test.yaml`): serde structs that mirror the YAML one to one,
//! with `deny_unknown_fields` everywhere.
//!
//! These types own the shape, the defaults and the field documentation — the doc comments
//! become `schemas/flow-test.schema.json`. They check nothing beyond shape; what the fields
//! mean (one kind of case, fixtures that exist, expectations that fit the case, a flow that
//! loads) is checked by `load.rs`, which builds the [`super::Suite`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A wharf test file: cases for one flow, run by `wharf test` without touching any server.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "wharf flow test")]
pub struct RawSuite {
    /// The flow file under test, relative to this test file (`roster-import.yaml`).
    pub flow: String,
    /// The clock every case runs at, RFC 3339 (`2026-01-05T06:00:00Z`): what `{{date …}}` in
    /// sink names and `now` / `file.date` in templates see. A case may set its own.
    /// Default: `2026-01-01T00:00:00Z`, so a result never depends on the day the test runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
    /// The cases, run in order, each on its own (fresh folders, a fresh in-memory ledger).
    #[schemars(length(min = 1))]
    pub cases: Vec<RawCase>,
}

/// One case: exactly one of `input` (a whole file through the flow), `map` (one record
/// through the flow's mapping script) or `render` (records through the flow's templates),
/// and what to expect.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCase {
    /// What the case shows; printed beside `ok` / `FAILED`.
    pub name: String,
    /// This case's clock (RFC 3339), instead of the file's `now`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
    /// A file case: this file arrives in the source folder, and the flow runs once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<RawInput>,
    /// A script case: one record through the flow's `map` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<RawMapCase>,
    /// A template case: records through the flow's `render` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<RawRenderCase>,
    /// What must come out.
    pub expect: RawExpect,
}

/// The file that arrives in the source folder: a fixture (`file`) or inline `content`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    /// A fixture file, relative to this test file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The file's content, inline (instead of `file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The file's name in the source folder (`ROSTER_20260105.csv`; `eu/b.xml` for a
    /// sub-folder). It is what the source's `include`/`exclude`, `check.name` and the sinks'
    /// name templates see. Default: the fixture's file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Other files beside it in the same folder, name → content: companion checksum or row
    /// count files (`ROSTER_20260105.csv.sha256`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub beside: BTreeMap<String, String>,
}

/// One record through the flow's `map` script, as the script receives it (after `parse` and
/// `validate`: CSV cells are strings, except fields the record schema types as numbers).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMapCase {
    /// The record given to `fn map(record)`.
    pub record: Value,
}

/// Records through the flow's `render` templates (header, rows, footer, or the document).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRenderCase {
    /// The records, as they reach `render` (after `map`, if any).
    #[serde(default)]
    pub records: Vec<Value>,
    /// The source file's name the templates see as `file.name` / `file.stem`.
    /// Default: `input.csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What a case must produce. Which fields apply depends on the case: `outcome`, `counts`,
/// `outputs`, `rejected`, `quarantine`, `source` and `detail` for `input`; `records` for
/// `map`; `output` for `render`; `error` for `map` and `render`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// What happened to the file: `delivered`, `quarantined`, `failed`, or `ignored` (the
    /// source's `include`/`exclude` did not pick it up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Row counts of the content steps; only the counts given are compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<RawCounts>,
    /// Every file the run delivered, as `ENDPOINT:/PATH` (the rendered sink folder and name;
    /// rejects and trigger files included) → its expected content. Exactly these files must
    /// be delivered: a missing or an extra file fails the case. `{}` expects none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<BTreeMap<String, RawContent>>,
    /// The rows of the rejects file (`on_invalid: skip`), in order: exactly this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Vec<RawRowError>>,
    /// The file was quarantined, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<RawQuarantine>,
    /// What became of the source file: `kept`, `deleted`, or the path it was moved to
    /// (`/incoming/processed/ROSTER_20260105.csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Text the run's line for the file contains (why it failed, where it went).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `map` cases: the records the script returns, in order (`[]`: the record is dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<Value>>,
    /// `render` cases: the rendered text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<RawContent>,
    /// `map` and `render` cases: the record (or document) fails, with a message containing
    /// this text (`roster.rhai line 12`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What became of the file (see `expect.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Delivered,
    Quarantined,
    Failed,
    Ignored,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Quarantined => "quarantined",
            Outcome::Failed => "failed",
            Outcome::Ignored => "ignored",
        }
    }
}

/// Row counts; only those given are compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCounts {
    /// Records read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<u64>,
    /// Records that passed every step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<u64>,
    /// Records refused (rejects file, or the file's quarantine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<u64>,
    /// Records the script dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<u64>,
    /// Records written to the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<u64>,
}

/// Expected content of a file or a rendered text: exactly one of `file`, `content` or
/// `records`, or only `contains`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawContent {
    /// Equal, byte for byte, to this fixture file (relative to this test file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Equal to this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Read as records (CSV with a header — cells are strings —, a JSON array, or JSON Lines,
    /// by the file's extension) and equal to these; a mismatch names the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<Value>>,
    /// Contains each of these texts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contains: Vec<String>,
}

/// One expected problem: a row (rejected or in a quarantine report) or the file's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRowError {
    /// The 1-based record number (omit for a problem with the whole file in a quarantine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// The field the problem is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Text the message contains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An expected quarantine.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawQuarantine {
    /// Text the reason contains (`4 of 5 records are invalid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The errors of the report, in order: exactly this many (needs `quarantine.report`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<RawRowError>>,
    /// Where the copy goes, as `ENDPOINT:/PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<String>,
}

/// The JSON Schema of test files (`schemas/flow-test.schema.json`).
pub fn test_schema() -> Value {
    crate::config::schema::schema_for::<RawSuite>()
}
