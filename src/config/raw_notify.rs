//! The `notify:` list as written — in a flow file, and (reused by the serve configuration) in
//! the global one: serde + schemars types that mirror the YAML one to one, like `raw.rs`.
//!
//! Shape only: secrets, URLs, addresses, templates, durations and "exactly one channel" are
//! checked by `validate/notify.rs`; sending lives in `crate::notify`.

use std::collections::BTreeMap;

use super::secret::Secret;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A notification rule: which notices, how often, and where to — exactly one of `webhook`,
/// `email` or `command`. See docs/operations.md.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotifyRule {
    /// The kinds of notice sent: `failed` (a run failed or was aborted), `quarantined` (a
    /// file), `unreachable` (an endpoint, several runs in a row), `recovered` (the first good
    /// run after `failed` or `unreachable` was announced), `missing` (an expected file not
    /// there by its deadline), `overdue`, `late` and `expired` (awaited responses),
    /// `not_taken` (a file in the source folder that can never be taken: its name is not safe
    /// to use, or it is a symbolic link or another special file; or a subfolder the listing
    /// cannot read; or a file the login has not been allowed to read for an hour; `unsafe_name`
    /// is accepted for it), `summary` (every run's summary). `all` is every kind but `summary`.
    #[schemars(length(min = 1))]
    pub on: Vec<NoticeKindName>,
    /// A notice with the same flow, kind and subject as one this rule sent less than this long
    /// ago is held back and counted (a duration: `1h`; `0s` holds nothing back). When the
    /// window ends, the latest notice held back is sent (under `wharf serve`), saying how many
    /// others were; a new one arriving first goes out instead, with the count (a daemon that
    /// stops or crashes first sends it at the stop, or else at its next start). `recovered` is
    /// never held back.
    #[serde(default = "default_throttle")]
    #[schemars(schema_with = "super::duration::schema")]
    pub throttle: String,
    /// Send an HTTP POST with a JSON body (Slack, Teams, or any JSON endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<RawWebhook>,
    /// Send an email over SMTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<RawEmail>,
    /// Run a command with the notice as JSON on its stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<RawNotifyCommand>,
}

/// A kind of notice, or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKindName {
    /// Every kind below except `summary`.
    All,
    /// A run failed or was aborted.
    Failed,
    /// A file was quarantined (subject: its path; with the report's summary).
    Quarantined,
    /// An endpoint could not be reached several runs in a row.
    Unreachable,
    /// The first good run after `failed` or `unreachable` was announced. Never held back.
    Recovered,
    /// An expected file was not there by its deadline.
    Missing,
    /// An awaited response was not there by its deadline.
    Overdue,
    /// An awaited response arrived after its deadline.
    Late,
    /// An awaited response was given up (`expire_after`).
    Expired,
    /// An entry in the source folder the globs match can never be taken: its name is not safe
    /// to use (a line break or another control character, `..`, bytes that are not UTF-8), or
    /// it is not a regular file (a symbolic link, a FIFO…); or a subfolder of a recursive
    /// source the listing cannot read (`source folder /in/x cannot be read: CAUSE`: nothing
    /// under it is taken); once while it stays. Also a file the login has not been allowed to
    /// read for an hour since the first refusal (its permissions; it is taken once readable):
    /// once. (`unsafe_name`, its first name, is accepted.)
    #[serde(alias = "unsafe_name")]
    NotTaken,
    /// The summary of every run (opt-in: not part of `all`).
    Summary,
}

impl NoticeKindName {
    /// The snake_case name (as in [`crate::notify::KINDS`]).
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKindName::All => "all",
            NoticeKindName::Failed => "failed",
            NoticeKindName::Quarantined => "quarantined",
            NoticeKindName::Unreachable => "unreachable",
            NoticeKindName::Recovered => "recovered",
            NoticeKindName::Missing => "missing",
            NoticeKindName::Overdue => "overdue",
            NoticeKindName::Late => "late",
            NoticeKindName::Expired => "expired",
            NoticeKindName::NotTaken => "not_taken",
            NoticeKindName::Summary => "summary",
        }
    }
}

/// A webhook: an HTTP POST of a JSON body, over http or https. `HTTPS_PROXY` / `NO_PROXY`
/// are honoured. Redirects are not followed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// The URL. A secret (Slack and Teams hook URLs are credentials): prefer `${env:NAME}` or
    /// `${file:PATH}`; it never appears in logs or messages (only its host does).
    pub url: Secret,
    /// The body: `json` (default: the notice's fields with `text` and `held_back`), `slack`
    /// (`{"text": …}`), or `teams` (an adaptive-card message for a Teams Workflows webhook).
    #[serde(default)]
    pub format: WebhookFormat,
    /// A Handlebars template file for a custom body, relative to the flow file; it must
    /// render JSON. It sees `kind`, `flow`, `at`, `subject`, `detail`, `seq`, `run`, `facts`,
    /// `text` and `held_back`; `{{x}}` is escaped for inside a JSON string, `{{json x}}`
    /// writes any value as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Extra request headers (`Authorization: "Bearer ${env:TOKEN}"`). Values are secrets and
    /// may use `${env:NAME}` / `${file:PATH}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Secret>,
    /// An extra trusted CA certificate (PEM file, relative to the flow file), besides the
    /// system's: for an https URL whose server certificate your own CA issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Longest wait for the whole exchange (a duration: `10s`).
    #[serde(default = "default_webhook_timeout")]
    #[schemars(schema_with = "super::duration::schema")]
    pub timeout: String,
}

