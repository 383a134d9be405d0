//! The content-step part of a flow file as written: `steps:`, `quarantine:`, `on_invalid:` and
//! `max_invalid:`. Serde + schemars types that mirror the YAML one to one, like `raw.rs` (kept
//! in a file of its own because it is a concept of its own and `raw.rs` is already long).
//!
//! Shape only: whether a schema compiles, a script parses, a lookup table exists or the steps
//! come in a sensible order is checked by `crate::steps::build`, called from `validate.rs`.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

/// One content step: a mapping with exactly one key naming the step.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[schemars(transform = describe_step_keys)]
pub enum RawStep {
    /// File checks before anything is parsed: size, name, content type, companion checksum.
    /// A file that fails one is quarantined.
    Check(RawCheck),
    /// Read the file as records (CSV, a JSON array of objects, or JSON Lines), one at a time.
    Parse(RawParse),
    /// Check every record against a JSON Schema (draft 2020-12) and the file for completeness.
    Validate(RawValidate),
    /// Transform every record with a Rhai script (`fn map(record)`).
    Map(RawMap),
    /// Serialise the records for the sinks. Default: the format that was parsed.
    Write(RawWrite),
    /// Write the records through Handlebars templates, in the exact layout a partner demands
    /// (fixed-width, a CSV dialect with a trailer, XML…). The last step, instead of `write`.
    /// See docs/templates.md.
    Render(RawRender),
    /// Pass the file's bytes through a program (`gpg --decrypt`, `gunzip`, `xsltproc`…): the
    /// current bytes on its standard input, its standard output the file's new content. Before
    /// `parse` (after any `check`: a checksum is of the file as received) to decode what
    /// arrives, after `write`/`render` to encode what is sent, or alone. See
    /// docs/scripts-and-schemas.md.
    Command(RawStepCommand),
}

/// A program the file's bytes go through. Exit 0: its output is the file from here on (an
/// empty output is an empty file). A non-zero exit, a signal, its `timeout`, or processes it
/// leaves running when it exits quarantine the file, with the end of its stderr in the
/// reason; so does more output than its `max_output`. A program that cannot be started (missing, not executable) fails the run instead:
/// the file stays at the source for the next run (`wharf validate` warns of it).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStepCommand {
    /// Program and arguments, without a shell: `["gpg", "--batch", "--decrypt"]`. A program
    /// path with a `/` is relative to the flow file's folder, which is also the working
    /// folder; otherwise it is looked up in `PATH`. The arguments are passed as written (no
    /// templates, no `${env:…}`). Its environment has `WHARF_FLOW`, `WHARF_RUN`, `WHARF_FILE`
    /// (the file's name as this step gets it), the variables `pass_env` names, and the few of
    /// wharf's every program gets.
    #[schemars(length(min = 1))]
    pub run: Vec<String>,
    /// Variables of wharf's environment the program gets, by name (`[GNUPGHOME]`), besides
    /// `PATH`, `HOME`, `LANG`, `LC_*`, `TZ`, `TMPDIR`, `USER`, `LOGNAME` and `SHELL`, which it
    /// always gets. Nothing else of wharf's environment is passed on: it holds the secrets of
    /// every flow. A name wharf's environment lacks is left out (`wharf validate` warns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("uniqueItems" = true), inner(regex(pattern = super::raw::ENV_NAME_PATTERN)))]
    pub pass_env: Vec<String>,
    /// Longest the program may run on one file (a duration: `5m`); past it, it is killed
    /// with every process it started, and the file quarantined, the reason quoting the end
    /// of what it had written to stderr.
    #[serde(default = "default_step_command_timeout")]
    #[schemars(schema_with = "super::duration::schema")]
    pub timeout: String,
    /// Most the program may write for one file: bytes (`1048576`) or with a unit (`500MiB`,
    /// `10GiB`; KB = 1000, KiB = 1024). Once its output passes this, it is killed with every
    /// process it started, what it wrote is removed, and the file quarantined. The limit
    /// protects the state disk, which every flow sharing the state folder writes to, from a
    /// program that writes without end (`gunzip` of a decompression bomb fills any disk
    /// within its `timeout`); raise it for a partner whose files legitimately become larger.
    /// Default `10GiB`.
    #[serde(default = "default_max_output")]
    pub max_output: RawSize,
    /// The file's name after this step, a template of the name before it (variables `name`,
    /// `stem`, `ext`): `"{{stem}}"` makes `orders.csv.gpg` `orders.csv`, `"{{name}}.gz"`
    /// makes `orders.csv` `orders.csv.gz`. Later steps and the sinks' `name`, `stem` and
    /// `ext` see the new name. Default: the name is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn default_step_command_timeout() -> String {
    "5m".into()
}

