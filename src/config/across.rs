//! Checks across the flows loaded together — `wharf validate` of several files or a folder,
//! `wharf serve`'s flows folder — for what no single flow's validation can see.
//!
//! Today one: two flows awaiting their responses (round trips) in one folder of one server
//! under names that may be alike. Each flow takes the answers it expects by name (see
//! `engine/awaits.rs`), so each would take the other's: the answer to one flow's request
//! delivered to the other flow's response sinks, and the first flow's await left overdue.
//! A warning, not an error: a flow's response name always depends on its request (validation
//! refuses one that does not), so whether two names whose fixed text does not keep them apart
//! ever meet depends on the names of the requests the two flows send (`orders_*.csv` and
//! `invoices_*.csv` answered as `{{stem}}.ack` never do), which cannot be told here in
//! general. What is certain is used: the text every response name starts and ends with — the
//! response template's own, and, where it starts or ends with the request's `{{name}}`,
//! `{{stem}}` or `{{ext}}`, the fixed text of the request sink's `name:` template (`ORD-{{name}}`
//! answered as `{{stem}}.ack` is answered by `ORD-….ack`). A request sink with `if_exists:
//! rename` (which may write another name) tells nothing, nor does anything else uncertain:
//! the warning stays.
//!
//! It reads the flows as loaded; it connects to nothing and decides nothing at run time.

use std::path::Path;

use super::flow::{EndpointSpec, IfExists, Response};
use super::{Diagnostic, Flow};

/// Two flows whose responses may be each other's.
#[derive(Debug, Clone)]
pub struct ResponseClash<'a> {
    /// The flow listed first.
    pub first: &'a Flow,
    /// The flow listed after it (the diagnostic is at its `response.name`).
    pub second: &'a Flow,
    /// The folder, as the message shows it.
    folder: String,
}

/// Every pair of `flows` (in their order) that await responses in one folder of one server
/// under names that may be alike.
pub fn response_clashes<'a>(flows: &[&'a Flow]) -> Vec<ResponseClash<'a>> {
    let awaiting: Vec<(&Flow, String, String)> =
        flows.iter().filter_map(|f| response_folder(f).map(|(key, shown)| (*f, key, shown))).collect();
    let mut out = Vec::new();
    for (i, (first, key, shown)) in awaiting.iter().enumerate() {
        for (second, other, _) in &awaiting[i + 1..] {
            if key != other || first.name == second.name {
                continue;
            }
            if may_meet(&response_ends(first), &response_ends(second)) {
                out.push(ResponseClash { first, second, folder: shown.clone() });
            }
        }
    }
    out
}

impl ResponseClash<'_> {
    /// What is wrong, naming both flows, their files and names, and what to do.
    pub fn message(&self) -> String {
        let (a, b) = (self.first, self.second);
        let (na, nb) = (response_name(a), response_name(b));
        format!(
            "flow `{}` awaits responses named `{nb}` in {}, where flow `{}` ({}) awaits `{na}`: unless the names of their requests keep them apart, each flow takes the answers it expects by name and would take the other's (the answer to one flow's request delivered by the other, and the first one's await left overdue); give the two flows' response names fixed text that tells them apart (`{}-{{{{stem}}}}.ack`; or, for responses named after their requests, the request sinks' `name:`, as `ORD-{{{{name}}}}`), or their responses separate folders",
            b.name,
            self.folder,
            a.name,
            a.file.display(),
            b.name
        )
    }

    /// The clash as a diagnostic at the second flow's `response.name`.
    pub fn diagnostic(&self) -> Diagnostic {
        let file = &self.second.file;
        let pos = position(file, "/response/name");
        Diagnostic { file: file.clone(), line: pos.line, col: pos.col, message: self.message(), yaml_path: "/response/name".into() }
    }
}

/// Where `pointer` is in `file` (its start when the file cannot be read again).
fn position(file: &Path, pointer: &str) -> super::locate::Pos {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| super::locate::parse(&text).0)
        .map_or(super::locate::Pos::START, |parsed| parsed.positions.node(pointer))
}

fn response_name(flow: &Flow) -> &str {
    flow.response.as_deref().map(|r| r.name.source()).unwrap_or_default()
}