/// The body format of a webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The notice's fields (`kind`, `flow`, `at`, `subject`, `detail`, `seq`, `run`, `facts`)
    /// with `text` (the one-line summary) and `held_back`.
    #[default]
    Json,
    /// `{"text": …}` for a Slack incoming webhook (or Mattermost, Rocket.Chat).
    Slack,
    /// A message with one adaptive card, for a Teams Workflows ("post to a channel when a
    /// webhook request is received") webhook.
    Teams,
}

/// An email over SMTP: a plain-text message to every address in `to`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    /// SMTP server (relay) host name or address. May use `${env:NAME}` / `${file:PATH}`.
    pub server: String,
    /// TCP port. Default: 587 with `starttls`, 465 with `implicit`, 25 with `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// `starttls` (default: plain connection upgraded with STARTTLS, which is required),
    /// `implicit` (TLS from the start, "SMTPS"), or `none` (only for a relay on this machine:
    /// `localhost`, `127.0.0.1`, `::1`).
    #[serde(default)]
    pub tls: SmtpTls,
    /// Log in (AUTH PLAIN or LOGIN) as this user; needs `password`. May use `${env:NAME}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password of `username`. Prefer `${env:NAME}` or `${file:PATH}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// An extra trusted CA certificate (PEM file, relative to the flow file), besides the
    /// system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// The sender: `wharf <wharf@example.com>` or `wharf@example.com`.
    pub from: String,
    /// The recipients (at least one).
    #[schemars(length(min = 1))]
    pub to: Vec<String>,
    /// A Handlebars template of the subject over the notice's fields (`[wharf] {{flow}}
    /// {{kind}}`). Default: the notice's one-line text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Longest wait for the whole exchange with the server (a duration: `30s`).
    #[serde(default = "default_email_timeout")]
    #[schemars(schema_with = "super::duration::schema")]
    pub timeout: String,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Connect in plain text and upgrade with STARTTLS, which the server must offer (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS" (port 465).
    Implicit,
    /// No encryption: only for a relay on this machine (port 25).
    None,
}

/// A command run for every notice, with the notice as JSON on stdin and `WHARF_EVENT` (the
/// kind) and `WHARF_FLOW` in its environment. A non-zero exit counts as a failure.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotifyCommand {
    /// Program and arguments (no shell). A program with a `/` is relative to the flow file's
    /// folder, which is also the working folder; otherwise it is looked up in `PATH`. The
    /// arguments are passed as written (`${env:…}` is not expanded here: name the variable in
    /// `pass_env` and read it from the environment).
    #[schemars(length(min = 1))]
    pub run: Vec<String>,
    /// Variables of wharf's environment the command gets, by name (`[TICKET_TOKEN]`), besides
    /// `PATH`, `HOME`, `LANG`, `LC_*`, `TZ`, `TMPDIR`, `USER`, `LOGNAME` and `SHELL`, which it
    /// always gets. Nothing else of wharf's environment is passed on: it holds the secrets of
    /// every flow. A name wharf's environment lacks is left out (`wharf validate` warns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("uniqueItems" = true), inner(regex(pattern = super::raw::ENV_NAME_PATTERN)))]
    pub pass_env: Vec<String>,
    /// After this long the command is killed with every process it started (a duration:
    /// `30s`); the failure logged quotes the end of what it had written to stderr. Processes
    /// it leaves running in the background when it exits are killed too: send the
    /// notification in the foreground.
    #[serde(default = "default_command_timeout")]
    #[schemars(schema_with = "super::duration::schema")]
    pub timeout: String,
}

fn default_throttle() -> String {
    "1h".into()
}

fn default_webhook_timeout() -> String {
    "10s".into()
}

fn default_email_timeout() -> String {
    "30s".into()
}

fn default_command_timeout() -> String {
    "30s".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_agree_with_notify_kinds() {
        let all: Vec<NoticeKindName> = serde_json::from_value(serde_json::json!(crate::notify::KINDS)).unwrap();
        for kind in all.iter().chain([NoticeKindName::All].iter()) {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        let schema = serde_json::to_value(schemars::schema_for!(NoticeKindName)).unwrap();
        let variants = schema["oneOf"].as_array().or(schema["enum"].as_array()).map(Vec::len);
        assert_eq!(variants, Some(crate::notify::KINDS.len() + 1), "{schema}");
    }

    /// `not_taken` was first called `unsafe_name`: a rule that says so still works.
    #[test]
    fn unsafe_name_is_read_as_not_taken() {
        let kinds: Vec<NoticeKindName> = serde_yaml::from_str("[unsafe_name, not_taken]").unwrap();
        assert_eq!(kinds, [NoticeKindName::NotTaken, NoticeKindName::NotTaken]);
    }
}
