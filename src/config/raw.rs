//! The flow file as written: serde structs that mirror the YAML one to one.
//!
//! These types own the YAML shape, defaults and field documentation — the doc comments here
//! become `schemas/flow.schema.json` and `docs/flow-reference.md`. They do no checking beyond
//! shape (`deny_unknown_fields` everywhere); cross-field checks live in `validate.rs`, and
//! nothing here touches the network or the disk.

use std::collections::BTreeMap;

use super::secret::Secret;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

/// `history`: a duration or `forever`.
pub const HISTORY_PATTERN: &str = "^(forever|([0-9]+(ms|s|m|h|d))+)$";

/// The name of an environment variable (`pass_env`).
pub const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// A wharf flow: where files come from, where they go, and what happens to the source.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "wharf flow")]
pub struct RawFlow {
    /// Unique name of the flow (letters, digits, `-`, `_`, `.`; starting with a letter or
    /// digit). Keys the ledger: renaming a flow makes it forget which files it already delivered.
    #[schemars(extend("pattern" = FLOW_NAME_PATTERN))]
    pub name: String,
    /// Free text for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Named endpoints this flow uses. Names are referenced from `source`, `sinks` and `after`.
    pub endpoints: BTreeMap<String, RawEndpoint>,
    /// Where files are picked up.
    pub source: RawSource,
    /// Where each file is delivered (at least one). Every sink must confirm before the source is
    /// disposed of.
    #[schemars(length(min = 1))]
    pub sinks: Vec<RawSink>,
    /// What happens to the source file after it was delivered, or after it failed for good.
    #[serde(default)]
    pub after: RawAfter,
    /// What a failing file does to the rest of the run: `continue` (default) processes the
    /// other files; `stop` ends the run at the first failure (for flows that must keep order):
    /// no file after it is started (they are reported skipped, and taken by the next run), and
    /// nothing more is delivered, not even a file an earlier run left half-delivered; what
    /// delivers nothing still happens (the source of a file every sink has is moved or deleted).
    #[serde(default)]
    pub on_error: OnError,
    /// Files in flight at once in a run (1–64). Default: decided per run by the size of its
    /// biggest ready file: 16 for files over a MiB, 64 for files of up to a MiB. Always 1 with `on_error: stop`
    /// (files one after the other) and with an `identity` that leaves out the path (`sha256`,
    /// or size and time only: two files of one run may then be the same file, and the second
    /// must see the first delivered). Several files in flight overlap their round trips and
    /// share the ledger's fsyncs; each still goes through its own crash-safe lifecycle, and
    /// the run summary keeps the listing order. Over SFTP they share the endpoint's SSH
    /// connections (`max_connections`; one open file handle each on the server). Over FTP they take turns on the endpoint's
    /// logins (`max_connections`); when a run has a file bigger than 1 MiB (which holds a
    /// login for its whole transfer), `max_connections` caps it. Memory: a file of up to a
    /// MiB is held whole while it is read and written, and those bytes come from an 8 MiB
    /// budget per run (a file that does not fit waits, holding nothing), so more in flight
    /// costs no more memory; a bigger file takes about 1 MiB of buffers while it moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub concurrency: Option<u32>,
    /// Retries inside one run for transient errors (timeouts, dropped connections).
    #[serde(default)]
    pub retry: RawRetry,
    /// When problems are raised as events for notifications (`unreachable_after`).
    #[serde(default)]
    pub alerts: RawAlerts,
    /// How long the ledger remembers this flow's past (at least `1d`), or `forever`: its
    /// runs, the events notifications have sent, and the records of finished files that are
    /// no longer in the source folder — a file re-sent after that is taken as a new one. A
    /// file still in the source folder (`after.success: keep`) is remembered for as long as it
    /// is there, so it is never delivered twice. Awaited responses answered or expired go too;
    /// quarantined files, files in flight, responses still awaited (or answered but not yet
    /// disposed of on the partner's server), the newest run and the newest successful run are
    /// always kept; a flow with `expect:` keeps at least 8 days (an
    /// expected file's window reaches a week back). Checked after
    /// a run's listing, at most once a day. Default `90d` (a flow polled every minute records
    /// 1,440 runs a day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = HISTORY_PATTERN))]
    pub history: Option<String>,
    /// Content steps, applied in order to every file: `check`, then `parse`, then any
    /// `validate` / `map`, then `write`. Records stream through one at a time. Without steps
    /// files are delivered byte for byte. See docs/scripts-and-schemas.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<super::raw_steps::RawStep>,
    /// Where files the steps refuse are put aside, with reports. Required with `steps`.
    /// The source of a quarantined file is then disposed of as `after.failure` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<super::raw_steps::RawQuarantine>,
    /// What an invalid record (malformed, failing `validate`, or failing the `map` script)
    /// does to its file: `quarantine` (default) the whole file, or `skip` the record into a
    /// rejects file delivered beside the output (`NAME.rejects.csv`; past 255 bytes, the start
    /// of the name and its end around a hash).
    #[serde(default)]
    pub on_invalid: super::raw_steps::OnInvalid,
    /// With `on_invalid: skip`: the most invalid records a file may have, as a count (`10`) or
    /// a share of the records read (`"2%"`); past it the file is quarantined. Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_invalid: Option<super::raw_steps::RawMaxInvalid>,
    /// Await the partner's response to every delivered file (a round trip; docs/round-trips.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<super::raw_response::RawResponse>,
    /// When `wharf serve` runs this flow: a `cron` expression (in a `timezone`) or an interval
    /// (`every: 30m`), with optional `jitter` and `overlap`. Without it, `wharf serve` runs the
    /// flow only when triggered (and retries a triggered run that could not reach a server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<super::raw_schedule::RawSchedule>,
    /// Files this flow must have delivered by a time of day (`by: "06:00"`, `days: mon-fri`):
    /// `wharf serve` alerts when a deadline passes without a delivery in its window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<super::raw_schedule::RawExpect>,
    /// Notifications: who is told what about this flow, by webhook, email or command (in
    /// addition to the serve configuration's global `notify` rules). See docs/operations.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<super::raw_notify::RawNotifyRule>,
}

