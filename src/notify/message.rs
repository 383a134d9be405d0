//! What a notice says: the one-line text ([`Notice::text`]), the JSON, Slack and Teams webhook
//! bodies, the email body, and user templates (Handlebars) for webhook bodies and email
//! subjects.
//!
//! Owns the wording and the variables templates see: every field of the [`Notice`] (`kind`,
//! `flow`, `at`, `subject`, `detail`, `seq`, `run`, `facts`), plus `text` (the one-line
//! summary, with the held-back count) and `held_back`. It does not send anything.

use std::fmt;
use std::sync::Arc;

use handlebars::{Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason};
use serde_json::{Value, json};

use super::Notice;

const NAME: &str = "t";
/// Longest detail kept in the one-line text (the full detail is in the other fields).
const TEXT_DETAIL_MAX: usize = 300;

/// How a `not_taken` notice or event (`wharf events`) of a subfolder the source's listing
/// could not read tells it: recorded as `/in/locked/` (`endpoint::listing::unreadable_folder`),
/// it is the folder it is, `source folder /in/locked`, that `cannot be read` (its detail says
/// why), not a file that "can never be taken". `None` for any other subject or kind.
pub fn unreadable_source_folder(kind: &str, subject: &str) -> Option<(String, &'static str)> {
    let folder = (kind == "not_taken").then(|| crate::endpoint::listing::as_unreadable_folder(subject)).flatten()?;
    Some((format!("source folder {folder}"), "cannot be read"))
}

impl Notice {
    /// A one-line human summary: `wharf: flow roster-import: file in/a.csv quarantined: row 3:
    /// … (all of it and what next: `wharf quarantine show roster-import in/a.csv`)`. The detail
    /// is cut to its first line and a few hundred characters.
    pub fn text(&self) -> String {
        let subject = self.subject.as_str();
        let folder = unreadable_source_folder(&self.kind, subject);
        let (prefix, verb) = match self.kind.as_str() {
            "quarantined" => ("file ", "quarantined"),
            "unreachable" => ("endpoint ", "unreachable"),
            "missing" => ("expected file ", "missing"),
            "overdue" => ("response to ", "overdue"),
            "late" => ("response to ", "arrived late"),
            "expired" => ("response to ", "given up (expired)"),
            "not_taken" => ("", "can never be taken"),
            other => ("", other),
        };
        let what = match (folder, self.kind.as_str(), subject.is_empty()) {
            (Some((folder, verb)), ..) => format!("{folder} {verb}"),
            (None, "summary", true) => "run summary".to_string(),
            (None, "summary", false) => format!("run summary for {subject}"),
            (None, "failed", true) => "run failed".to_string(),
            (None, _, true) => verb.to_string(),
            (None, _, false) => format!("{prefix}{subject} {verb}"),
        };
        let mut text = String::from("wharf: ");
        if !self.flow.is_empty() {
            text.push_str(&format!("flow {}: ", self.flow));
        }
        text.push_str(&what);
        let detail = self.detail.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        if !detail.is_empty() {
            text.push_str(": ");
            if detail.chars().count() > TEXT_DETAIL_MAX {
                text.extend(detail.chars().take(TEXT_DETAIL_MAX));
                text.push('…');
            } else {
                text.push_str(detail);
            }
        }
        if self.kind == "quarantined" && !self.flow.is_empty() && !subject.is_empty() {
            // The next step: the full report, and what to do with the copy (reprocess,
            // release), is one command away; the detail gives the first reason only. A
            // refused response is not one of the flow's files: `quarantine show` has it not.
            let (flow, path) = (crate::text::shell_word(&self.flow), crate::text::shell_word(subject));
            if self.detail.starts_with(crate::engine::RESPONSE_REFUSED) {
                let rflow = crate::config::flow::response_flow_name(&self.flow);
                let rflow = crate::text::shell_word(&rflow);
                text.push_str(&format!(
                    " (the reports are beside the copy: `wharf quarantine list {rflow}`; the request: `wharf awaits {flow}`)"
                ));
            } else {
                text.push_str(&format!(" (all of it and what next: `wharf quarantine show {flow} {path}`)"));
            }
        }
        text
    }

    /// [`Notice::text`] followed by `(N similar notices held back)` when `held_back` > 0.
    pub fn text_with(&self, held_back: u32) -> String {
        match held_back {
            0 => self.text(),
            1 => format!("{} (1 similar notice held back)", self.text()),
            n => format!("{} ({n} similar notices held back)", self.text()),
        }
    }

