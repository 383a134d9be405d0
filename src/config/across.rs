//! Checks across the flows loaded together — `wharf validate` of several files or a folder,
//! `wharf serve`'s flows folder — for what no single flow's validation can see.
//!
//! Today one: two flows awaiting their responses (round trips) in one folder of one server
//! under names that may be alike. Each flow takes the answers it expects by name (see
//! `engine/awaits.rs`), so each would take the other's: the answer to one flow's request
//! delivered to the other flow's response sinks, and the first flow's await left overdue.
//! A warning, not an error: a flow's response name always depends on its request (validation
//! refuses one that does not), so whether two names whose fixed text does not keep them apart
//! ever meet depends on the names of the requests the two flows send, which cannot be told
//! here in general. What is certain is used: the text every response name starts and ends
//! with — the response template's own, and, where it starts or ends with the request's
//! `{{name}}`, `{{stem}}` or `{{ext}}`, what the request's name certainly starts and ends with:
//! the fixed text of the request sink's `name:` template (`ORD-{{name}}` answered as
//! `{{stem}}.ack` is answered by `ORD-….ack`), and where that template starts or ends with the
//! source file's `{{name}}`, `{{stem}}` or `{{ext}}` (`{{name}}`, the default), the fixed text
//! of the source's `include` patterns (`orders_*.csv` and `invoices_*.csv` answered as
//! `{{stem}}.ack` never meet). A request sink with `if_exists: rename` (which may write
//! another name) tells nothing, nor does anything else uncertain (steps writing another
//! format keep only the start of the stem; a pattern whose classes or alternatives may match a
//! `/` keeps only its end): the warning stays.
//!
//! The folders: one of an FTP endpoint without `root` (the login folder, wherever that is) may
//! be any folder of that server for that user whose path ends as it does; it is taken for the
//! same as such a folder named from a `root`, and the warning names each flow's folder.
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
    /// The server, and each flow's folder on it as the message shows it ([`Folder::shown`]).
    server: String,
    folders: [String; 2],
}

/// Every pair of `flows` (in their order) that await responses in one folder of one server
/// under names that may be alike.
pub fn response_clashes<'a>(flows: &[&'a Flow]) -> Vec<ResponseClash<'a>> {
    let awaiting: Vec<(&Flow, Folder)> = flows.iter().filter_map(|f| response_folder(f).map(|key| (*f, key))).collect();
    let mut out = Vec::new();
    for (i, (first, key)) in awaiting.iter().enumerate() {
        for (second, other) in &awaiting[i + 1..] {
            if !key.may_be(other) || first.name == second.name {
                continue;
            }
            let (a, b) = (response_ends(first), response_ends(second));
            if a.iter().any(|a| b.iter().any(|b| may_meet(a, b))) {
                out.push(ResponseClash { first, second, server: key.server.clone(), folders: [key.shown(), other.shown()] });
            }
        }
    }
    out
}