/// An endpoint: a place files live. `type` says which kind.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[schemars(transform = describe_endpoint_type)]
// A handful per flow, read once: boxing the sftp variant would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum RawEndpoint {
    /// A folder on this machine.
    Local {
        /// Root folder. Relative paths are relative to the flow file's folder. All flow paths
        /// on this endpoint stay inside it.
        root: String,
    },
    /// An SFTP server (SSH File Transfer Protocol).
    Sftp(RawSftp),
    /// An FTP server: FTPS (FTP over TLS) by default, plain FTP only when asked for
    /// (`tls: none`). Transfers are always binary (`TYPE I`), so bytes arrive unchanged.
    /// Modification times come from `MLSD` where the server offers it, else from `MDTM`, else
    /// from `LIST` (minute precision, server time zone).
    Ftp(RawFtp),
}

/// SFTP connection settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSftp {
    /// Host name or IP address. May use `${env:NAME}` / `${file:PATH}`.
    pub host: String,
    /// TCP port.
    #[serde(default = "default_ssh_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    /// Login name. May use `${env:NAME}` / `${file:PATH}`.
    pub user: String,
    /// How to log in.
    pub auth: RawSshAuth,
    /// How the server's host key is verified. There is no "trust anything" setting.
    pub host_key: RawHostKey,
    /// Absolute folder on the server that flow paths are relative to; nothing outside it is
    /// touched. As the login sees it: a server that keeps a login in a folder of its own
    /// (OpenSSH `ChrootDirectory`) shows that folder as `/`.
    #[serde(default = "default_sftp_root")]
    pub root: String,
    /// Longest wait for TCP connect, SSH handshake and login together (a duration: `20s`).
    #[serde(default = "default_connect_timeout")]
    #[schemars(schema_with = "super::duration::schema")]
    pub connect_timeout: String,
    /// Longest wait for any single SFTP request before the connection counts as dead (a
    /// duration: `60s`).
    #[serde(default = "default_op_timeout")]
    #[schemars(schema_with = "super::duration::schema")]
    pub operation_timeout: String,
    /// Most SSH connections open at once to this server (default 2). Requests and files of
    /// up to a MiB share the open connection (over four SFTP channels, each file in one
    /// round trip); a bigger file, streamed, gets a further connection while every open one
    /// is busy and the limit allows, which spreads big files over more server processes
    /// (OpenSSH encrypts each connection in one process) and more SSH and TCP windows (on
    /// the benchmark's machine two files of 256 MiB moved 20–25 % sooner over two
    /// connections than over one). A run of one file at a time logs in once. A server that limits sessions per user or
    /// address refuses the extra connection; the run then goes on with the ones it accepted,
    /// with one warning — set 1 for such a server. A server that allows one SFTP channel per
    /// login (OpenSSH `MaxSessions 1`) is logged in to twice for each connection.
    #[serde(default = "default_sftp_connections")]
    #[schemars(range(min = 1, max = 16))]
    pub max_connections: u32,
}

/// Credentials: `password`, or `private_key` (with its `passphrase` when it is encrypted), or
/// both: the key first, then the password, for a server that asks for both
/// (`AuthenticationMethods publickey,password`) or takes the password only.
/// `password` and `passphrase` may use `${env:NAME}` or `${file:PATH}` (relative to the flow
/// file; a leading byte-order mark and one trailing line break are dropped, and the value must
/// be one line) and never appear in logs or messages.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSshAuth {
    /// Password login. Prefer `${env:NAME}` or `${file:PATH}` to writing it here. Sent by the
    /// `password` method, or as the answer to the one hidden prompt of a server that takes
    /// passwords only by `keyboard-interactive` (PAM with `PasswordAuthentication no`); a
    /// server asking more (a second factor) is not answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Private key file (OpenSSH or PEM; Ed25519, RSA, ECDSA), relative to the flow file (`~/` is the home folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// Passphrase of an encrypted private key. Prefer `${env:NAME}` or `${file:PATH}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<Secret>,
}