/// The folder the flow's responses are looked for in, as a key that is the same for one
/// folder of one server seen by one user (whatever the flows call the endpoint), and as shown.
fn response_folder(flow: &Flow) -> Option<(String, String)> {
    let r = flow.response.as_deref()?;
    let name = &r.flow.source.endpoint;
    let path = r.flow.source.path.as_str();
    let (key, server) = match flow.endpoints.get(name)? {
        EndpointSpec::Local { root } => (format!("local {}", root.join(path).display()), "local".to_string()),
        EndpointSpec::Sftp(s) => {
            let server = format!("sftp {}@{}:{}", s.user, s.host.to_ascii_lowercase(), s.port);
            (format!("{server} {}/{path}", s.root.trim_end_matches('/')), server)
        }
        EndpointSpec::Ftp(f) => {
            let server = format!("ftp {}@{}:{}", f.user, f.host.to_ascii_lowercase(), f.port);
            let root = f.root.as_deref().map_or("~", |r| r.trim_end_matches('/'));
            (format!("{server} {root}/{path}"), server)
        }
    };
    Some((key.trim_end_matches('/').to_string(), format!("/{path} on {server}")))
}

/// What is certain of every name a template gives: the text it starts and ends with, or all
/// of it (`exact`, a name without variables). The default: nothing (any name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Ends {
    start: String,
    end: String,
    exact: bool,
}

impl Ends {
    fn exact(name: &str) -> Self {
        Ends { start: name.to_string(), end: name.to_string(), exact: true }
    }
}

/// A name template's ends (as rendered: [`crate::template::NameTemplate::rendered_text`]): the
/// text before its first tag and after its last, and the variable of each of those two tags
/// when it is a plain `{{var}}`. `None` for a template whose text is not told apart here (an
/// escaped `\{{`).
struct Shape<'t> {
    start: &'t str,
    first: Option<&'t str>,
    last: Option<&'t str>,
    end: &'t str,
}

/// The [`Shape`] of name template text `t`; `Err`, the name of one without tags.
fn shape<'t>(t: &'t str) -> Option<Result<Shape<'t>, Ends>> {
    if t.contains("\\{{") {
        return None;
    }
    let (Some(i), Some(j)) = (t.find("{{"), t.rfind("}}")) else { return Some(Err(Ends::exact(t))) };
    let first = &t[i + 2..];
    let first = &first[..first.find("}}")?];
    let last = &t[..j];
    let last = &last[last.rfind("{{")? + 2..];
    // `{{~` and `~}}` take the white space beside them out.
    let start = if first.starts_with('~') { t[..i].trim_end() } else { &t[..i] };
    let end = if last.ends_with('~') { t[j + 2..].trim_start() } else { &t[j + 2..] };
    let var = |tag: &'t str| {
        let v = tag.trim_matches('~').trim();
        (!v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(v)
    };
    Some(Ok(Shape { start, first: var(first), last: var(last), end }))
}

/// The ends of the names of the requests `flow` sends: those of its request sink's `name:`
/// template's text (what it renders over the source file's name is not known here). Nothing,
/// for a sink with `if_exists: rename`: it may deliver under another name.
fn request_ends(flow: &Flow, r: &Response) -> Ends {
    let Some(sink) = flow.sinks.get(r.request_sink).filter(|s| s.if_exists != IfExists::Rename) else { return Ends::default() };
    literal(&sink.name.rendered_text())
}

/// The ends of the names template text `t` gives, from its own text alone.
fn literal(t: &str) -> Ends {
    match shape(t) {
        Some(Ok(s)) => Ends { start: s.start.to_string(), end: s.end.to_string(), exact: false },
        Some(Err(exact)) => exact,
        None => Ends::default(),
    }
}

/// The ends of every response name `flow` awaits: its response template's fixed text, and
/// where that starts or ends with the request's `name`, `stem` or `ext`, what is certain of
/// those ([`request_ends`]).
fn response_ends(flow: &Flow) -> Ends {
    let Some(r) = flow.response.as_deref() else { return Ends::default() };
    let text = r.name.rendered_text();
    let s = match shape(&text) {
        Some(Ok(s)) => s,
        Some(Err(exact)) => return exact,
        None => return Ends::default(),
    };
    let req = request_ends(flow, r);
    let (lead, tail) = (s.first.map_or("", |v| var_ends(&req, v).0), s.last.map_or("", |v| var_ends(&req, v).1));
    Ends { start: format!("{}{lead}", s.start), end: format!("{tail}{}", s.end), exact: false }
}