/// A program's `max_output` unless the flow gives one (a `command` step's, `source.command`'s).
pub(super) fn default_max_output() -> RawSize {
    RawSize::Text("10GiB".into())
}

/// File checks. Every configured check must pass.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// Smallest acceptable size: bytes (`1024`) or with a unit (`10KB`, `5MiB`; KB = 1000, KiB = 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<RawSize>,
    /// Largest acceptable size, like `min_size` (`100MB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<RawSize>,
    /// Regular expression the file name must match (`'^ROSTER_\d{8}\.csv$'`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Refuse empty (zero-byte) files.
    #[serde(default)]
    pub non_empty: bool,
    /// The content must start with the signature of one of these types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub magic: Vec<MagicType>,
    /// A companion checksum file `NAME.sha256` or `NAME.md5` must exist beside the file (on the
    /// source) and match its content (`sha256sum` / `md5sum` output or the bare hex digest). Use
    /// `source.ready.done_file: "{{name}}.sha256"` so the file is only taken once the checksum is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ChecksumAlgo>,
}

/// A size: a number of bytes, or a string with a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawSize {
    /// Bytes.
    Bytes(u64),
    /// With a unit: `B`, `KB`, `MB`, `GB` (powers of 1000) or `KiB`, `MiB`, `GiB` (powers of 1024).
    Text(#[schemars(regex(pattern = SIZE_PATTERN))] String),
}

/// A size with a unit ([`RawSize::Text`]).
pub const SIZE_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$";

/// Content types recognised by their leading bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MagicType {
    /// `%PDF-`
    Pdf,
    /// `PK` local file header or empty archive.
    Zip,
    /// `1F 8B`
    Gzip,
    /// `89 50 4E 47 0D 0A 1A 0A`
    Png,
    /// `FF D8 FF`
    Jpeg,
    /// `<?xml` (after an optional UTF-8 byte-order mark).
    Xml,
}

/// Companion checksum algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumAlgo {
    /// `NAME.sha256`
    Sha256,
    /// `NAME.md5`
    Md5,
}

/// How the file is read as records.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawParse {
    /// `csv`, `json` (one array of objects, read element by element) or `jsonl` (one object per line).
    pub format: ParseFormat,
    // The CSV settings are `Option`s so that validation sees one written out on `json` or
    // `jsonl` even when it is the default; read them through the methods below.
    /// CSV: the first row names the columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub header: Option<bool>,
    /// CSV without a header row: the column names, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// CSV: field separator, one character (`;`, `\t` for tab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = ","))]
    pub delimiter: Option<String>,
    /// CSV: quote character, one character. Quoted fields may hold delimiters and line breaks;
    /// a doubled quote is a literal quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "\""))]
    pub quote: Option<String>,
    /// Text encoding of the file, as a WHATWG label: `utf-8` (default; a byte-order mark is
    /// dropped), `windows-1252`, `latin1` (read as Windows-1252, as browsers do), `iso-8859-15`,
    /// `utf-16le`, … Records are UTF-8 from here on.
    #[serde(default = "default_encoding")]
    pub encoding: String,
    /// CSV: the last row is a trailer (not a record) carrying the expected number of records.
    /// A trailer row (the marker, and a count) before the last row refuses the file: two
    /// files joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailer: Option<RawTrailer>,
}