/// Host key verification: exactly one of `known_hosts` or `fingerprint`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHostKey {
    /// OpenSSH known_hosts file (plain or hashed), relative to the flow file (`~/` is the home folder).
    /// `wharf trust HOST:PORT --known-hosts FILE` adds a server to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<String>,
    /// Pinned key fingerprint as `ssh-keygen -l` prints it: `SHA256:` and 43 base64 characters.
    /// Any of the server's host keys (ed25519, ECDSA, RSA) may be pinned: when the key the
    /// server shows first is not the pinned one, wharf asks for its others before refusing,
    /// and the refusal lists the fingerprints of every key the server has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// FTP / FTPS connection settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFtp {
    /// Host name or IP address. May use `${env:NAME}` / `${file:PATH}`. With TLS, the server
    /// certificate must be issued for this name (unless `fingerprint` pins it).
    pub host: String,
    /// TCP port. Default: 21, or 990 with `tls: implicit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// Login name. May use `${env:NAME}` / `${file:PATH}`.
    pub user: String,
    /// Password. Prefer `${env:NAME}` or `${file:PATH}` to writing it here; it never appears in
    /// logs or messages.
    pub password: Secret,
    /// How the connection is encrypted.
    #[serde(default)]
    pub tls: FtpTls,
    /// PEM file with the CA certificate(s) that issued the server's certificate, relative to
    /// the flow file. Default: the system's trusted CAs. Not with `fingerprint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Pinned SHA-256 fingerprint of the server certificate, for servers with a self-signed
    /// certificate: `SHA256:` and 64 hex digits (colons allowed), the digits alone, or the whole line `openssl
    /// x509 -noout -fingerprint -sha256` prints (`sha256 Fingerprint=…`). Only this certificate is accepted, whoever issued it,
    /// whatever name it carries and whatever its dates say (a pinned certificate past its
    /// expiry is still trusted: the pin is the trust; a renewed one has a new fingerprint). A refused certificate's fingerprint is in the error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Highest TLS version to negotiate: `1.3` (default) or `1.2`. For a server whose TLS 1.3
    /// fails (a data connection that cannot resume the control connection's session, or a
    /// handshake refused outright), and for many small files: each file is a data connection
    /// with a resumed TLS session of its own, which TLS 1.3 starts with a new key exchange and
    /// TLS 1.2 without one (about a quarter faster for thousands of small files against vsftpd,
    /// docs/performance.md). TLS 1.2 here is still AEAD ciphers with forward-secret key
    /// exchange on the control connection. Not with `tls: none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_max_version: Option<TlsVersion>,
    /// Passive mode (default): wharf opens the data connections (`EPSV`, falling back to `PASV`;
    /// to the server's address with the port offered, whatever address a `PASV` answer names,
    /// as curl does: a server behind NAT names one that cannot be reached; see
    /// `use_pasv_address`). `false`:
    /// active mode, the server connects back to wharf (`PORT`/`EPRT`), which needs this machine
    /// to be reachable from the server.
    #[serde(default = "default_true")]
    pub passive: bool,
    /// Absolute folder on the server that flow paths are relative to; nothing outside it is
    /// touched. Default: the folder the server logs the user into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Longest wait for TCP connect, TLS handshake and login together (a duration: `20s`).
    #[serde(default = "default_connect_timeout")]
    #[schemars(schema_with = "super::duration::schema")]
    pub connect_timeout: String,
    /// Longest wait for any reply, and longest time a data connection may go without moving a
    /// byte, before the connection counts as dead (a duration: `60s`).
    #[serde(default = "default_op_timeout")]
    #[schemars(schema_with = "super::duration::schema")]
    pub operation_timeout: String,
    /// Most logins open at once to this server (default 4). Each transfer needs a login of
    /// its own (FTP carries one transfer per control connection); files in flight take
    /// turns on them, and a run with a file bigger than 1 MiB keeps no more files in flight
    /// than this. Idle ones are kept for reuse. A server that limits sessions per user or
    /// address turns the extra logins away (421, or 530 while other logins of the run are
    /// open); the run then goes on with the logins it was given, with one warning. Set this
    /// to the server's limit to spare it the extra logins. Endpoints that log in to the same
    /// server as the same user (another `root`, a flow of its own) share that limit: a login
    /// turned away while another of them keeps idle logins closes those and tries again.
    #[serde(default = "default_max_connections")]
    #[schemars(range(min = 1, max = 16))]
    pub max_connections: u32,
    /// For a server that gives its file times in its own time zone where UTC is due (vsftpd's
    /// `MDTM` with `use_localtime=YES`, Debian's default; `wharf probe` says so): how far
    /// ahead of UTC those times are, with a sign — `-5h` for New York in winter, `+1h` for
    /// Paris in winter, `+5h30m` for India. Every time read from the server (`MDTM`, `MLSD`,
    /// `LIST`) is moved back by it, so that `min_age`, `stable_for` and the identity see UTC.
    /// The same all year: for a zone with summer time, set `time_zone` instead. Default: none
    /// (times are taken as UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_offset: Option<String>,
    /// For a server that gives its file times in its own time zone, a zone with summer time
    /// (`time_offset` is a fixed distance from UTC): its IANA name, as in `TZ` —
    /// `America/New_York`, `Europe/Berlin`. Every time read from the server is taken as that
    /// zone's wall clock at the time and moved to UTC; in the hour summer time ends, which the
    /// clock shows twice, the later of the two is taken (a file may wait an hour longer for
    /// `min_age`, never less). Not with `time_offset`. Default: none (times are taken as UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Open passive data connections to the address a `PASV` reply names instead of the
    /// server's own (the control connection's): only for a server that really serves data from
    /// another address (a cluster behind one name). Off by default, as in curl since 7.74: a
    /// server behind NAT names one that cannot be reached, and a hostile one could name any
    /// host. Only with `passive` (the default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_pasv_address: bool,
}

