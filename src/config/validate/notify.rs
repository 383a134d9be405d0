//! Meaning checks on a `notify:` list — a flow's, or (through [`validate_notify`]) the serve
//! configuration's — and the building of its [`Rule`]s.
//!
//! A child of `validate/mod.rs`, so it uses the same [`Checker`]: secrets with `${env:…}` /
//! `${file:…}` like endpoint credentials, durations, paths relative to the flow file. Every
//! problem carries its YAML path under the given prefix (`/notify/0/webhook/url`). Messages
//! never quote a secret (a webhook URL, a header value, a password). It reads the webhook
//! template and `ca_file` to check them; it never connects.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{Checker, checked};
use crate::config::diagnostic::Problem;
use crate::config::interpolate::Lookup;
use crate::config::locate::escape;
use crate::config::raw_notify::{NoticeKindName, RawEmail, RawNotifyCommand, RawNotifyRule, RawWebhook, SmtpTls, WebhookFormat};
use crate::config::secret::Secret;
use crate::notify::{Channel, CommandSpec, EmailSpec, JsonTemplate, KINDS, Rule, TextTemplate, WebhookSpec};

/// Checks a `notify:` list whose YAML path is `at` (`/notify` in a flow file) in `file` and
/// builds its rules, or returns every problem. Relative paths (templates, `ca_file`,
/// commands) and `${file:…}` resolve against `lookup.base_dir`; `file` names each rule in
/// logs ([`Rule::origin`]). A `None` rule is one whose shape was wrong (already reported):
/// the others are still checked, and no rules are built.
pub fn validate_notify(
    rules: impl IntoIterator<Item = impl Into<Option<RawNotifyRule>>>,
    file: &Path,
    at: &str,
    lookup: &Lookup<'_>,
) -> Result<Vec<Rule>, Vec<Problem>> {
    let mut c = Checker::new(lookup);
    let built = c.notify(at, rules.into_iter().map(Into::into).collect(), file);
    match built {
        Some(rules) if c.problems.is_empty() => Ok(rules),
        _ => Err(c.problems),
    }
}