impl RawParse {
    /// `header`, `true` when not given.
    pub fn header(&self) -> bool {
        self.header.unwrap_or(true)
    }

    /// `columns`, none when not given.
    pub fn columns(&self) -> &[String] {
        self.columns.as_deref().unwrap_or_default()
    }

    /// `delimiter`, `,` when not given.
    pub fn delimiter(&self) -> &str {
        self.delimiter.as_deref().unwrap_or(",")
    }

    /// `quote`, `"` when not given.
    pub fn quote(&self) -> &str {
        self.quote.as_deref().unwrap_or("\"")
    }

    /// The CSV-only settings written out in the flow file, in field order.
    pub fn csv_settings_given(&self) -> Vec<CsvSetting> {
        let given = [
            // `header: true` is the default.
            ("header", self.header),
            ("columns", self.columns.as_ref().map(Vec::is_empty)),
            ("delimiter", self.delimiter.as_ref().map(|d| d == ",")),
            ("quote", self.quote.as_ref().map(|q| q == "\"")),
            // No trailer is the default: one written out always asks for something.
            ("trailer", self.trailer.as_ref().map(|_| false)),
        ];
        CsvSetting::given(given)
    }
}

/// A CSV trailer row such as `TRAILER,1520`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTrailer {
    /// The trailer's first field (`TRAILER`). A file whose last row does not start with it is incomplete.
    pub marker: String,
    /// Which field (1 = first) holds the number of records.
    #[schemars(range(min = 1))]
    pub count_column: u32,
}

/// Record formats that can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParseFormat {
    /// Delimited text (`delimiter`, `quote`), its columns named by a header row or `columns`.
    Csv,
    /// One JSON array of objects, read element by element.
    Json,
    /// JSON Lines: one object per line.
    Jsonl,
}

/// Record validation and completeness rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawValidate {
    /// JSON Schema (draft 2020-12) every record must match, relative to the flow file. CSV
    /// values are text; where the schema's top-level `properties` declare `integer`, `number`
    /// or `boolean`, a value that reads as one is converted first, and an empty cell of a
    /// declared property counts as absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// CSV: columns the header must have (a missing one quarantines the file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_columns: Vec<String>,
    /// Name template of a companion file on the source (beside the data file) holding the
    /// expected number of records, e.g. `{{stem}}.count`. A different count quarantines the file.
    /// Never the data file's own name: not for the files an `include` pattern takes
    /// (`{{stem}}.csv` beside `*.csv`), nor, with `source.ignore_case`, their own in another
    /// case (`{{stem}}.CSV`), as for `ready.done_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count_file: Option<String>,
}

/// A Rhai mapping script.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMap {
    /// The script, relative to the flow file. It defines `fn map(record)` returning a map (one
    /// record), an array of maps (several) or `()` (drop the record). See docs/scripts-and-schemas.md.
    pub script: String,
    /// CSV tables the script can read with `lookup(TABLE, KEY)` / `lookup(TABLE, KEY, COLUMN)`,
    /// by name. Loaded once per run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lookups: BTreeMap<String, RawLookup>,
    /// Wall-clock limit for all records of one file (a duration). Past it the file is quarantined.
    #[serde(default = "default_map_timeout")]
    #[schemars(schema_with = "super::duration::schema")]
    pub timeout: String,
    /// Limit of script operations for one record (stops runaway loops).
    #[serde(default = "default_max_operations")]
    #[schemars(range(min = 1))]
    pub max_operations: u64,
}

/// A look-up table.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLookup {
    /// CSV file with a header row (UTF-8), relative to the flow file.
    pub file: String,
    /// The column whose value `lookup` matches.
    pub key: String,
    /// Field separator, one character (`;`, `\t` for tab).
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
}