/// Encryption of an FTP connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FtpTls {
    /// Explicit FTPS: connect to the FTP port, then `AUTH TLS`; commands and data are encrypted.
    #[default]
    Explicit,
    /// Implicit FTPS: TLS from the first byte, usually on port 990.
    Implicit,
    /// Plain FTP: the password and every file travel unencrypted. Only for servers that offer
    /// nothing else, on networks you trust.
    None,
}

/// A TLS protocol version: `1.2` or `1.3` (quoted or not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(schema_with = "tls_version_schema")]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    V1_2,
    #[default]
    #[serde(rename = "1.3")]
    V1_3,
}

impl<'de> Deserialize<'de> for TlsVersion {
    /// `1.2` unquoted is a number in YAML: both spellings are taken.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Number(f64),
        }
        let text = match Written::deserialize(d)? {
            Written::Text(t) => t,
            Written::Number(n) => n.to_string(),
        };
        match text.as_str() {
            "1.2" => Ok(TlsVersion::V1_2),
            "1.3" => Ok(TlsVersion::V1_3),
            other => Err(serde::de::Error::custom(format!("`{other}` is not a TLS version wharf speaks: `1.2` or `1.3`"))),
        }
    }
}

fn tls_version_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "description": "A TLS protocol version: `1.2` or `1.3` (quoted or not).",
        // `const`s, as schemars writes enums: a wrong value is then reported as such, not as
        // a wrong endpoint `type` (config/schema.rs takes a failed `enum` for a discriminator).
        "oneOf": [
            { "const": "1.2", "description": "TLS 1.2 only." },
            { "const": 1.2 },
            { "const": "1.3", "description": "TLS 1.3, or 1.2 with a server that has no 1.3 (the default)." },
            { "const": 1.3 },
        ],
    })
}