impl ResponseClash<'_> {
    /// What is wrong, naming both flows, their files, names and folders (each its own when
    /// they are said apart: a login folder against one named from a root), and what to do.
    pub fn message(&self) -> String {
        let (a, b) = (self.first, self.second);
        let (na, nb) = (response_name(a), response_name(b));
        let [fa, fb] = &self.folders;
        let in_a = if fa == fb {
            String::new()
        } else {
            format!(" in {fa}, which may be the same folder (a login folder may be any folder of the server)")
        };
        format!(
            "flow `{}` awaits responses named `{nb}` in {fb} on {}, where flow `{}` ({}) awaits `{na}`{in_a}: unless the names of their requests keep them apart, each flow takes the answers it expects by name and would take the other's (the answer to one flow's request delivered by the other, and the first one's await left overdue); give the two flows' response names fixed text that tells them apart (`{}-{{{{stem}}}}.ack`), or, for responses named after their requests, their request sinks' `name:` (`ORD-{{{{name}}}}` and `INV-{{{{name}}}}`) or, for requests named after the files they send, their sources' `include` patterns (`orders_*.csv` and `invoices_*.csv`); or give their responses separate folders",
            b.name,
            self.server,
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

/// A folder of one server seen by one user (whatever the flows call the endpoint): its path
/// from the server's root, or, `from_login`, from the user's login folder (an FTP endpoint
/// without `root`; an SFTP `root` that is relative, which validation does not let through).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Folder {
    server: String,
    from_login: bool,
    /// Its parts, without empty ones (`/a//b/` is `["a", "b"]`).
    parts: Vec<String>,
}

impl Folder {
    fn new(server: String, from_login: bool, root: &str, path: &str) -> Self {
        let parts = root.split('/').chain(path.split('/')).filter(|p| !p.is_empty()).map(str::to_string).collect();
        Folder { server, from_login, parts }
    }

    /// The folder as a message says it (its server apart): its path on the server
    /// (`/home/acme/outbox`), or under the login folder (`/outbox under the login folder`).
    fn shown(&self) -> String {
        let path = self.parts.iter().map(|p| format!("/{p}")).collect::<String>();
        match (self.from_login, path.is_empty()) {
            (true, true) => "the login folder".to_string(),
            (true, false) => format!("{path} under the login folder"),
            (false, true) => "/".to_string(),
            (false, false) => path,
        }
    }

    /// Whether the two may be one folder. The login folder may be any folder: a folder under
    /// it may be any folder whose path ends as its does.
    fn may_be(&self, other: &Folder) -> bool {
        if self.server != other.server {
            return false;
        }
        match (self.from_login, other.from_login) {
            (true, false) => other.parts.ends_with(&self.parts),
            (false, true) => self.parts.ends_with(&other.parts),
            _ => self.parts == other.parts,
        }
    }
}

/// The folder the flow's responses are looked for in.
fn response_folder(flow: &Flow) -> Option<Folder> {
    let r = flow.response.as_deref()?;
    let name = &r.flow.source.endpoint;
    let path = r.flow.source.path.as_str();
    Some(match flow.endpoints.get(name)? {
        EndpointSpec::Local { root } => Folder::new("local".to_string(), false, &root.to_string_lossy(), path),
        // As `RemotePath::on_server` joins them: an empty root is the server's `/`.
        EndpointSpec::Sftp(s) => {
            let server = format!("sftp {}@{}:{}", s.user, s.host.to_ascii_lowercase(), s.port);
            Folder::new(server, !s.root.is_empty() && !s.root.starts_with('/'), &s.root, path)
        }
        EndpointSpec::Ftp(f) => {
            let server = format!("ftp {}@{}:{}", f.user, f.host.to_ascii_lowercase(), f.port);
            Folder::new(server, f.root.as_deref().is_none_or(|r| !r.starts_with('/')), f.root.as_deref().unwrap_or_default(), path)
        }
    })
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

    /// Names starting with `start` and ending with `end` (apart).
    fn between(start: &str, end: &str) -> Self {
        Ends { start: start.to_string(), end: end.to_string(), exact: false }
    }
}

/// A name template's ends (as rendered: [`crate::template::NameTemplate::rendered_text`]): the
/// text before its first tag and after its last, and the variable of each of those two tags
/// when it is a plain `{{var}}`. `None` for a template whose text is not told apart here (an
/// escaped `\{{`).
struct Shape<'t> {
    /// The template has one tag: the first is the last.
    single: bool,
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
    Some(Ok(Shape { single: t.matches("{{").count() == 1, start, first: var(first), last: var(last), end }))
}