impl Checker<'_, '_> {
    /// Checks every rule (`None` items are malformed, already reported) of `file`; `None` when
    /// any is unusable.
    pub(super) fn notify(&mut self, at: &str, rules: Vec<Option<RawNotifyRule>>, file: &Path) -> Option<Vec<Rule>> {
        let built: Vec<Option<Rule>> = rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.and_then(|r| self.notify_rule(&format!("{at}/{i}"), r, origin(file, at, i))))
            .collect();
        built.into_iter().collect()
    }

    fn notify_rule(&mut self, at: &str, raw: RawNotifyRule, origin: String) -> Option<Rule> {
        if raw.on.is_empty() {
            self.problem(format!("{at}/on"), "must list at least one kind of notice (or `all`)");
        }
        let on: BTreeSet<String> = raw
            .on
            .iter()
            .flat_map(|k| match k {
                NoticeKindName::All => KINDS.iter().copied().filter(|k| *k != "summary").collect::<Vec<_>>(),
                other => vec![other.as_str()],
            })
            .map(str::to_string)
            .collect();
        let throttle = self.ok(&format!("{at}/throttle"), crate::config::duration::parse(&raw.throttle));
        let set = [raw.webhook.is_some(), raw.email.is_some(), raw.command.is_some()].iter().filter(|s| **s).count();
        if set != 1 {
            let what = if set == 0 { "set one of" } else { "set only one of" };
            self.problem(
                at,
                format!("{what} `webhook`, `email` or `command`: a rule sends to exactly one channel (write more rules for more channels)"),
            );
            return None;
        }
        let channel = match (raw.webhook, raw.email, raw.command) {
            (Some(w), _, _) => self.webhook(&format!("{at}/webhook"), w).map(Channel::Webhook),
            (_, Some(e), _) => self.email(&format!("{at}/email"), e).map(Channel::Email),
            (_, _, Some(c)) => self.notify_command(&format!("{at}/command"), c).map(Channel::Command),
            _ => None,
        };
        if on.is_empty() {
            return None;
        }
        Some(Rule { on, throttle: throttle?, channel: channel?, origin })
    }

    fn webhook(&mut self, at: &str, raw: RawWebhook) -> Option<WebhookSpec> {
        let url_at = format!("{at}/url");
        let mut https = true;
        let url = self.credential(&url_at, raw.url.expose(), true).and_then(|url| {
            if self.unresolved(&url_at) {
                return Some(Secret::new(url));
            }
            // The URL is a secret: messages describe it, never quote it.
            match reqwest::Url::parse(&url) {
                Err(e) => {
                    self.problem(&url_at, format!("is not a valid URL ({e})"));
                    None
                }
                Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                    self.problem(&url_at, format!("must be an http or https URL, not `{}:`", u.scheme()));
                    None
                }
                // `https:///T0K3N` parses with the token as its host (URL parsers skip the
                // extra slash), which labels and logs then show.
                Ok(u) if !authority_written(&url) => {
                    self.problem(
                        &url_at,
                        format!(
                            "has no host: write it as `{}://host/…` (as written, the start of the path would be taken for the \
                             host, and shown in logs)",
                            u.scheme()
                        ),
                    );
                    None
                }
                Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                    self.problem(&url_at, "has no host");
                    None
                }
                Ok(u) => {
                    https = u.scheme() == "https";
                    Some(Secret::new(url))
                }
            }
        });
        let ca_file = self.ca_file(&format!("{at}/ca_file"), raw.ca_file, https.then_some(()).ok_or("an http URL"));
        if raw.template.is_some() && raw.format != WebhookFormat::Json {
            self.problem(format!("{at}/format"), "`template` gives the whole body: leave `format` out when using it");
        }
        let template = raw.template.map(|file| {
            let t_at = format!("{at}/template");
            if file.is_empty() {
                self.problem(&t_at, "must not be empty");
                return None;
            }
            let path = self.lookup.resolve_path(&file);
            let text = self.ok(
                &t_at,
                crate::config::inputs::read_to_string(&path)
                    .map_err(|e| format!("cannot read template `{}`: {}", path.display(), crate::endpoint::local::io_reason(&e))),
            )?;
            self.ok(&t_at, JsonTemplate::new(&text, &file))
        });
        let mut headers = Vec::new();
        let mut headers_ok = true;
        for (name, value) in &raw.headers {
            let h_at = format!("{at}/headers/{}", escape(name));
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.problem(&h_at, format!("`{name}` is not a valid HTTP header name"));
                headers_ok = false;
                continue;
            }
            match self.credential(&h_at, value.expose(), false) {
                Some(v) if reqwest::header::HeaderValue::from_str(&v).is_err() => {
                    self.problem(&h_at, "is not a valid header value (line breaks and control characters are not allowed)");
                    headers_ok = false;
                }
                Some(v) => headers.push((name.clone(), Secret::new(v))),
                None => headers_ok = false,
            }
        }
        let timeout = self.positive_duration(&format!("{at}/timeout"), &raw.timeout);
        Some(WebhookSpec {
            url: url?,
            format: raw.format,
            template: checked(template)?,
            headers: headers_ok.then_some(headers)?,
            ca_file: ca_file?,
            timeout: timeout?,
        })
    }

    fn email(&mut self, at: &str, raw: RawEmail) -> Option<EmailSpec> {
        let server = self.credential(&format!("{at}/server"), &raw.server, true);
        if let Some(server) = &server
            && !self.unresolved(&format!("{at}/server"))
            && raw.tls == SmtpTls::None
            && !is_loopback(server)
        {
            self.problem(
                format!("{at}/tls"),
                format!(
                    "`tls: none` sends messages (and any password) in clear: it is allowed only for a relay on this machine \
                     (`localhost`, `127.0.0.1`, `::1`), not `{server}`; use `starttls` or `implicit`"
                ),
            );
        }
        let username = raw.username.as_deref().map(|u| self.credential(&format!("{at}/username"), u, true));
        let password = raw.password.as_ref().map(|p| self.secret(&format!("{at}/password"), p.expose(), None).map(Secret::new));
        match (&username, &password) {
            (Some(_), None) => self.problem(at, "`username` needs a `password`"),
            (None, Some(_)) => self.problem(format!("{at}/password"), "`password` is used only with `username`"),
            _ => {}
        }
        let ca_file = self.ca_file(&format!("{at}/ca_file"), raw.ca_file, (raw.tls != SmtpTls::None).then_some(()).ok_or("`tls: none`"));
        let from = self.mailbox(&format!("{at}/from"), "from", &raw.from);
        if raw.to.is_empty() {
            self.problem(format!("{at}/to"), "must list at least one address");
        }
        let to: Vec<_> = raw.to.iter().enumerate().map(|(i, t)| self.mailbox(&format!("{at}/to/{i}"), "to", t)).collect();
        let subject = raw.subject.map(|s| self.ok(&format!("{at}/subject"), TextTemplate::new(&s)));
        let timeout = self.positive_duration(&format!("{at}/timeout"), &raw.timeout);
        let default_port = match raw.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        };
        let (username, password) = (checked(username)?, checked(password)?);
        if username.is_some() != password.is_some() {
            return None;
        }
        Some(EmailSpec {
            server: server?,
            port: raw.port.unwrap_or(default_port),
            tls: raw.tls,
            username,
            password,
            ca_file: ca_file?,
            from: from?,
            to: to.into_iter().collect::<Option<Vec<_>>>().filter(|t| !t.is_empty())?,
            subject: checked(subject)?,
            timeout: timeout?,
        })
    }

    /// An extra trusted CA file for a TLS channel: resolved against the flow's folder, read,
    /// and checked to hold at least one PEM certificate. `tls` is `Err(what)` when the channel
    /// does not use TLS (then `ca_file` has no effect: a mistake worth saying).
    fn ca_file(&mut self, at: &str, raw: Option<String>, tls: Result<(), &str>) -> Option<Option<PathBuf>> {
        let file = match (raw, tls) {
            (None, _) => return Some(None),
            (Some(_), Err(what)) => {
                self.problem(at, format!("`ca_file` has no effect with {what}"));
                return None;
            }
            (Some(file), Ok(())) => file,
        };
        if file.is_empty() {
            self.problem(at, "must not be empty");
            return None;
        }
        let path = self.lookup.resolve_path(&file);
        let check = crate::config::inputs::read(&path)
            .map_err(|e| format!("cannot read `{}`: {}", path.display(), crate::endpoint::local::io_reason(&e)))
            .and_then(|pem| match rustls::pki_types::CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
                Ok(certs) if !certs.is_empty() => Ok(()),
                Ok(_) => Err(format!("`{}` holds no PEM certificate", path.display())),
                Err(e) => Err(format!("`{}` is not a PEM certificate: {e}", path.display())),
            });
        self.ok(at, check).map(|()| Some(path))
    }

    /// An address of `from` or `to`; `field` names it in the message.
    fn mailbox(&mut self, at: &str, field: &str, text: &str) -> Option<lettre::message::Mailbox> {
        let parsed = text.parse::<lettre::message::Mailbox>().map_err(|e| {
            use lettre::address::AddressError as E;
            // Said in plain words by the error's kind: lettre's own ("Invalid input") says
            // neither what is wrong nor what to write.
            let why = match e {
                E::MissingParts => " (the part before or after the `@` is missing)",
                E::Unbalanced => " (a `<` or `>` has no partner)",
                E::InvalidUser => " (the part before the `@` is not valid)",
                E::InvalidDomain => " (the part after the `@` is not a valid domain)",
                _ => "",
            };
            format!("`{text}` is not an email address{why}: `{field}` takes `name@example.com` or `Name <name@example.com>`")
        });
        self.ok(at, parsed)
    }

    fn notify_command(&mut self, at: &str, raw: RawNotifyCommand) -> Option<CommandSpec> {
        let timeout = self.positive_duration(&format!("{at}/timeout"), &raw.timeout);
        let pass_env = self.pass_env(at, &raw.pass_env);
        let (program, args) = self.run_line(at, &raw.run)?;
        Some(CommandSpec { program, args, pass_env: pass_env?, dir: self.lookup.resolve_path("."), timeout: timeout? })
    }
}