    /// What templates and JSON bodies see: the notice's fields, `text` and `held_back`.
    pub fn context(&self, held_back: u32) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        if let Value::Object(map) = &mut v {
            map.insert("text".into(), Value::String(self.text_with(held_back)));
            map.insert("held_back".into(), json!(held_back));
        }
        v
    }
}

/// The `json` webhook body: the notice with `text` and `held_back`.
pub fn json_body(notice: &Notice, held_back: u32) -> Value {
    notice.context(held_back)
}

/// A Slack incoming-webhook body: `{"text": …}`.
pub fn slack_body(notice: &Notice, held_back: u32) -> Value {
    json!({ "text": notice.text_with(held_back) })
}

/// A Teams body for a Workflows (Power Automate) "post to a channel when a webhook request is
/// received" flow: a message with one adaptive card, the text as its title and the fields as
/// facts.
pub fn teams_body(notice: &Notice, held_back: u32) -> Value {
    let mut facts = vec![json!({ "title": "Kind", "value": notice.kind })];
    for (title, value) in [("Flow", &notice.flow), ("Subject", &notice.subject), ("Detail", &notice.detail)] {
        if !value.is_empty() {
            facts.push(json!({ "title": title, "value": value }));
        }
    }
    facts.push(json!({ "title": "At", "value": notice.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true) }));
    if held_back > 0 {
        facts.push(json!({ "title": "Held back", "value": format!("{held_back} similar notices") }));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    { "type": "TextBlock", "text": notice.text_with(held_back), "wrap": true, "weight": "Bolder" },
                    { "type": "FactSet", "facts": facts },
                ],
            },
        }],
    })
}

/// The plain-text body of a notification email: the one-line text, then every field.
pub fn email_body(notice: &Notice, held_back: u32) -> String {
    let mut body = format!("{}\n\n", notice.text_with(held_back));
    let mut line = |name: &str, value: &str| {
        if !value.is_empty() {
            body.push_str(&format!("{name:<9}{value}\n"));
        }
    };
    line("Flow:", &notice.flow);
    line("Kind:", &notice.kind);
    line("Subject:", &notice.subject);
    line("At:", &crate::timestamp::rfc3339(&notice.at));
    line("Run:", &notice.run.map(|r| r.to_string()).unwrap_or_default());
    line("Event:", &notice.seq.map(|s| s.to_string()).unwrap_or_default());
    if !notice.detail.is_empty() {
        body.push_str(&format!("\n{}\n", notice.detail));
    }
    if notice.facts.as_object().is_some_and(|f| !f.is_empty()) {
        body.push_str(&format!("\n{}\n", serde_json::to_string_pretty(&notice.facts).unwrap_or_default()));
    }
    body
}

/// A notice with every field set, for checking templates when a flow is validated.
pub fn sample_notice() -> Notice {
    let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let mut n = Notice::new("failed", "sample-flow", at, "in/sample.csv", "sample detail");
    n.seq = Some(1);
    n.run = Some(1);
    n
}

/// A webhook body template: Handlebars over [`Notice::context`] whose output must be JSON.
/// `{{x}}` is escaped for the inside of a JSON string (write `"text": "{{text}}"`);
/// `{{json x}}` writes any value as JSON (`"facts": {{json facts}}`); `{{{x}}}` is raw.
#[derive(Clone)]
pub struct JsonTemplate {
    /// Where it came from, for messages (a file path).
    origin: String,
    /// The template text (two templates are equal when it and the origin are).
    source: String,
    registry: Arc<Handlebars<'static>>,
}

impl JsonTemplate {
    /// Compiles `source` and checks that it renders valid JSON for a sample notice, also
    /// without a run and sequence number (as some notices are). The error is a sentence fit
    /// for a diagnostic.
    pub fn new(source: &str, origin: &str) -> Result<Self, String> {
        let mut hb = Handlebars::new();
        hb.register_escape_fn(json_escape);
        hb.register_helper("json", Box::new(json_helper));
        hb.register_template_string(NAME, source)
            .map_err(|e| crate::template::syntax_error(&format!("bad template `{origin}`"), source, &e))?;
        let t = JsonTemplate { origin: origin.into(), source: source.into(), registry: Arc::new(hb) };
        t.render(&sample_notice(), 0)?;
        known_names(&t.registry, &format!("template `{origin}`"))?;
        // `run` and `seq` are null in some notices, where `{{run}}` writes nothing: a body
        // that is JSON only with them set would be refused at every such send.
        let without = Notice { seq: None, run: None, ..sample_notice() };
        let text = t.render_text(&without, 0)?;
        serde_json::from_str::<Value>(&text).map_err(|e| {
            format!(
                "template `{origin}` does not give valid JSON for a notice without a run or sequence number ({e}): a `missing` \
                 event has no run and a run summary no sequence number, and `{{{{run}}}}` writes nothing for them; write \
                 `{{{{json run}}}}` (and `{{{{json seq}}}}`), which writes `null`"
            )
        })?;
        Ok(t)
    }

