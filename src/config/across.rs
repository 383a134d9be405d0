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
//! `invoices_*.csv` answered as `{{stem}}.ack` never do), which cannot be told here.
//!
//! It reads the flows as loaded; it connects to nothing and decides nothing at run time.

use std::path::Path;

use super::flow::EndpointSpec;
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
            let (a, b) = (response_name(first), response_name(second));
            if may_meet(a, b) {
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
            "flow `{}` awaits responses named `{nb}` in {}, where flow `{}` ({}) awaits `{na}`: unless the names of their requests keep them apart, each flow takes the answers it expects by name and would take the other's (the answer to one flow's request delivered by the other, and the first one's await left overdue); give the two flows' response names fixed text that tells them apart (`{}-{{{{stem}}}}.ack`), or their responses separate folders",
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

/// Whether two response name templates may render the same name: unless their fixed text
/// (before the first `{{` and after the last `}}`; all of a fixed name) keeps them apart.
fn may_meet(a: &str, b: &str) -> bool {
    let (pa, sa) = fixed_ends(a);
    let (pb, sb) = fixed_ends(b);
    match (pa.len() == a.len(), pb.len() == b.len()) {
        (true, true) => a == b,
        // A fixed name against a template: the name must have the template's fixed ends.
        (true, false) => a.len() >= pb.len() + sb.len() && a.starts_with(pb) && a.ends_with(sb),
        (false, true) => b.len() >= pa.len() + sa.len() && b.starts_with(pa) && b.ends_with(sa),
        (false, false) => (pa.starts_with(pb) || pb.starts_with(pa)) && (sa.ends_with(sb) || sb.ends_with(sa)),
    }
}

/// The fixed text a name template starts and ends with (the whole of it, twice, for a fixed
/// name).
fn fixed_ends(t: &str) -> (&str, &str) {
    match (t.find("{{"), t.rfind("}}")) {
        (Some(i), Some(j)) if j >= i => (&t[..i], &t[j + 2..]),
        _ => (t, t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round trip named `name`, answered as `response` in `folder` of the partner `host`.
    fn flow(name: &str, host: &str, folder: &str, response: &str) -> Flow {
        let yaml = format!(
            "name: {name}\nendpoints:\n  out: {{ type: local, root: /tmp/out }}\n  \
             partner: {{ type: sftp, host: {host}, user: u, auth: {{ password: p }}, host_key: {{ known_hosts: /k }} }}\n  \
             acks: {{ type: local, root: /tmp/acks }}\n\
             source: {{ endpoint: out, path: / }}\nsinks: [ {{ endpoint: partner, path: /inbox }} ]\n\
             response: {{ path: {folder}, name: \"{response}\", deadline: 1h, sinks: [ {{ endpoint: acks }} ] }}\n"
        );
        crate::config::load_flow_str(&yaml, &Path::new("/flows").join(format!("{name}.yaml"))).unwrap()
    }

    #[test]
    fn names_meet_unless_their_fixed_text_keeps_them_apart() {
        assert!(may_meet("{{stem}}.ack", "{{stem}}.ack"));
        assert!(may_meet("{{stem}}.ack", "{{name}}.ack"));
        // `{{stem}}` may start with `ORD-`.
        assert!(may_meet("ORD-{{stem}}.ack", "{{stem}}.ack"));
        assert!(!may_meet("ORD-{{stem}}.ack", "INV-{{stem}}.ack"));
        assert!(!may_meet("{{stem}}.ack", "{{stem}}.xml"));
        assert!(may_meet("ack.xml", "ack.xml") && !may_meet("ack.xml", "nak.xml"));
        assert!(may_meet("ORD-1.ack", "ORD-{{stem}}.ack") && !may_meet("INV-1.ack", "ORD-{{stem}}.ack"));
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
}