/// What the request's `name`, `stem` or `ext` (`var`) certainly starts and ends with, given the
/// ends of the request's name (`NameVars::new` splits it at its last `.`, unless that is its
/// first character); `""` for what is not certain (another variable).
fn var_ends<'e>(req: &'e Ends, var: &str) -> (&'e str, &'e str) {
    if req.exact {
        let (stem, ext) = match req.start.rfind('.') {
            Some(i) if i > 0 => (&req.start[..i], &req.start[i + 1..]),
            _ => (&req.start[..], ""),
        };
        return match var {
            "name" => (&req.start, &req.start),
            "stem" => (stem, stem),
            "ext" => (ext, ext),
            _ => ("", ""),
        };
    }
    // The name's last `.`, when it is in its end text (and not the name's first character).
    let dot = req.end.rfind('.').filter(|&d| d > 0 || !req.start.is_empty());
    match var {
        "name" => (&req.start, &req.end),
        // A stem ends before the name's last dot: after the start text when that dot is in
        // the end text, else perhaps in the start text (before its own last dot, not first).
        "stem" => match dot {
            Some(d) => (&req.start, &req.end[..d]),
            None => (req.start.rfind('.').filter(|&k| k > 0).map_or(&req.start[..], |k| &req.start[..k]), ""),
        },
        "ext" => match dot {
            Some(d) => (&req.end[d + 1..], &req.end[d + 1..]),
            None => ("", ""),
        },
        _ => ("", ""),
    }
}