    /// The body for `notice`.
    pub fn render(&self, notice: &Notice, held_back: u32) -> Result<Value, String> {
        let text = self.render_text(notice, held_back)?;
        serde_json::from_str(&text).map_err(|e| format!("template `{}` does not give valid JSON: {e}", self.origin))
    }

    /// The text the template gives for `notice`, not checked to be JSON.
    fn render_text(&self, notice: &Notice, held_back: u32) -> Result<String, String> {
        self.registry.render(NAME, &notice.context(held_back)).map_err(|e| format!("template `{}`: {}", self.origin, e.reason()))
    }
}

/// The same text from the same place (a reload that did not change the rule).
impl PartialEq for JsonTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.origin == other.origin && self.source == other.source
    }
}

impl fmt::Debug for JsonTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonTemplate({:?})", self.origin)
    }
}

/// A one-line text template (an email subject): Handlebars over [`Notice::context`], no
/// escaping; line breaks in the result become spaces.
#[derive(Clone)]
pub struct TextTemplate {
    source: String,
    registry: Arc<Handlebars<'static>>,
}

impl TextTemplate {
    /// Compiles `source` and renders it once with a sample notice.
    pub fn new(source: &str) -> Result<Self, String> {
        let mut hb = Handlebars::new();
        hb.register_escape_fn(handlebars::no_escape);
        hb.register_helper("json", Box::new(json_helper));
        hb.register_template_string(NAME, source)
            .map_err(|e| crate::template::syntax_error(&format!("bad template {source:?}"), source, &e))?;
        let t = TextTemplate { source: source.into(), registry: Arc::new(hb) };
        t.render(&sample_notice(), 0)?;
        known_names(&t.registry, &format!("template {source:?}"))?;
        Ok(t)
    }

    pub fn render(&self, notice: &Notice, held_back: u32) -> Result<String, String> {
        let text =
            self.registry.render(NAME, &notice.context(held_back)).map_err(|e| format!("template {:?}: {}", self.source, e.reason()))?;
        Ok(text.split(['\r', '\n']).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" "))
    }
}

/// The same text.
impl PartialEq for TextTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for TextTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TextTemplate({:?})", self.source)
    }
}

/// The variables a notice template sees (under `facts`, whatever the notice carries).
const VARIABLES: &str = "kind, flow, at, subject, detail, seq, run, facts, text, held_back";

/// Checks that a template uses only variables a notice has. Rendering is not strict (a
/// notice's `facts` differ by kind, and a missing one is empty), so a misspelt `{{detial}}`
/// would silently send an empty field for ever: the sample notice is rendered once more with
/// a hook that records each name it lacks, and a name outside `facts` is refused. `what`
/// names the template in the message.
fn known_names(registry: &Handlebars<'static>, what: &str) -> Result<(), String> {
    let missing = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut check = registry.clone();
    let seen = missing.clone();
    check.register_helper(
        "helperMissing",
        Box::new(move |h: &Helper, _: &Handlebars, _: &Context, _: &mut RenderContext, _: &mut dyn Output| -> HelperResult {
            crate::sync::lock(&seen).push(h.name().to_string());
            Ok(())
        }),
    );
    // Errors were reported by the caller's own render of the same sample.
    let _ = check.render(NAME, &sample_notice().context(0));
    let missing = crate::sync::lock(&missing);
    let unknown: Vec<String> =
        missing.iter().filter(|name| name.split(['.', '/']).next() != Some("facts")).map(|name| format!("`{name}`")).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let noun = if unknown.len() == 1 { "variable" } else { "variables" };
    Err(format!("{what}: unknown {noun} {} (a notice has {VARIABLES})", unknown.join(", ")))
}

/// Escapes for the inside of a JSON string literal.
fn json_escape(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default().to_string()
}