/// How records are written for the sinks.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWrite {
    /// `csv`, `json` (one array) or `jsonl`. When it differs from the source file's extension,
    /// the sink name variables `name` and `ext` use the new extension (`roster.csv` → `roster.jsonl`).
    pub format: WriteFormat,
    /// CSV: the columns, in order; other keys of a record are left out. Default: the input
    /// header when there is no `map` step; from JSON input (no `map`), the keys of the first
    /// record written, in the order the file gives them; after a `map`, the keys of the first
    /// record (alphabetical, since script maps are sorted). A record with a key outside those
    /// is then invalid.
    /// An output of no records (a file with only a header, or every record dropped or
    /// rejected) still has its header line when the columns are known without a record:
    /// these `columns`, else the CSV input's header (no `map`). After a `map`, or from JSON
    /// input, without `columns` nothing says what the columns would be: such an output is
    /// empty, without a header line, and `wharf validate` warns of it. List `columns` when a
    /// partner's importer expects the header every time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// CSV: field separator, one character.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = ","))]
    pub delimiter: Option<String>,
    /// CSV: write a header row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub header: Option<bool>,
}

impl RawWrite {
    /// `columns`, none when not given.
    pub fn columns(&self) -> &[String] {
        self.columns.as_deref().unwrap_or_default()
    }

    /// `delimiter`, `,` when not given.
    pub fn delimiter(&self) -> &str {
        self.delimiter.as_deref().unwrap_or(",")
    }

    /// `header`, `true` when not given.
    pub fn header(&self) -> bool {
        self.header.unwrap_or(true)
    }

    /// The CSV-only settings written out in the flow file, in field order.
    pub fn csv_settings_given(&self) -> Vec<CsvSetting> {
        let given = [
            ("columns", self.columns.as_ref().map(Vec::is_empty)),
            ("delimiter", self.delimiter.as_ref().map(|d| d == ",")),
            ("header", self.header),
        ];
        CsvSetting::given(given)
    }
}

/// A CSV-only setting of `parse` or `write` that is written out in the flow file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvSetting {
    /// The field: `delimiter`, `header`, …
    pub field: &'static str,
    /// Written out at the value it has when left out (`delimiter: ","`, `header: true`,
    /// `columns: []`), so it asks for nothing.
    pub default: bool,
}

impl CsvSetting {
    /// The settings that are written out, from `(field, Some(at its default))` pairs (`None`:
    /// left out).
    fn given<const N: usize>(fields: [(&'static str, Option<bool>); N]) -> Vec<CsvSetting> {
        fields.into_iter().filter_map(|(field, default)| Some(CsvSetting { field, default: default? })).collect()
    }
}

/// Record formats that can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteFormat {
    /// Delimited text (`delimiter`), with a header row unless `header: false`.
    Csv,
    /// One JSON array of the records.
    Json,
    /// JSON Lines: one record per line.
    Jsonl,
}

/// Records written through Handlebars templates (files relative to the flow file). Two modes,
/// exactly one per step: `template` renders one document from all records (held in memory, up
/// to `max_records`); `row` renders each record as it comes (memory bounded by one record),
/// with an optional `header` before the first and `footer` after the last. Templates run in
/// strict mode: a field a template names but a record lacks makes that record invalid (with the
/// template's file, line and column), handled by `on_invalid` like any invalid record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRender {
    /// Whole-document mode: one template for the whole output, rendered after the last record
    /// with `records` (every record, in order), `count`, `sums` and `file`
    /// (e.g. `../templates/pricelist.xml.hbs`). Not with `header`/`row`/`footer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Streaming mode: rendered once before the first record, with `file`. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Streaming mode: rendered for every record, with `record`, `row` (1, 2, …) and `file`. Its
    /// output is written as is, so the template ends with the line break that ends a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<String>,
    /// Streaming mode: rendered once after the last record, with `count`, `sums` and `file`
    /// (a trailer such as `T;{{count}};{{sums.amount}}`). Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// Fields (dotted paths such as `price.net`) added up exactly, as decimals, over the records
    /// written: `sums.price.net` in the footer or document, as text keeping the largest number
    /// of decimals seen (`12.10` + `0.2` = `12.30`). An empty or absent value adds nothing; any
    /// other value that is not a number makes its record invalid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sums: Vec<String>,
    /// Whole-document mode: the most records a file may have (they are held in memory). A file
    /// with more is quarantined. Default 100000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_records: Option<u64>,
    /// What `{{value}}` does to the text it inserts. `{{{value}}}` always inserts it as is.
    #[serde(default)]
    pub escape: RenderEscape,
    /// Line breaks written for the line breaks *in the templates' own text* (values are written
    /// as they are): `lf` or `crlf`. A template saved with either kind gives the same output.
    #[serde(default)]
    pub line_ending: LineEnding,
    /// The output file's extension, which the delivered name takes (`prices.csv` → `prices.xml`).
    /// Default: the template's (or row template's) name without `.hbs`: `pricelist.xml.hbs` → `xml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

/// Escaping applied by `{{value}}` in templates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RenderEscape {
    /// Values are inserted as they are.
    #[default]
    None,
    /// HTML: `&`, `<`, `>`, `"`, `'`, `` ` `` and `=` become entities.
    Html,
    /// XML: `&`, `<`, `>`, `"` and `'` become `&amp;` `&lt;` `&gt;` `&quot;` `&apos;`.
    Xml,
}