/// Where files are picked up.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Name of an endpoint in `endpoints`.
    pub endpoint: String,
    /// Folder to poll, relative to the endpoint root (`/` is the root; `..` is refused). Which
    /// files in it are taken is `include`'s: `/incoming/*.csv` is refused, with the fix spelled
    /// out (`path: /incoming`, `include: ["*.csv"]`).
    pub path: String,
    /// Glob patterns (`*.csv`, `sub/**/*.xml`) matched against the path relative to `path`
    /// (`a.csv`, `sub/a.csv`: never starting with `/`, and without a `/` unless `recursive`;
    /// a pattern no such path can match is refused, as is a `!` meant to negate: that is
    /// `exclude`'s). A file is taken when it matches any. Default: every file (with `recursive`, at every
    /// level; a pattern of your own reaches into sub-folders with `**/`). A hidden file (its name, or
    /// a folder on its way, starts with `.`: where uploads in progress are written, wharf's
    /// `.NAME.part` among them) is taken only by a pattern that names hidden files, e.g. `.*`.
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    /// Glob patterns for files to leave alone, checked after `include` (matched as `include`'s are).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Match names whatever their case (Unicode, not only ASCII): `include` and `exclude`
    /// (`*.csv` then takes `ORDERS_1.CSV` and `orders_1.Csv` too), and the files that go with a
    /// data file, looked for in its folder: its `ready.done_file`, and the checksum and
    /// row-count files its steps read. Such a file is the one of the name its template gives
    /// when that is there, else the one file named like it ignoring case (`X.CSV.DONE` is
    /// `X.CSV`'s `{{name}}.done`; it is moved or deleted with it under its own name); two or
    /// more named like it (`x.csv.done` and `X.CSV.DONE`), none is taken for it and the file
    /// is not ready, its reason naming them. Which file it is is decided from the run's
    /// listing, once: the file is read, moved or deleted as listed, whatever the run's other
    /// files (several in flight) have moved since. None of them is ever taken as data,
    /// whatever its case. Names wharf writes (a sink's `name:` and trigger) keep the case of the name as
    /// listed. Default `false`: the case must match, a file taken only ignoring case is told
    /// of (`wharf plan`, the run report, a `not_taken` event) rather than left without a word,
    /// and so is a done file there only in another case (in its file's not-ready reason).
    #[serde(default)]
    pub ignore_case: bool,
    /// Descend into sub-folders, up to `max_depth` levels below `path`. A sub-folder the login
    /// may not read is skipped with a warning (the source folder itself stops the run), and
    /// named, with one deeper than `max_depth`, by `wharf plan` and every run's report (`1
    /// folder of the source not listed in whole: /in/locked (…)`). A symbolic link to a folder
    /// is never followed (no loop, nothing taken twice under another path). Files
    /// are delivered by name, flat: `/in/a/x.csv` and `/in/b/x.csv` both as `x.csv` (one per
    /// run; with `if_exists: rename` the second as `x-1.csv`) unless a sink keeps the tree
    /// with `path: "/out/{{rel_dir}}"`; a sink that sets neither is warned of (`name:
    /// "{{name}}"` says flat is meant).
    #[serde(default)]
    pub recursive: bool,
    /// Deepest sub-folder level visited when `recursive` (1 = direct sub-folders). A folder
    /// below it is not listed, and named by `wharf plan` and the run's report (`/in/2026/12/07
    /// (deeper than `source.max_depth` (2): …)`; in `--json`, `unlisted_folders`, `reason`
    /// `too_deep`): not an error, no notice (a hidden one is not named unless `include` names
    /// hidden files).
    #[serde(default = "default_max_depth")]
    #[schemars(range(min = 1))]
    pub max_depth: u32,
    /// The most files one run starts (at least 1; default: no cap). A backlog (a partner's
    /// 50,000 files, a week wharf was down) is then taken over several runs, each short enough
    /// to report and to leave room for the flow's next schedule; the rest are left untouched
    /// for the next run, counted in its report (`3 left for the next run (max_files 100)`) and
    /// shown by `wharf plan` (`later: max_files 100 reached`): not an error, no notice. What
    /// counts is the files the run would start: ready, not delivered before nor a duplicate,
    /// not held back (a round trip's request waiting for its turn; one the run's look for
    /// responses lets go, sent after that look, takes one of the places the files sent first
    /// left, and with none left waits for the next run, where, no longer held back, it goes
    /// first if a stopped run had left it in flight: the look comes after the files start, and
    /// a place kept for a request it may not let go would hold the backlog up). Files a stopped
    /// run left in flight go first, those whose source is no longer listed (it was being moved
    /// or deleted) included, whatever is left to do of them (their disposal alone counts): the
    /// listed files wait while these take the places, and those they do not reach stay in
    /// flight for the next run; then the oldest by modification time (then by path; a file whose time
    /// the listing does not show goes after those whose time it shows), so a backlog drains in
    /// the order it arrived. Times are to the second over SFTP and over FTP with `MLSD` or
    /// `MDTM` (vsftpd's `LIST` is refined by `MDTM`); a server that offers neither lists
    /// minutes (only the day for files older than about six months), and files of one minute
    /// (or day) are then taken by path. This chooses which files a run takes; it starts them
    /// in listing order, as a run without a cap does; a file that failed before, or that the login could not read, goes
    /// after the files not tried yet, so that a few failing files do not hold the backlog up.
    /// Done, checksum and row-count files go with their data file and are not counted. Under
    /// `wharf serve`, a run that left files for the next run, failed none and delivered (or
    /// quarantined) some is followed at once by the next one, not at the next scheduled time
    /// (while the files left grow fewer: a backlog that does not shrink waits for the schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_files: Option<u32>,
    /// When a file counts as complete. Default: no checks — but on a `local` endpoint
    /// (Linux), whatever the rules, a file some process still has open for writing is not
    /// ready (`still open for writing by another process`), asked once per run of each file
    /// no rule holds back. Not seen: a writer that closes the file between writes (`>>` once
    /// per line), a file of another user when wharf lacks `CAP_LEASE`, a file system without
    /// leases (NFS, some FUSE); there, and on servers, these rules are what tells.
    #[serde(default)]
    pub ready: RawReady,
    /// What makes two sightings "the same file": any of `path`, `size`, `mtime` (default: all
    /// three), or `[sha256]` alone (content: a re-sent file with the same bytes is not
    /// delivered again, whatever its name or time; combining it with the others is refused
    /// because content identity already implies them or deliberately ignores them).
    #[serde(default = "default_identity")]
    #[schemars(length(min = 1), extend("uniqueItems" = true))]
    pub identity: Vec<IdentityField>,
    /// A command run at the start of every run whose standard output becomes a new file in
    /// the source folder (an export from an internal system). The folder must be on a `local`
    /// endpoint; the file is then taken like any other, so a file a failed delivery left there
    /// is retried on the next run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<RawCommand>,
}