/// Whether two names with these ends may be the same: unless their fixed text keeps them
/// apart.
fn may_meet(a: &Ends, b: &Ends) -> bool {
    let fits = |name: &str, t: &Ends| name.len() >= t.start.len() + t.end.len() && name.starts_with(&t.start) && name.ends_with(&t.end);
    match (a.exact, b.exact) {
        (true, true) => a.start == b.start,
        // A fixed name against a template: the name must have the template's fixed ends.
        (true, false) => fits(&a.start, b),
        (false, true) => fits(&b.start, a),
        (false, false) => {
            (a.start.starts_with(&b.start) || b.start.starts_with(&a.start)) && (a.end.ends_with(&b.end) || b.end.ends_with(&a.end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round trip named `name`, answered as `response` in `folder` of the partner `host`.
    fn flow(name: &str, host: &str, folder: &str, response: &str) -> Flow {
        flow_sent(name, host, folder, response, "")
    }

    /// The same, with `sink` added to the request sink's settings (`, name: \"ORD-{{name}}\"`).
    fn flow_sent(name: &str, host: &str, folder: &str, response: &str, sink: &str) -> Flow {
        let yaml = format!(
            "name: {name}\nendpoints:\n  out: {{ type: local, root: /tmp/out }}\n  \
             partner: {{ type: sftp, host: {host}, user: u, auth: {{ password: p }}, host_key: {{ known_hosts: /k }} }}\n  \
             acks: {{ type: local, root: /tmp/acks }}\n\
             source: {{ endpoint: out, path: / }}\nsinks: [ {{ endpoint: partner, path: /inbox{sink} }} ]\n\
             response: {{ path: {folder}, name: \"{response}\", deadline: 1h, sinks: [ {{ endpoint: acks }} ] }}\n"
        );
        crate::config::load_flow_str(&yaml, &Path::new("/flows").join(format!("{name}.yaml"))).unwrap()
    }

    #[test]
    fn names_meet_unless_their_fixed_text_keeps_them_apart() {
        let meet = |a: &str, b: &str| may_meet(&literal(a), &literal(b));
        assert!(meet("{{stem}}.ack", "{{stem}}.ack"));
        assert!(meet("{{stem}}.ack", "{{name}}.ack"));
        // `{{stem}}` may start with `ORD-`.
        assert!(meet("ORD-{{stem}}.ack", "{{stem}}.ack"));
        assert!(!meet("ORD-{{stem}}.ack", "INV-{{stem}}.ack"));
        assert!(!meet("{{stem}}.ack", "{{stem}}.xml"));
        assert!(meet("ack.xml", "ack.xml") && !meet("ack.xml", "nak.xml"));
        assert!(meet("ORD-1.ack", "ORD-{{stem}}.ack") && !meet("INV-1.ack", "ORD-{{stem}}.ack"));
        // `~` takes the white space beside the tag out: `ORD-` and `-x` are what is certain.
        assert_eq!(literal("ORD- {{~stem~}} -x"), Ends { start: "ORD-".into(), end: "-x".into(), exact: false });
        // An escaped `{{` is not told apart: nothing is certain.
        assert_eq!(literal("ORD-\\{{stem}}.ack"), Ends::default());
    }

    /// What the request's name, stem and extension certainly start and end with, from the
    /// ends of its name.
    #[test]
    fn a_request_names_ends_say_what_its_stem_and_extension_start_and_end_with() {
        let req = |start: &str, end: &str| Ends { start: start.into(), end: end.into(), exact: false };
        let r = req("ORD-", "_x.csv");
        assert_eq!([var_ends(&r, "name"), var_ends(&r, "stem"), var_ends(&r, "ext")], [("ORD-", "_x.csv"), ("ORD-", "_x"), ("csv", "csv")]);
        assert_eq!(var_ends(&r, "size"), ("", ""));
        // No dot in the end text: the last dot may be in the start text (`a.b` + `cd`: stem `a`).
        let r = req("a.b", "x");
        assert_eq!([var_ends(&r, "stem"), var_ends(&r, "ext")], [("a", ""), ("", "")]);
        // `.csv` alone may be all of a name: stem `.csv`, no extension.
        let r = req("", ".csv");
        assert_eq!([var_ends(&r, "stem"), var_ends(&r, "ext")], [("", ""), ("", "")]);
        let r = Ends::exact("a.tar.gz");
        assert_eq!([var_ends(&r, "stem"), var_ends(&r, "ext")], [("a.tar", "a.tar"), ("gz", "gz")]);
    }

    #[test]
    fn two_flows_awaiting_alike_names_in_one_folder_of_one_server_clash() {
        let a = flow("orders", "sftp.example.com", "/outbox", "{{stem}}.ack");
        let b = flow("invoices", "SFTP.example.com", "/outbox/", "{{name}}.ack");
        let clashes = response_clashes(&[&a, &b]);
        assert_eq!(clashes.len(), 1, "{clashes:?}");
        let c = &clashes[0];
        assert_eq!((c.first.name.as_str(), c.second.name.as_str()), ("orders", "invoices"));
        let d = c.diagnostic();
        assert_eq!((d.file.as_path(), d.yaml_path.as_str()), (Path::new("/flows/invoices.yaml"), "/response/name"));
        assert!(
            d.message.starts_with("flow `invoices` awaits responses named `{{name}}.ack` in /outbox on sftp u@sftp.example.com:22, where flow `orders` (/flows/orders.yaml) awaits `{{stem}}.ack`"),
            "{}",
            d.message
        );
        assert!(d.message.contains("unless the names of their requests keep them apart"), "{}", d.message);
    }

    #[test]
    fn other_folders_servers_or_names_kept_apart_do_not_clash() {
        let a = flow("orders", "h", "/outbox", "ORD-{{stem}}.ack");
        for b in [
            flow("invoices", "h", "/outbox/invoices", "ORD-{{stem}}.ack"),
            flow("invoices", "other", "/outbox", "ORD-{{stem}}.ack"),
            flow("invoices", "h", "/outbox", "INV-{{stem}}.ack"),
        ] {
            assert!(response_clashes(&[&a, &b]).is_empty(), "{}", b.name);
        }
        // Nor a flow with itself (the same flow loaded twice is a name clash, told apart).
        assert!(response_clashes(&[&a, &a]).is_empty());
    }

    /// Responses named after their requests, whose request sinks' names keep them apart, never
    /// meet: no warning. Anything uncertain keeps it.
    #[test]
    fn responses_named_after_requests_kept_apart_by_their_sink_names_do_not_clash() {
        let sent = |name: &str, response: &str, sink: &str| flow_sent(name, "h", "/outbox", response, sink);
        let a = sent("orders", "{{stem}}.ack", ", name: \"ORD-{{name}}\"");
        for (a, b) in [
            (a.clone(), sent("invoices", "{{stem}}.ack", ", name: \"INV-{{name}}\"")),
            (a.clone(), sent("invoices", "{{name}}.ack", ", name: \"INV-{{stem}}.{{ext}}\"")),
            // Apart by their ends: `…_a.ack` and `…_b.ack`.
            (sent("orders", "{{stem}}.ack", ", name: \"{{stem}}_a.csv\""), sent("invoices", "{{stem}}.ack", ", name: \"{{stem}}_b.csv\"")),
        ] {
            assert!(response_clashes(&[&a, &b]).is_empty(), "{} / {}", a.sinks[0].name.source(), b.sinks[0].name.source());
        }
        for (b, why) in [
            (sent("invoices", "{{stem}}.ack", ""), "the other's requests keep their names: `ORD-…` among them"),
            (sent("invoices", "{{run}}-{{stem}}.ack", ", name: \"INV-{{name}}\""), "not starting with the request's name"),
            (sent("invoices", "{{stem}}.ack", ", name: \"INV-{{name}}\", if_exists: rename"), "still `INV-…`, but renamed: not relied on"),
            (sent("invoices", "ORD-{{stem}}.ack", ", name: \"INV-{{name}}\""), "`ORD-INV-…` may be `ORD-…`"),
        ] {
            assert_eq!(response_clashes(&[&a, &b]).len(), 1, "{why}");
        }
    }
}