/// The ends of the names of the files `flow` takes (those its sinks' `name:` templates are
/// rendered over): those of each `source.include` pattern ([`glob_ends`]; a name is taken by
/// one of them). Steps writing another format deliver `roster.csv` as `roster.jsonl`
/// (`Steps::delivered_name`): only what the stem starts with is certain then; nothing is of
/// a name a `command` step's `name` makes.
/// Nothing is certain of a source that ignores case: `orders_*.csv` takes `ORDERS_1.CSV`.
fn source_ends(flow: &Flow) -> Vec<Ends> {
    let patterns = &flow.source.include_patterns;
    if patterns.is_empty() || flow.source.ignore_case {
        return vec![Ends::default()];
    }
    // A `command` step's `name` may make anything of the name.
    if flow.steps.as_ref().is_some_and(|s| s.renames()) {
        return vec![Ends::default()];
    }
    let renamed = flow.steps.as_ref().is_some_and(|s| s.output_ext().is_some());
    let mut out: Vec<Ends> = Vec::new();
    for p in patterns {
        let e = glob_ends(p);
        let e = if renamed { Ends::between(&var_ends(&e, "stem").start, "") } else { e };
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// Globs' characters that are not themselves (`\` escapes one).
const GLOB_SPECIAL: [char; 7] = ['*', '?', '[', ']', '{', '}', '\\'];

/// The ends of the file names (the last part of the path) glob `p` matches, compiled as
/// `source.include` is (`literal_separator`: `*` and `?` stop at `/`). The name ends with the
/// text after the pattern's last special character or `/`; when only its own `/`s match a `/`
/// ([`parts_kept`]), it starts with the text of its last part before a special character, and
/// is that part when it has none.
fn glob_ends(p: &str) -> Ends {
    let end = &p[p.rfind(|c| GLOB_SPECIAL.contains(&c) || c == '/').map_or(0, |i| i + 1)..];
    if !parts_kept(p) {
        return Ends::between("", end);
    }
    let last = p.rsplit('/').next().unwrap_or(p);
    match last.find(GLOB_SPECIAL) {
        None => Ends::exact(last),
        Some(i) => Ends::between(&last[..i], end),
    }
}

/// Whether nothing in glob `p` but its own `/`s matches a `/` of a path: no escape, no
/// alternative with a `/`, a class or a `**` in it, and only classes of letters and digits
/// (`[0-9]`, `[ct]`; a negated one, `[!x]`, matches `/`).
fn parts_kept(p: &str) -> bool {
    if p.contains('\\') {
        return false;
    }
    let mut rest = p;
    while let Some(i) = rest.find(['[', '{']) {
        let close = if rest[i..].starts_with('[') { ']' } else { '}' };
        let after = &rest[i + 1..];
        let Some(j) = after.find(close) else { return false };
        let inner = &after[..j];
        let ok = if close == ']' {
            !inner.is_empty() && !inner.contains("--") && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        } else {
            !inner.contains(['/', '[', '{']) && !inner.contains("**")
        };
        if !ok {
            return false;
        }
        rest = &after[j + 1..];
    }
    true
}

/// The ends of the names of the requests `flow` sends: its request sink's `name:` template
/// rendered over the names its source takes ([`source_ends`]). Nothing, for a sink with
/// `if_exists: rename`: it may deliver under another name.
fn request_ends(flow: &Flow, r: &Response) -> Vec<Ends> {
    let Some(sink) = flow.sinks.get(r.request_sink).filter(|s| s.if_exists != IfExists::Rename) else { return vec![Ends::default()] };
    rendered_ends(&sink.name.rendered_text(), &source_ends(flow))
}

/// The ends of the names template text `t` gives when rendered over names with the ends `of`
/// (one for each): its fixed text, and where that starts or ends with the name's `name`,
/// `stem` or `ext`, what is certain of those ([`var_ends`]).
fn rendered_ends(t: &str, of: &[Ends]) -> Vec<Ends> {
    let s = match shape(t) {
        Some(Ok(s)) => s,
        Some(Err(exact)) => return vec![exact],
        None => return vec![Ends::default()],
    };
    let mut out: Vec<Ends> = Vec::new();
    for e in of {
        let part = |v: Option<&str>| v.map_or_else(Ends::default, |v| var_ends(e, v));
        let (first, last) = (part(s.first), part(s.last));
        let ends = if s.single && first.exact {
            Ends::exact(&format!("{}{}{}", s.start, first.start, s.end))
        } else {
            Ends { start: format!("{}{}", s.start, first.start), end: format!("{}{}", last.end, s.end), exact: false }
        };
        if !out.contains(&ends) {
            out.push(ends);
        }
    }
    out
}

/// The ends of every response name `flow` awaits: its response template rendered over the
/// names of its requests ([`request_ends`]).
fn response_ends(flow: &Flow) -> Vec<Ends> {
    let Some(r) = flow.response.as_deref() else { return vec![Ends::default()] };
    rendered_ends(&r.name.rendered_text(), &request_ends(flow, r))
}

/// What the `name`, `stem` or `ext` (`var`) of a name with the ends `req` certainly starts and
/// ends with, or is (`NameVars::new` splits it at its last `.`, unless that is its first
/// character); nothing for another variable.
fn var_ends(req: &Ends, var: &str) -> Ends {
    if req.exact {
        let (stem, ext) = match req.start.rfind('.') {
            Some(i) if i > 0 => (&req.start[..i], &req.start[i + 1..]),
            _ => (&req.start[..], ""),
        };
        return match var {
            "name" => req.clone(),
            "stem" => Ends::exact(stem),
            "ext" => Ends::exact(ext),
            _ => Ends::default(),
        };
    }
    // The name's last `.`, when it is in its end text (and not the name's first character).
    let dot = req.end.rfind('.').filter(|&d| d > 0 || !req.start.is_empty());
    match var {
        "name" => req.clone(),
        // A stem ends before the name's last dot: after the start text when that dot is in
        // the end text, else perhaps in the start text (before its own last dot, not first).
        "stem" => match dot {
            Some(d) => Ends::between(&req.start, &req.end[..d]),
            None => Ends::between(req.start.rfind('.').filter(|&k| k > 0).map_or(&req.start[..], |k| &req.start[..k]), ""),
        },
        // All of it: what follows the name's last dot.
        "ext" => match dot {
            Some(d) => Ends::exact(&req.end[d + 1..]),
            None => Ends::default(),
        },
        _ => Ends::default(),
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
        let partner = format!("{{ type: sftp, host: {host}, user: u, auth: {{ password: p }}, host_key: {{ known_hosts: /k }} }}");
        flow_of(name, &partner, folder, response, sink, "")
    }

    /// A round trip of files `source` adds to the source's settings (`, include: [...]`),
    /// sent to `partner` (an endpoint's YAML) with `sink` added to the request sink's settings.
    fn flow_of(name: &str, partner: &str, folder: &str, response: &str, sink: &str, source: &str) -> Flow {
        let yaml = format!(
            "name: {name}\nendpoints:\n  out: {{ type: local, root: /tmp/out }}\n  partner: {partner}\n  \
             acks: {{ type: local, root: /tmp/acks }}\n\
             source: {{ endpoint: out, path: /{source} }}\nsinks: [ {{ endpoint: partner, path: /inbox{sink} }} ]\n\
             response: {{ path: {folder}, name: \"{response}\", deadline: 1h, sinks: [ {{ endpoint: acks }} ] }}\n"
        );
        crate::config::load_flow_str(&yaml, &Path::new("/flows").join(format!("{name}.yaml"))).unwrap()
    }

    /// A round trip of the files `include` takes, answered as `response` in /outbox of `h`.
    fn taking(name: &str, include: &str, response: &str) -> Flow {
        flow_sent_taking(name, include, response, "")
    }

    fn flow_sent_taking(name: &str, include: &str, response: &str, sink: &str) -> Flow {
        let partner = "{ type: sftp, host: h, user: u, auth: { password: p }, host_key: { known_hosts: /k } }";
        flow_of(name, partner, "/outbox", response, sink, &format!(", include: {include}"))
    }

    /// The ends of the names template text `t` gives, from its own text alone.
    fn literal(t: &str) -> Ends {
        rendered_ends(t, &[Ends::default()]).remove(0)
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
        let req = Ends::between;
        let var_ends = |r: &Ends, v: &str| {
            let e = super::var_ends(r, v);
            [e.start, e.end]
        };
        let r = req("ORD-", "_x.csv");
        assert_eq!([var_ends(&r, "name"), var_ends(&r, "stem"), var_ends(&r, "ext")], [["ORD-", "_x.csv"], ["ORD-", "_x"], ["csv", "csv"]]);
        assert_eq!(var_ends(&r, "size"), ["", ""]);
        // No dot in the end text: the last dot may be in the start text (`a.b` + `cd`: stem `a`).
        let r = req("a.b", "x");
        assert_eq!([var_ends(&r, "stem"), var_ends(&r, "ext")], [["a", ""], ["", ""]]);
        // `.csv` alone may be all of a name: stem `.csv`, no extension.
        let r = req("", ".csv");
        assert_eq!([var_ends(&r, "stem"), var_ends(&r, "ext")], [["", ""], ["", ""]]);
        let r = Ends::exact("a.tar.gz");
        assert_eq!([var_ends(&r, "stem"), var_ends(&r, "ext")], [["a.tar", "a.tar"], ["gz", "gz"]]);
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
        // One folder, said once.
        assert!(!d.message.contains("which may be the same folder"), "{}", d.message);
        // What keeps them apart, each of what the check reads: the response names, the
        // request sinks' names, the sources' patterns; or another folder.
        assert!(
            d.message.ends_with(
                "give the two flows' response names fixed text that tells them apart (`invoices-{{stem}}.ack`), or, for responses \
                 named after their requests, their request sinks' `name:` (`ORD-{{name}}` and `INV-{{name}}`) or, for requests \
                 named after the files they send, their sources' `include` patterns (`orders_*.csv` and `invoices_*.csv`); or \
                 give their responses separate folders"
            ),
            "{}",
            d.message
        );
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

    /// What a file name certainly starts and ends with, from the `include` pattern that takes
    /// it; only the end when something but the pattern's own `/`s may match a `/`.
    #[test]
    fn an_include_patterns_fixed_text_says_what_its_names_start_and_end_with() {
        let e = |p: &str| {
            let e = glob_ends(p);
            (e.start, e.end, e.exact)
        };
        let s = |a: &str, b: &str, x: bool| (a.to_string(), b.to_string(), x);
        assert_eq!(e("orders_*.csv"), s("orders_", ".csv", false));
        assert_eq!(e("orders.csv"), s("orders.csv", "orders.csv", true));
        assert_eq!(e("**/in/orders_*.csv"), s("orders_", ".csv", false));
        assert_eq!(e("sub/*/orders.csv"), s("orders.csv", "orders.csv", true));
        assert_eq!(e("ord_[0-9]?.c[st]v"), s("ord_", "v", false));
        assert_eq!(e("*.{csv,txt}"), s("", "", false));
        assert_eq!(e("{orders,invoices}_*.csv"), s("", ".csv", false));
        assert_eq!(e("**"), s("", "", false));
        // `[!x]` matches `/` too (`ord/a.csv`): the name's start is not told.
        assert_eq!(e("ord[!x]*.csv"), s("", ".csv", false));
        assert_eq!(e("{a/b,c}x.csv"), s("", "x.csv", false));
        assert_eq!(e("o[--0]x*.csv"), s("", ".csv", false));
        assert_eq!(e("o\\*x.csv"), s("", "x.csv", false));
    }

    /// Requests named after the files the source takes: two flows whose `include` patterns'
    /// fixed text keeps their names apart await responses that never meet. Anything uncertain
    /// keeps the warning.
    #[test]
    fn responses_to_requests_kept_apart_by_the_source_patterns_do_not_clash() {
        let orders = taking("orders", "[\"orders_*.csv\"]", "{{stem}}.ack");
        for b in [
            taking("invoices", "[\"invoices_*.csv\"]", "{{stem}}.ack"),
            taking("invoices", "[\"invoices_*.csv\", \"inv_*.xml\"]", "{{name}}.ack"),
            // Sent under another name: that name counts (`INV-orders_1.csv` answered `INV-orders_1.ack`).
            flow_sent_taking("invoices", "[\"orders_*.csv\"]", "{{stem}}.ack", ", name: \"INV-{{name}}\""),
            // The whole name: `orders.csv` answered `orders.csv.ack`.
            taking("invoices", "[\"orders.csv\"]", "{{name}}.ack"),
        ] {
            assert!(response_clashes(&[&orders, &b]).is_empty(), "{:?}", b.source.include_patterns);
        }
        let exact = taking("single", "[\"a.csv\"]", "{{name}}.ack");
        assert!(response_clashes(&[&exact, &taking("other", "[\"b.csv\"]", "{{name}}.ack")]).is_empty());
        for (a, b, why) in [
            (
                &orders,
                taking("invoices", "[\"invoices_*.csv\", \"orders_*.xml\"]", "{{stem}}.ack"),
                "`orders_1.xml` answered as `orders_1.ack`",
            ),
            (&orders, taking("invoices", "[\"*.csv\"]", "{{stem}}.ack"), "every name"),
            (&orders, taking("invoices", "[\"ORDERS_*.csv\"], ignore_case: true", "{{stem}}.ack"), "`orders_1.csv` taken ignoring case"),
            (&orders, taking("invoices", "[\"{orders,invoices}_*.csv\"]", "{{stem}}.ack"), "alternatives: not told"),
            (&orders, taking("invoices", "[\"ord[!x]*.csv\"]", "{{stem}}.ack"), "`[!x]` may match `/`"),
            (
                &orders,
                flow_sent_taking("invoices", "[\"invoices_*.csv\"]", "{{stem}}.ack", ", name: \"{{run}}-{{name}}\""),
                "named by the run",
            ),
            (&orders, flow_sent_taking("invoices", "[\"invoices_*.csv\"]", "{{stem}}.ack", ", if_exists: rename"), "renamed"),
            // The one name `a.csv`, answered `a.csv.ack`, is among the other's `a….csv.ack`.
            (&exact, taking("other", "[\"a*.csv\"]", "{{name}}.ack"), "`a.csv` among `a*.csv`"),
            (&exact, taking("other", "[\"a.csv\"]", "{{stem}}.csv.ack"), "the same name"),
        ] {
            assert_eq!(response_clashes(&[a, &b]).len(), 1, "{why}");
        }
    }

    /// An FTP endpoint without `root` works in the login folder, which may be any folder: its
    /// `/outbox` may be the `/outbox` of the same server and user under `root: /home/u`.
    #[test]
    fn a_folder_under_the_login_folder_may_be_one_named_from_a_root() {
        let ftp = |name: &str, root: &str, folder: &str| {
            let partner = format!("{{ type: ftp, host: h, user: u, password: p{root} }}");
            flow_of(name, &partner, folder, "{{stem}}.ack", "", "")
        };
        let login = ftp("orders", "", "/outbox");
        for b in [ftp("invoices", ", root: /home/u", "/outbox"), ftp("invoices", ", root: /", "/outbox"), ftp("invoices", "", "/outbox/")] {
            assert_eq!(response_clashes(&[&login, &b]).len(), 1, "{:?}", b.endpoints["partner"]);
            assert_eq!(response_clashes(&[&b, &login]).len(), 1, "{:?}", b.endpoints["partner"]);
        }
        // Each folder said as it is, when they are not said alike: `/outbox` of one flow is
        // not the other's `/outbox` but may be it. Said "in /outbox on ftp u@h:21" of both.
        let rooted = ftp("invoices", ", root: /home/u", "/outbox");
        let message = |a: &Flow, b: &Flow| response_clashes(&[a, b])[0].message();
        let why = "which may be the same folder (a login folder may be any folder of the server): unless";
        let m = message(&login, &rooted);
        assert!(
            m.starts_with(&format!(
                "flow `invoices` awaits responses named `{{{{stem}}}}.ack` in /home/u/outbox on ftp u@h:21, where flow `orders` \
                 (/flows/orders.yaml) awaits `{{{{stem}}}}.ack` in /outbox under the login folder, {why}"
            )),
            "{m}"
        );
        let m = message(&rooted, &login);
        assert!(
            m.starts_with(&format!(
                "flow `orders` awaits responses named `{{{{stem}}}}.ack` in /outbox under the login folder on ftp u@h:21, where flow \
                 `invoices` (/flows/invoices.yaml) awaits `{{{{stem}}}}.ack` in /home/u/outbox, {why}"
            )),
            "{m}"
        );
        // Both under the login folder: one folder, said once.
        let m = message(&login, &ftp("invoices", "", "/outbox/"));
        assert!(m.contains(" in /outbox under the login folder on ftp u@h:21, where ") && !m.contains(why), "{m}");
        // Not a folder of another name, nor of another user.
        for b in [ftp("invoices", ", root: /home/u", "/inbox"), ftp("invoices", "", "/outbox/x")] {
            assert!(response_clashes(&[&login, &b]).is_empty(), "{:?}", b.response.as_ref().map(|r| r.flow.source.path.to_string()));
        }
        let other_user =
            flow_of("invoices", "{ type: ftp, host: h, user: v, password: p, root: /home/u }", "/outbox", "{{stem}}.ack", "", "");
        assert!(response_clashes(&[&login, &other_user]).is_empty());
    }
}