/// A command that produces the file to send.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    /// Program and arguments, without a shell: `["./export-prices.sh", "--since", "yesterday"]`.
    /// A program path with a `/` is relative to the flow file's folder, which is also the
    /// working folder. Its environment has `WHARF_FLOW` and `WHARF_RUN`, the variables
    /// `pass_env` names, and the few of wharf's every program gets (the arguments are passed
    /// as written: `${env:…}` is not expanded here).
    #[schemars(length(min = 1))]
    pub run: Vec<String>,
    /// Variables of wharf's environment the command gets, by name (`[PGPASSWORD]`), besides
    /// `PATH`, `HOME`, `LANG`, `LC_*`, `TZ`, `TMPDIR`, `USER`, `LOGNAME` and `SHELL`, which it
    /// always gets. Nothing else of wharf's environment is passed on: it holds the secrets of
    /// every flow. A name wharf's environment lacks is left out (`wharf validate` warns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("uniqueItems" = true), inner(regex(pattern = ENV_NAME_PATTERN)))]
    pub pass_env: Vec<String>,
    /// Name template of the file written into the source folder (`prices-{{date
    /// "YYYYMMDD-HHmmss"}}.csv`). Variables: `run`, and the `date` helper. It is written under
    /// a dot-prefixed temporary name and renamed once the command succeeded. The name must be
    /// one the source's `include` and `exclude` take, or the output would never be sent.
    pub name: String,
    /// Longest the command may run (a duration: `5m`); past it, it is killed with every
    /// process it started, and the run aborted, quoting the end of what it had written to
    /// stderr (what it was waiting for: a password prompt, a lock).
    #[serde(default = "default_command_timeout")]
    #[schemars(schema_with = "super::duration::schema")]
    pub timeout: String,
    /// Most the command may write: bytes (`1048576`) or with a unit (`500MiB`, `10GiB`; KB =
    /// 1000, KiB = 1024). Its output file's size is checked while it runs (every 100 ms, and
    /// when it ends): past this, it is killed with every process it started, its partial
    /// output removed, and the run aborted; no file is sent. The limit protects the source
    /// folder's disk from an export that writes without end (it would fill that disk within
    /// its `timeout`); raise it for an export that legitimately grows larger. Default `10GiB`.
    #[serde(default = "super::raw_steps::default_max_output")]
    pub max_output: super::raw_steps::RawSize,
    /// Keep an empty output as a file to send. Default: a command that prints nothing
    /// produces no file.
    #[serde(default)]
    pub keep_empty: bool,
}

/// Readiness checks; all configured ones must pass.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReady {
    /// Minimum age of the file's modification time (a duration: `2m`), as the server gives the
    /// time and wharf's clock reads it: a server clock behind wharf's by some seconds makes a
    /// file look that much older (taken that much sooner after its last write; not held back
    /// at all when behind by `min_age` or more), and one ahead makes it look younger. A file
    /// whose time is ahead of wharf's clock is taken once runs have seen it unchanged (size
    /// and time) for `min_age`, so a clock far ahead delays it by no more than that.
    /// `wharf probe --write` measures the server's clock; `time_zone`/`time_offset` correct
    /// times given in the server's zone; `stable_for` relies on wharf's clock alone. A file
    /// the server gives no time for is taken once runs have seen it unchanged (size) for
    /// `min_age`: the first sighting is never ready (unless `min_age: 0s`), a later run takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::duration::schema")]
    pub min_age: Option<String>,
    /// Size and mtime must be unchanged across polls for at least this long (a duration:
    /// `30s`). The first sighting is never ready; a later run takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::duration::schema")]
    pub stable_for: Option<String>,
    /// Name template of a companion file that must exist, e.g. `{{name}}.done` or
    /// `{{stem}}.ok`: a name of its own for each data file, never one every file shares nor
    /// the data file's own name (a companion is never taken as data): not for the files an
    /// `include` pattern takes either (`{{stem}}.csv` beside `*.csv`), nor, with
    /// `source.ignore_case`, their own in another case (`{{stem}}.CSV` beside `*.csv`). It
    /// is disposed of together with the data file. A done file modified more than a minute
    /// before the data file may be left from an earlier version of it
    /// (with `after.success: keep` done files stay too), or be a new one that kept an old
    /// time: it is not trusted alone, and the file is taken once a later poll finds it
    /// unchanged. The name is matched exactly unless `source.ignore_case` is set (then a done
    /// file named like it but for case counts, when it is the only one): without it, a done
    /// file there only in another case (`X.CSV.DONE` for `X.CSV.done`) does not count, and the
    /// file's not-ready reason says it is there (`no done file "X.CSV.done" yet ("X.CSV.DONE"
    /// is there: done-file names are matched exactly; …)`). A file named exactly as another
    /// data file's done file is that file's, never one in another case: `X.CSV.DONE` is
    /// `X.CSV`'s beside `x.csv` and `x.csv.done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_file: Option<String>,
}

/// An identity component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentityField {
    /// The path relative to the source folder.
    Path,
    /// Size in bytes.
    Size,
    /// Modification time.
    Mtime,
    /// SHA-256 of the content (the file is downloaded to decide).
    Sha256,
}