/// `{{json value}}`: the value as JSON (a string comes out quoted).
fn json_helper(h: &Helper, _: &Handlebars, _: &Context, _: &mut RenderContext, out: &mut dyn Output) -> HelperResult {
    let value = h.param(0).map(|p| p.value().clone()).unwrap_or(Value::Null);
    let text = serde_json::to_string(&value).map_err(|e| RenderErrorReason::Other(e.to_string()))?;
    out.write(&text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(kind: &str, subject: &str, detail: &str) -> Notice {
        Notice::new(kind, "roster-import", chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(), subject, detail)
    }

    #[test]
    fn text_is_one_line_per_kind() {
        let q = notice("quarantined", "in/a.csv", "row 3: column `email` is empty\nrow 4: …");
        assert_eq!(
            q.text(),
            "wharf: flow roster-import: file in/a.csv quarantined: row 3: column `email` is empty (all of it and what next: `wharf \
             quarantine show roster-import in/a.csv`)"
        );
        // A refused response: `wharf quarantine show` knows only the flow's own files, and
        // said it was "not quarantined".
        let response =
            notice("quarantined", "/outbox/a.ack", &format!("{}quarantined to acks:/q/a.ack: NAK", crate::engine::RESPONSE_REFUSED));
        assert!(
            response.text().ends_with("(the reports are beside the copy: `wharf quarantine list roster-import.response`; the request: `wharf awaits roster-import`)"),
            "{}",
            response.text()
        );
        let spaced = notice("quarantined", "in/a b.csv", "empty");
        assert!(spaced.text().ends_with("`wharf quarantine show roster-import 'in/a b.csv'`)"), "{}", spaced.text());
        assert_eq!(notice("failed", "", "connection refused").text(), "wharf: flow roster-import: run failed: connection refused");
        assert_eq!(notice("failed", "run 7", "").text(), "wharf: flow roster-import: run 7 failed");
        assert_eq!(
            notice("unreachable", "acme", "3 runs in a row").text(),
            "wharf: flow roster-import: endpoint acme unreachable: 3 runs in a row"
        );
        assert_eq!(notice("recovered", "acme", "").text(), "wharf: flow roster-import: acme recovered");
        assert_eq!(
            notice("missing", "in/daily.csv", "due 06:00").text(),
            "wharf: flow roster-import: expected file in/daily.csv missing: due 06:00"
        );
        assert_eq!(notice("overdue", "out/o.csv", "").text(), "wharf: flow roster-import: response to out/o.csv overdue");
        assert_eq!(
            notice("not_taken", "/in/today.csv", "a symbolic link: only regular files are taken").text(),
            "wharf: flow roster-import: /in/today.csv can never be taken: a symbolic link: only regular files are taken"
        );
        // A subfolder the listing could not read (recorded with a trailing `/`): a folder that
        // cannot be read, with the cause (before: "/in/locked/ can never be taken: …").
        assert_eq!(
            notice("not_taken", "/in/locked/", "permission denied: opendir; nothing under it is taken while the listing cannot read it")
                .text(),
            "wharf: flow roster-import: source folder /in/locked cannot be read: permission denied: opendir; nothing under it is taken while the listing cannot read it"
        );
        assert_eq!(notice("summary", "", "3 files, 2 MB").text(), "wharf: flow roster-import: run summary: 3 files, 2 MB");
        let mut global = notice("failed", "", "x");
        global.flow.clear();
        assert_eq!(global.text(), "wharf: run failed: x");
        let long = notice("failed", "", &"x".repeat(1000)).text();
        assert!(long.ends_with('…') && long.chars().count() < 400, "{long}");
        assert_eq!(q.text_with(2), format!("{} (2 similar notices held back)", q.text()));
        assert_eq!(q.text_with(1), format!("{} (1 similar notice held back)", q.text()));
    }

    #[test]
    fn bodies() {
        let n = notice("failed", "", "boom");
        let j = json_body(&n, 2);
        assert_eq!((j["kind"].as_str(), j["held_back"].as_u64(), j["flow"].as_str()), (Some("failed"), Some(2), Some("roster-import")));
        assert!(j["text"].as_str().unwrap().ends_with("(2 similar notices held back)"));
        assert_eq!(slack_body(&n, 0), json!({ "text": "wharf: flow roster-import: run failed: boom" }));
        let t = teams_body(&n, 0);
        let card = &t["attachments"][0];
        assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(card["content"]["body"][0]["text"], "wharf: flow roster-import: run failed: boom");
        let body = email_body(&n, 0);
        assert!(body.starts_with("wharf: flow roster-import: run failed: boom\n\nFlow:    roster-import\nKind:    failed\n"), "{body}");
    }

    #[test]
    fn json_templates_escape_for_json_and_must_give_json() {
        let t = JsonTemplate::new(r#"{"msg": "{{text}}", "facts": {{json facts}}, "n": {{held_back}}}"#, "t.hbs").unwrap();
        let mut n = notice("failed", "", "a \"quoted\" \\ detail\nsecond line");
        n.facts = json!({ "count": 3 });
        let v = t.render(&n, 1).unwrap();
        assert_eq!(v["msg"], n.text_with(1));
        assert_eq!((v["facts"]["count"].as_u64(), v["n"].as_u64()), (Some(3), Some(1)));

        let e = JsonTemplate::new(r#"{"msg": {{text}}}"#, "t.hbs").unwrap_err();
        assert!(e.starts_with("template `t.hbs` does not give valid JSON"), "{e}");
        let e = JsonTemplate::new("{{#if}}", "t.hbs").unwrap_err();
        assert!(e.starts_with("bad template `t.hbs` line 1, col "), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    /// `"run": {{run}}` gave JSON for the sample notice (run 1), and so passed `wharf
    /// validate`, but not for a notice without a run (`missing`) or a sequence number (a run
    /// summary): `"run": ,`, refused at each send, and every such notice lost.
    #[test]
    fn a_template_that_needs_a_run_or_a_seq_is_refused_when_checked() {
        for field in ["run", "seq"] {
            let e = JsonTemplate::new(&format!(r#"{{"kind": "{{{{kind}}}}", "{field}": {{{{{field}}}}}}}"#), "t.hbs").unwrap_err();
            assert!(e.starts_with("template `t.hbs` does not give valid JSON for a notice without a run or sequence number"), "{e}");
            assert!(e.contains("`{{json run}}`"), "says what to write: {e}");
        }
        let t = JsonTemplate::new(r#"{"run": {{json run}}, "seq": {{json seq}}}"#, "t.hbs").unwrap();
        let mut missing = notice("missing", "", "x");
        missing.seq = Some(4);
        let v = t.render(&missing, 0).unwrap();
        assert_eq!((v["run"].is_null(), v["seq"].as_u64()), (true, Some(4)));
    }

    #[test]
    fn text_templates_are_one_line_and_unescaped() {
        let t = TextTemplate::new("[{{kind}}] {{flow}} <{{subject}}>\n{{detail}}").unwrap();
        assert_eq!(t.render(&notice("failed", "a&b", "x\ny"), 0).unwrap(), "[failed] roster-import <a&b> x y");
        assert!(TextTemplate::new("{{#each}}").is_err());
    }

    #[test]
    fn unknown_variables_are_refused_with_their_names() {
        // Were rendered as empty text in every notice sent.
        let e = JsonTemplate::new(r#"{"msg": "{{detial}}", "f": "{{flow}}", "k": "{{knd}}"}"#, "alert.json.hbs").unwrap_err();
        assert_eq!(
            e,
            "template `alert.json.hbs`: unknown variables `detial`, `knd` (a notice has kind, flow, at, subject, detail, seq, run, facts, text, held_back)"
        );
        let e = TextTemplate::new("[wharf] {{flw}}: {{kind}}").unwrap_err();
        assert!(e.starts_with("template \"[wharf] {{flw}}: {{kind}}\": unknown variable `flw` (a notice has kind,"), "{e}");
        // What a notice may or may not carry under `facts` is not known in advance.
        let t = JsonTemplate::new(r#"{"n": "{{facts.records.read}}", "q": "{{facts.quarantine}}"}"#, "t.hbs").unwrap();
        let v = t.render(&notice("failed", "", "x"), 0).unwrap();
        assert_eq!(v["n"], "");
        // Every field of the notice, and names inside blocks over them.
        let all = r#"{"a": "{{kind}}{{flow}}{{at}}{{subject}}{{detail}}{{seq}}{{run}}{{text}}{{held_back}}{{#with facts}}{{x}}{{/with}}{{#each facts}}{{this}}{{/each}}"}"#;
        JsonTemplate::new(all, "t.hbs").unwrap();
        TextTemplate::new("{{#if run}}run {{run}}{{/if}} {{kind}}").unwrap();
    }
}