/// Line breaks in template text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineEnding {
    /// Line feed only (LF; Unix).
    #[default]
    Lf,
    /// Carriage return and line feed (CR LF; Windows, many mainframe and EDI partners).
    Crlf,
}

/// Where quarantined files go.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawQuarantine {
    /// Name of an endpoint in `endpoints` (the source's, e.g. for `/incoming/rejected`, or a local one).
    pub endpoint: String,
    /// Folder on that endpoint; created when missing. An existing name gets a numeric suffix.
    /// Not the source folder; a flow's quarantine not a folder its sinks deliver into either
    /// (refused files would be taken as delivered there).
    pub path: String,
    /// Write `NAME.report.json` and `NAME.report.txt` (every error with row, field and message) beside the copy.
    /// A report name that would be longer than 255 bytes (the copy of a file with a long name) keeps
    /// the start of the name and its end (`….csv.report.json`) around a hash.
    #[serde(default = "default_true")]
    pub report: bool,
}

/// What invalid records do to their file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalid {
    /// Any invalid record quarantines the whole file.
    #[default]
    Quarantine,
    /// Invalid records go to a rejects file delivered beside the output; the others go on.
    /// Past `max_invalid` the file is quarantined after all.
    Skip,
}

/// A count (`10`) or a percentage of the records read (`"2.5%"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawMaxInvalid {
    /// At most this many invalid records.
    Count(u64),
    /// At most this share of the records read.
    Percent(#[schemars(extend("pattern" = PERCENT_PATTERN))] String),
}

/// What a percentage of `max_invalid` looks like (`2.5%`).
pub const PERCENT_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?%$";

fn default_true() -> bool {
    true
}
fn default_delimiter() -> String {
    ",".into()
}
fn default_encoding() -> String {
    "utf-8".into()
}
fn default_map_timeout() -> String {
    "10m".into()
}
fn default_max_operations() -> u64 {
    1_000_000
}

/// Gives each step key (`check`, `parse`, …) its variant's description: schemars documents the
/// one-key mapping, not the key, and the reference lists keys.
fn describe_step_keys(schema: &mut Schema) {
    if let Some(variants) = schema.get_mut("oneOf").and_then(|v| v.as_array_mut()) {
        for variant in variants {
            let Some(desc) = variant.get("description").cloned() else { continue };
            if let Some(props) = variant.get_mut("properties").and_then(|p| p.as_object_mut()) {
                for prop in props.values_mut() {
                    if let Some(p) = prop.as_object_mut() {
                        p.entry("description").or_insert(desc.clone());
                    }
                }
            }
        }
    }
}