/// A delivery target.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    /// Name of an endpoint in `endpoints`.
    pub endpoint: String,
    /// Target folder, relative to the endpoint root; created when missing. May be a name
    /// template (`/inbox/{{date "YYYY"}}`); `..` is refused. `/inbox/{{rel_dir}}` keeps a
    /// `recursive` source's tree: `/in/a/x.csv` goes to `/inbox/a/x.csv` (sub-folders created
    /// as needed, always under `/inbox`), `/in/x.csv` to `/inbox/x.csv`.
    #[serde(default = "default_sink_path")]
    pub path: String,
    /// Target file name template (Handlebars). Variables: `name`, `stem`, `ext`, `rel_dir`,
    /// `size`, `run`; helper `date` (`{{date "YYYYMMDD"}}`, run start time, UTC). `ext` is
    /// the last extension without its dot, empty when there is none; a `.` written right
    /// before `{{ext}}` is left out with it, in every name template: `{{stem}}-{{run}}.{{ext}}`
    /// names `README` `README-7`, not `README-7.`. A plain file name, never a path (`{{rel_dir}}`
    /// is one two folders down, `a/b`: a name that holds it there is warned of): to keep a
    /// `recursive` source's sub-folders, put `{{rel_dir}}` into `path` instead. Not set with a
    /// `recursive` source, a warning says that files of sub-folders arrive side by side under
    /// their own names; writing `name: "{{name}}"` says that is meant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", extend("default" = "{{name}}"))]
    pub name: Option<String>,
    /// Name template the file is written under before the final rename (same variables as
    /// `name`; must differ from it). By default `.{{name}}.FLOW.part`, FLOW being the flow's
    /// name: hidden, and never the temporary file of another flow sending a file of the same
    /// name into the same folder. One a real file may have (neither starting with `.` nor
    /// marked as temporary, like `{{name}}.tmp`) is a warning: it is written over, and removed
    /// if the upload fails. Not used when a local folder on the staging folder's file
    /// system takes the staged file by renaming it straight to its final name (atomic, so
    /// never partial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_name: Option<String>,
    /// Write straight under the final name: no temporary name, no rename. For partners whose
    /// servers refuse renames or take a file the moment it is closed, whatever its name. While
    /// the upload runs the partner sees part of the file under its final name, so pair it
    /// with a `trigger` when the partner can wait for one. The size is still verified, and a
    /// run resumed after a crash writes the file again over what it left. Not with
    /// `temp_name`, nor on a local folder (which always takes a file by rename).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub direct: bool,
    /// What to do when the target already exists. Files of one run that this sink would give
    /// the same name (a `name` without `{{name}}`/`{{stem}}`, such as `import.csv`) go one per
    /// run, the oldest (by modification time) first; the others wait in the source folder for
    /// later runs (reported not ready, with the file that took the name). Not with `rename`,
    /// which gives each of them a free name of its own.
    #[serde(default)]
    pub if_exists: IfExists,
    /// Name template of a trigger (done) file written beside each delivered file, for partners
    /// that act on a file the moment its trigger appears: `{{name}}.done`, `{{stem}}.ok`. It is
    /// written (empty, itself under a temporary name, then renamed) only after the data file is
    /// complete and verified under its final name, and counts as part of the delivery. Same
    /// variables as `name`, where `name`/`stem`/`ext` are those of the delivered file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

/// Exists-policy for a sink target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IfExists {
    /// Fail the file: `after.failure` applies (with `keep`, the default, it is tried again on the next run, and delivered once the name is free).
    #[default]
    Fail,
    /// Replace the existing file.
    Overwrite,
    /// Deliver as `stem-1.ext`, `stem-2.ext`, … (the first free name; chosen again when
    /// somebody else takes it before the rename). A name that would grow past the 255 bytes
    /// a file name may have (less what the sink's `trigger` adds to it: `{{name}}.done`
    /// leaves 250) loses the end of its stem to the `-1`; the extension stays.
    Rename,
    /// Do not deliver; count the file as delivered to this sink.
    Skip,
}

/// Dispositions of the source file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAfter {
    /// After every sink confirmed. Default `keep`.
    #[serde(default = "default_keep")]
    pub success: RawDisposition,
    /// After a permanent failure (not after a transient one: that is retried). Default `keep`.
    /// `delete` deletes only a file a copy of which is in quarantine; any other failed file
    /// (refused by a sink, say) stays at the source and is tried again on the next run.
    /// Either way, a source written to or replaced since it was read (another size or time:
    /// the partner's new version) is neither moved nor deleted: the next run takes it.
    #[serde(default = "default_keep")]
    pub failure: RawDisposition,
}

impl Default for RawAfter {
    fn default() -> Self {
        RawAfter { success: RawDisposition::Keep, failure: RawDisposition::Keep }
    }
}

/// `keep`, `delete`, or `{move_to: FOLDER}` (on the source endpoint; created when missing;
/// an existing name gets a numeric suffix, never overwritten; over FTP, where a name cannot
/// end in a space, a file's trailing spaces become `_` there: `a.csv ` → `a.csv_`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[schemars(transform = describe_move_to)]
pub enum RawDisposition {
    /// Leave the file where it is (the ledger prevents a second delivery).
    Keep,
    /// Remove the file from the source. Its folder stays, even when emptied: with a
    /// `recursive` source, the partner's sub-folders (`/out/2026/12/07/`) are left for the
    /// partner to clear, and each is listed again by every run.
    Delete,
    /// Move the file into this folder on the source endpoint.
    MoveTo(String),
}