/// Where the rule at position `i` of the list at `at` was written, for logs:
/// `flows/orders.yaml notify[1]` (the file as it was given; positions from 0, as in YAML paths).
fn origin(file: &Path, at: &str, i: usize) -> String {
    format!("{} {}[{i}]", file.display(), at.trim_start_matches('/').replace('/', "."))
}

/// `url` writes a host right after `scheme://`: not `https:///…` (nothing there), nor
/// `https:host`, `https:/host` or `https:\\host`, which URL parsers read as a host all the
/// same. Tabs and line breaks are left out first, as URL parsers do.
fn authority_written(url: &str) -> bool {
    let url: String = url.trim_matches(|c: char| c <= ' ').chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    let Some((_, rest)) = url.split_once(':') else { return false };
    rest.strip_prefix("//").and_then(|r| r.chars().next()).is_some_and(|c| !matches!(c, '/' | '\\' | '?' | '#'))
}

/// `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::config::raw::RawFlow;
    use crate::config::validate::validate;

    fn env(name: &str) -> Result<String, std::env::VarError> {
        match name {
            "HOOK" => Ok("https://hooks.example.com/services/T0/B0/s3cret".into()),
            "PASS" => Ok("hunter2".into()),
            "EMPTY" => Ok(String::new()),
            _ => Err(std::env::VarError::NotPresent),
        }
    }

    fn check(dir: &Path, yaml: &str) -> Result<Vec<Rule>, Vec<String>> {
        let rules: Vec<RawNotifyRule> = serde_json::from_value(serde_yaml::from_str(yaml).unwrap()).unwrap();
        validate_notify(rules, &dir.join("f.yaml"), "/notify", &Lookup { base_dir: dir, env: &env })
            .map_err(|p| p.into_iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn builds_every_channel_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alert.json.hbs"), r#"{"t": "{{text}}"}"#).unwrap();
        let rules = check(
            dir.path(),
            r#"
- on: [all]
  webhook: { url: "${env:HOOK}", format: slack, headers: { Authorization: "Bearer ${env:PASS}" } }
- on: [failed, summary]
  throttle: 0s
  email: { server: smtp.example.com, username: alerts, password: "${env:PASS}", from: "wharf <wharf@example.com>", to: [ops@example.com] }
- on: [quarantined]
  command: { run: [scripts/alert.sh, --flag] }
- on: [missing]
  webhook: { url: "http://127.0.0.1:9/x", template: alert.json.hbs }
- on: [late]
  email: { server: localhost, tls: none, from: w@example.com, to: [a@example.com, b@example.com] }
"#,
        )
        .unwrap();
        assert_eq!(rules[0].on.len(), 9);
        assert!(rules[0].matches("recovered") && !rules[0].matches("summary"));
        assert_eq!(rules[0].throttle, Duration::from_secs(3600));
        let Channel::Webhook(w) = &rules[0].channel else { panic!() };
        assert_eq!(
            (w.url.expose(), w.format, w.timeout),
            ("https://hooks.example.com/services/T0/B0/s3cret", WebhookFormat::Slack, Duration::from_secs(10))
        );
        assert_eq!((w.headers[0].0.as_str(), w.headers[0].1.expose()), ("Authorization", "Bearer hunter2"));
        assert_eq!(
            (rules[1].on.iter().map(String::as_str).collect::<Vec<_>>(), rules[1].throttle),
            (vec!["failed", "summary"], Duration::ZERO)
        );
        let Channel::Email(e) = &rules[1].channel else { panic!() };
        assert_eq!((e.port, e.tls, e.username.as_deref(), e.to.len()), (587, SmtpTls::Starttls, Some("alerts"), 1));
        assert_eq!(e.from.to_string(), "wharf <wharf@example.com>");
        let Channel::Command(c) = &rules[2].channel else { panic!() };
        assert_eq!(
            (c.program.as_path(), c.args.as_slice(), c.timeout),
            (dir.path().join("scripts/alert.sh").as_path(), &["--flag".to_string()][..], Duration::from_secs(30))
        );
        let Channel::Webhook(w) = &rules[3].channel else { panic!() };
        assert!(w.template.is_some());
        let Channel::Email(e) = &rules[4].channel else { panic!() };
        assert_eq!((e.port, e.to.len()), (25, 2));
        let debug = format!("{rules:?}");
        assert!(!debug.contains("s3cret") && !debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn reports_every_problem_with_its_path_and_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.hbs"), r#"{"t": {{text}} }"#).unwrap();
        let p = check(
            dir.path(),
            r#"
- on: [failed]
- on: [failed]
  webhook: { url: "ftp://hooks.example.com/s3cret" }
  command: { run: [x] }
- on: []
  throttle: 1x
  webhook: { url: "not a url s3cret", format: teams, template: bad.hbs, headers: { "Bad Name": x, X-Token: "${env:NOPE}" }, timeout: 0s }
- on: [failed]
  webhook: { url: "ftp://hooks.example.com/s3cret" }
- on: [failed]
  email: { server: smtp.example.com, tls: none, password: "${env:PASS}", ca_file: ca.pem, from: "not an address", to: [], subject: "{{#if}}" }
- on: [failed]
  email: { server: smtp.example.com, username: u, ca_file: missing.pem, from: a@example.com, to: [b@example.com, "@"] }
- on: [failed]
  command: { run: [""], timeout: "5" }
- on: [failed]
  webhook: { url: "http://hooks.example.com/s3cret", ca_file: ca.pem }
- on: [failed]
  webhook: { url: "https:///s3cret" }
- on: [failed]
  webhook: { url: "https:s3cret/x?token=s3cret" }
"#,
        )
        .unwrap_err();
        let want = [
            "set one of `webhook`, `email` or `command`: a rule sends to exactly one channel (write more rules for more channels) (at /notify/0)",
            "set only one of `webhook`, `email` or `command`: a rule sends to exactly one channel (write more rules for more channels) (at /notify/1)",
            "must list at least one kind of notice (or `all`) (at /notify/2/on)",
            "`1x` is not a duration: unknown unit `x` (write e.g. `500ms`, `30s`, `2m`, `1h30m`, `1d`) (at /notify/2/throttle)",
            "is not a valid URL (relative URL without a base) (at /notify/2/webhook/url)",
            "`template` gives the whole body: leave `format` out when using it (at /notify/2/webhook/format)",
            "template `bad.hbs` does not give valid JSON",
            "`Bad Name` is not a valid HTTP header name (at /notify/2/webhook/headers/Bad Name)",
            "environment variable `NOPE` is not set (at /notify/2/webhook/headers/X-Token)",
            "`0s` is zero; give a positive duration (at /notify/2/webhook/timeout)",
            "must be an http or https URL, not `ftp:` (at /notify/3/webhook/url)",
            "`tls: none` sends messages (and any password) in clear: it is allowed only for a relay on this machine (`localhost`, `127.0.0.1`, `::1`), not `smtp.example.com`; use `starttls` or `implicit` (at /notify/4/email/tls)",
            "`password` is used only with `username` (at /notify/4/email/password)",
            "`ca_file` has no effect with `tls: none` (at /notify/4/email/ca_file)",
            "`not an address` is not an email address: `from` takes `name@example.com` or `Name <name@example.com>` (at /notify/4/email/from)",
            "must list at least one address (at /notify/4/email/to)",
            "bad template \"{{#if}}\"",
            "`username` needs a `password` (at /notify/5/email)",
            "cannot read `",
            "(at /notify/5/email/to/1)",
            "`5` is not a duration: a unit is missing (write e.g. `500ms`, `30s`, `2m`, `1h30m`, `1d`) (at /notify/6/command/timeout)",
            "must name a program (at /notify/6/command/run/0)",
            "`ca_file` has no effect with an http URL (at /notify/7/webhook/ca_file)",
            // Were accepted with `s3cret` as the host, shown in the channel's label.
            "has no host: write it as `https://host/…` (as written, the start of the path would be taken for the host, and shown in \
             logs) (at /notify/8/webhook/url)",
            "has no host: write it as `https://host/…`",
        ];
        for (got, want) in p.iter().zip(want) {
            assert!(got.starts_with(want) || got.ends_with(want), "{got:?} should match {want:?}\n{p:#?}");
        }
        assert_eq!(p.len(), want.len(), "{p:#?}");
        assert!(!p.concat().contains("s3cret") && !p.concat().contains("hunter2"), "{p:#?}");
    }

    /// A secret written inline around a `${…}` that is unset or empty is never quoted: an unset
    /// one is named alone, an empty one leaves the inline text (so the value is not empty),
    /// and a value that does come out empty is made of references alone, which are all that
    /// its message quotes.
    #[test]
    fn a_secret_mixed_with_a_reference_is_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let p = check(
            dir.path(),
            r#"
- on: [failed]
  webhook: { url: "https://hooks.example.com/T0/s3cret${env:NOPE}" }
- on: [failed]
  webhook: { url: "https://hooks.example.com/T0/s3cret${env:EMPTY}", headers: { X-Token: "s3cret${env:NOPE}" } }
- on: [failed]
  webhook: { url: "${env:EMPTY}${env:EMPTY}" }
- on: [failed]
  email: { server: "${env:EMPTY}", username: u, password: "s3cret${env:NOPE}", from: a@example.com, to: [b@example.com] }
"#,
        )
        .unwrap_err();
        assert_eq!(
            p,
            [
                "environment variable `NOPE` is not set (at /notify/0/webhook/url)",
                "environment variable `NOPE` is not set (at /notify/1/webhook/headers/X-Token)",
                "`${env:EMPTY}${env:EMPTY}` resolves to an empty value (at /notify/2/webhook/url)",
                "`${env:EMPTY}` resolves to an empty value (at /notify/3/email/server)",
                "environment variable `NOPE` is not set (at /notify/3/email/password)",
            ]
        );
    }

    /// Logs tell rules apart by where they are written, not by their (secret) URLs: two
    /// Slack hooks to one host were both `webhook to hooks.slack.com`.
    #[test]
    fn each_rule_is_named_by_its_file_and_position() {
        let dir = tempfile::tempdir().unwrap();
        let rules =
            check(dir.path(), "- on: [failed]\n  webhook: { url: \"${env:HOOK}\" }\n- on: [failed]\n  webhook: { url: \"${env:HOOK}\" }\n")
                .unwrap();
        let file = dir.path().join("f.yaml");
        let names: Vec<String> = rules.iter().map(|r| r.notifier().unwrap().describe()).collect();
        assert_eq!(
            names,
            [
                format!("{} notify[0] (webhook to hooks.example.com)", file.display()),
                format!("{} notify[1] (webhook to hooks.example.com)", file.display())
            ]
        );
        assert_ne!(rules[0], rules[1], "a rule moved in its list is another rule (its name changed)");
        assert!(!names.concat().contains("s3cret") && !names.concat().contains("services"), "{names:?}");
    }

    /// Said in plain words naming the field (was: "`x@` is not an email address (Invalid
    /// input)", lettre's own words).
    #[test]
    fn a_bad_address_says_what_the_field_takes() {
        let dir = tempfile::tempdir().unwrap();
        let p = check(dir.path(), "- on: [failed]\n  email: { server: localhost, tls: none, from: \"wharf\", to: [\"x@\", \"a@-b.c\"] }\n")
            .unwrap_err();
        assert_eq!(
            p,
            [
                "`wharf` is not an email address: `from` takes `name@example.com` or `Name <name@example.com>` (at /notify/0/email/from)",
                "`x@` is not an email address: `to` takes `name@example.com` or `Name <name@example.com>` (at /notify/0/email/to/0)",
                "`a@-b.c` is not an email address (the part after the `@` is not a valid domain): `to` takes `name@example.com` or `Name <name@example.com>` (at /notify/0/email/to/1)",
            ]
        );
    }

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["10.0.0.1", "smtp.example.com", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn a_flow_carries_its_rules() {
        let yaml = "name: f
endpoints: { l: { type: local, root: ./x } }
source: { endpoint: l, path: /in }
sinks: [ { endpoint: l, path: /out } ]
notify:
  - on: [failed]
    command: { run: [notify-send] }
  - on: [failed]
";
        let raw: RawFlow = serde_json::from_value(serde_yaml::from_str(yaml).unwrap()).unwrap();
        let lookup = Lookup { base_dir: Path::new("/flows"), env: &env };
        let p = validate(raw.clone(), Path::new("/flows/f.yaml"), &lookup).flow.unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].yaml_path, "/notify/1");
        let ok: RawFlow =
            serde_json::from_value(serde_yaml::from_str(yaml.trim_end().trim_end_matches("  - on: [failed]")).unwrap()).unwrap();
        let flow = validate(ok, Path::new("/flows/f.yaml"), &lookup).flow.unwrap();
        let Channel::Command(c) = &flow.notify[0].channel else { panic!() };
        assert_eq!((c.program.as_path(), c.dir.as_path()), (Path::new("notify-send"), Path::new("/flows")));
    }

    #[test]
    fn a_host_is_written_after_the_scheme() {
        for ok in ["https://hooks.example.com/x", "http://127.0.0.1:8080", " https://h/x ", "https://user:pw@h/x"] {
            assert!(authority_written(ok), "{ok}");
        }
        for bad in ["https:///T", "https:T", "https:/T", "https:\\\\T", "https://\t/T", "https://?t", "https://", "no-colon"] {
            assert!(!authority_written(bad), "{bad}");
        }
    }
}