/// Run-level error policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Go on with the other files.
    #[default]
    Continue,
    /// Stop the run at the first failed file: nothing more is delivered in the run.
    Stop,
}

/// Retry of transient errors within a run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts per file per run, the first included (at least 1).
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 1))]
    pub attempts: u32,
    /// Delay before the second attempt (a duration: `2s`); doubles each time (with jitter).
    #[serde(default = "default_backoff")]
    #[schemars(schema_with = "super::duration::schema")]
    pub backoff: String,
    /// Runs in which a file may fail for a passing reason (timeouts, dropped connections, a
    /// server or a local folder with no room left: those are not retried within the run) before wharf gives it up: it is then quarantined when it was fully downloaded and the
    /// flow has a `quarantine`, otherwise marked failed with `after.failure` applied — either
    /// way a `quarantined`/`failed` event is raised. `0` retries for ever.
    #[serde(default = "default_give_up_after")]
    pub give_up_after: u32,
}

impl Default for RawRetry {
    fn default() -> Self {
        RawRetry { attempts: default_attempts(), backoff: default_backoff(), give_up_after: default_give_up_after() }
    }
}

fn default_give_up_after() -> u32 {
    10
}

/// When problems become events for `notify:` (see docs/operations.md).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    /// Runs in a row that cannot reach an endpoint before an `unreachable` event is raised
    /// (once per outage; the first good run after it raises `recovered`). At least 1.
    #[serde(default = "default_unreachable_after")]
    #[schemars(range(min = 1))]
    pub unreachable_after: u32,
}

impl Default for RawAlerts {
    fn default() -> Self {
        RawAlerts { unreachable_after: default_unreachable_after() }
    }
}

fn default_unreachable_after() -> u32 {
    3
}

/// JSON-Schema pattern of a flow name.
pub const FLOW_NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]*$";

/// Whether `name` matches [`FLOW_NAME_PATTERN`] (letters, digits, `-`, `_` and `.`, starting
/// with a letter or digit: also a safe file name, never a path).
pub fn is_flow_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn default_ssh_port() -> u16 {
    22
}
fn default_sftp_root() -> String {
    "/".into()
}
fn default_connect_timeout() -> String {
    "20s".into()
}
fn default_op_timeout() -> String {
    "60s".into()
}
fn default_true() -> bool {
    true
}
fn default_max_connections() -> u32 {
    4
}

fn default_sftp_connections() -> u32 {
    2
}

pub(crate) fn default_include() -> Vec<String> {
    vec!["*".into()]
}
fn default_max_depth() -> u32 {
    8
}
fn default_identity() -> Vec<IdentityField> {
    vec![IdentityField::Path, IdentityField::Size, IdentityField::Mtime]
}
fn default_command_timeout() -> String {
    "10m".into()
}
fn default_sink_path() -> String {
    "/".into()
}
/// The name of a sink that sets none: the file's own.
pub(super) fn default_name() -> String {
    "{{name}}".into()
}
/// The temporary name of a sink that sets none, in flow `flow`: hidden, and the flow's own.
pub(super) fn default_temp_name(flow: &str) -> String {
    format!(".{{{{name}}}}.{flow}.part")
}
fn default_keep() -> RawDisposition {
    RawDisposition::Keep
}
fn default_attempts() -> u32 {
    3
}
fn default_backoff() -> String {
    "1s".into()
}

/// Gives the `type` tag of each endpoint variant a description (schemars leaves it bare).
fn describe_endpoint_type(schema: &mut Schema) {
    for_each_variant(schema, |variant| {
        let kind = variant.pointer("/properties/type/const").and_then(|c| c.as_str()).map(str::to_owned);
        if let (Some(kind), Some(tag)) = (kind, variant.pointer_mut("/properties/type").and_then(|t| t.as_object_mut())) {
            tag.insert("description".into(), format!("Endpoint kind: `{kind}`.").into());
        }
    });
}

/// Gives `move_to` a description (schemars documents the variant, not its field).
fn describe_move_to(schema: &mut Schema) {
    for_each_variant(schema, |variant| {
        if let Some(field) = variant.pointer_mut("/properties/move_to").and_then(|t| t.as_object_mut()) {
            field.insert(
                "description".into(),
                "Relative to the endpoint root; created when missing. Must not be the source folder (nor inside it when \
                 `recursive`): moved files would be picked up again; nor a folder a sink delivers into. Files of a \
                 `recursive` source's sub-folders land in it side by side, by name (`/in/a/x.csv` and `/in/b/x.csv` as \
                 `x.csv` and `x-1.csv`); their sub-folders stay, even when emptied."
                    .into(),
            );
        }
    });
}

fn for_each_variant(schema: &mut Schema, mut f: impl FnMut(&mut serde_json::Value)) {
    if let Some(variants) = schema.get_mut("oneOf").and_then(|v| v.as_array_mut()) {
        variants.iter_mut().for_each(&mut f);
    }
}
