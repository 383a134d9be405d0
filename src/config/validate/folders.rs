//! Rules about where folders are relative to each other: a sink, a `move_to`, the quarantine
//! or the responses' folder that the source would list again, two sinks delivering into one
//! folder — compared by location (see `place.rs`), so another endpoint name for the same
//! place does not hide them. Also the building of a [`Disposition`] (`after:`), whose
//! `move_to` is such a folder.
//!
//! A child of `validate/mod.rs`, adding methods to the same `Checker`.

use super::Checker;
use super::response::static_folder;
use crate::config::flow::{Disposition, Sink, Source};
use crate::config::raw::RawDisposition;
use crate::endpoint::RemotePath;

/// How a folder lies relative to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Relation {
    /// The same folder (perhaps through another endpoint).
    Same,
    /// Strictly inside it.
    Inside,
}

impl Checker<'_, '_> {
    /// How `folder` on endpoint `ep` lies relative to `base` on endpoint `base_ep`, by where
    /// the endpoints are (see `place.rs`); by name when an endpoint is malformed.
    pub(super) fn relation(&self, ep: &str, folder: &RemotePath, base_ep: &str, base: &RemotePath) -> Option<Relation> {
        let (a, b) = match (self.places.get(ep), self.places.get(base_ep)) {
            (Some(a), Some(b)) => (a.locate(folder), b.locate(base)),
            _ if ep == base_ep => {
                return if folder == base { Some(Relation::Same) } else { folder.strip_prefix(base).map(|_| Relation::Inside) };
            }
            _ => return None,
        };
        if a == b { Some(Relation::Same) } else { a.inside(&b).then_some(Relation::Inside) }
    }

    /// Two sinks write into one folder: the same fixed folder, or the same path template
    /// under the same endpoint root.
    pub(super) fn same_sink_folder(&self, a: &Sink, b: &Sink) -> bool {
        match (static_folder(a), static_folder(b)) {
            (Some(fa), Some(fb)) => self.relation(&a.endpoint, &fa, &b.endpoint, &fb) == Some(Relation::Same),
            _ => {
                a.path.source() == b.path.source()
                    && self.relation(&a.endpoint, &RemotePath::root(), &b.endpoint, &RemotePath::root()) == Some(Relation::Same)
            }
        }
    }

    /// Refuses a folder (on endpoint `ep`) that the source would list again: the source
    /// folder itself, on any endpoint that reaches it, or one inside it when `recursive` is on.
    pub(super) fn not_rescanned(&mut self, path: &str, ep: &str, folder: &RemotePath, source: &Source, what: &str) {
        let Some(relation) = self.relation(ep, folder, &source.endpoint, &source.path) else { return };
        // Named with their endpoints when they differ: the names alone do not show it.
        let (on, source_on) = if ep == source.endpoint {
            (String::new(), String::new())
        } else {
            (format!(" on endpoint `{ep}`"), format!(" on endpoint `{}`", source.endpoint))
        };
        match relation {
            Relation::Same if on.is_empty() => {
                self.problem(path, format!("`{folder}` is the source folder: {what} would be picked up again"));
            }
            Relation::Same => self.problem(
                path,
                format!(
                    "`{folder}`{on} is the source folder (`{}`{source_on}: the same place): {what} would be picked up again",
                    source.path
                ),
            ),
            Relation::Inside if source.recursive => self.problem(
                path,
                format!(
                    "`{folder}`{on} is inside the source folder `{}`{source_on} and `recursive` is on: {what} would be picked up again",
                    source.path
                ),
            ),
            Relation::Inside => {}
        }
    }

    pub(super) fn disposition(&mut self, at: &str, d: RawDisposition, source: Option<&Source>) -> Option<Disposition> {
        Some(match d {
            RawDisposition::Keep => Disposition::Keep,
            RawDisposition::Delete => Disposition::Delete,
            RawDisposition::MoveTo(folder) => {
                let path = format!("{at}/move_to");
                if folder.trim().is_empty() {
                    // It would read as the endpoint's root: files moved there silently, or
                    // "`/` is the source folder" when the source is the root.
                    self.problem(
                        &path,
                        "`move_to` is empty: give the folder to move the files to (e.g. `/done`), or use `keep` or `delete`",
                    );
                    return None;
                }
                let folder = self.remote_path(&path, &folder)?;
                if let Some(src) = source {
                    self.not_rescanned(&path, &src.endpoint, &folder, src, "moved files");
                }
                Disposition::MoveTo(folder)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{BASE, problems, run};

    #[test]
    fn an_empty_move_to_says_it_is_empty() {
        // Said "`/` is the source folder" with the source at the root, and nothing (files
        // moved to the root) with the source elsewhere.
        let want = "`move_to` is empty: give the folder to move the files to (e.g. `/done`), or use `keep` or `delete` (at /after/success/move_to)";
        for base in [BASE.to_string(), BASE.replace("path: /in }", "path: / }")] {
            for empty in ["\"\"", "\" \""] {
                let p = problems(&format!("{base}after: {{ success: {{ move_to: {empty} }} }}\n"));
                assert_eq!(p, [want], "{base} {empty}");
            }
        }
    }

    #[test]
    fn two_sinks_delivering_to_one_place_and_a_move_into_a_sink_folder_are_refused() {
        let p =
            problems(&BASE.replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: l }, { endpoint: l, path: /b }, { endpoint: l } ]"));
        assert_eq!(
            p,
            ["delivers to the same place as sink 0: one copy would find the other there (give it another `path` or `name`) (at /sinks/2)"]
        );
        let local = BASE.replace("source: { endpoint: s, path: /in }", "source: { endpoint: l, path: /in }");
        let p = problems(&local.replace(
            "sinks: [ { endpoint: l } ]",
            "sinks: [ { endpoint: l, path: /archive } ]\nafter: { success: { move_to: /archive } }",
        ));
        assert_eq!(
            p,
            [
                "`/archive` is where sink 0 delivers: each moved source would land beside its own delivered copy (as `NAME-1`) (at /after/success/move_to)"
            ]
        );
        assert!(
            run(&local.replace(
                "sinks: [ { endpoint: l } ]",
                "sinks: [ { endpoint: l, path: /archive } ]\nafter: { success: { move_to: /done } }"
            ))
            .is_ok()
        );
    }

    /// A quarantine folder, or a failed file's `move_to`, that a sink delivers into put refused
    /// files among the delivered ones, for whoever takes those to take as delivered.
    #[test]
    fn quarantining_or_moving_failed_files_into_a_sink_folder_is_refused() {
        let local = BASE.replace("source: { endpoint: s, path: /in }", "source: { endpoint: l, path: /in }");
        let p = problems(&local.replace(
            "sinks: [ { endpoint: l } ]",
            "sinks: [ { endpoint: l, path: /inbox } ]\nsteps: [ { parse: { format: csv } } ]\nquarantine: { endpoint: l, path: /inbox }\nafter: { failure: { move_to: /inbox } }",
        ));
        assert_eq!(
            p,
            [
                "`/inbox` is where sink 0 delivers: a file that failed would be moved among the delivered ones, and taken as delivered by whoever takes those (at /after/failure/move_to)",
                "`/inbox` is where sink 0 delivers: a file the steps refuse would be put aside among the delivered ones, and taken as delivered by whoever takes those (at /quarantine/path)",
            ]
        );
        let apart = "sinks: [ { endpoint: l, path: /inbox } ]\nsteps: [ { parse: { format: csv } } ]\nquarantine: { endpoint: l, path: /inbox/rejected }";
        assert!(run(&local.replace("sinks: [ { endpoint: l } ]", apart)).is_ok());
    }

    #[test]
    fn a_folder_reached_through_another_endpoint_name_is_still_the_source_folder() {
        let flow = |endpoints: &str, rest: &str| format!("name: f\nendpoints:\n{endpoints}{rest}");
        // Local: one root inside the other, `~`, `..`.
        let locals = "  a: { type: local, root: ./data }\n  b: { type: local, root: ./data/in }\n  h: { type: local, root: ~/x }\n  k: { type: local, root: /home/u/x/../x/in }\n";
        let p = problems(&flow(locals, "source: { endpoint: a, path: /in }\nsinks: [ { endpoint: b, path: / } ]\n"));
        assert_eq!(
            p,
            [
                "`/` on endpoint `b` is the source folder (`/in` on endpoint `a`: the same place): delivered files would be picked up again (at /sinks/0/path)"
            ]
        );
        let p = problems(&flow(locals, "source: { endpoint: h, path: /in }\nsinks: [ { endpoint: k } ]\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("`/` on endpoint `k` is the source folder (`/in` on endpoint `h`"), "{p:?}");
        let p = problems(&flow(locals, "source: { endpoint: a, path: /, recursive: true }\nsinks: [ { endpoint: b, path: /out } ]\n"));
        assert_eq!(
            p,
            [
                "`/out` on endpoint `b` is inside the source folder `/` on endpoint `a` and `recursive` is on: delivered files would be picked up again (at /sinks/0/path)"
            ]
        );
        assert!(run(&flow(locals, "source: { endpoint: a, path: /in }\nsinks: [ { endpoint: b, path: /out } ]\n")).is_ok());

        // Servers: the same protocol, host (any case), port and user.
        let sftp = |name: &str, host: &str, user: &str| {
            format!("  {name}: {{ type: sftp, host: {host}, user: {user}, auth: {{ password: p }}, host_key: {{ known_hosts: k }} }}\n")
        };
        let servers =
            format!("{}{}{}", sftp("s", "sftp.example.com", "u"), sftp("t", "SFTP.example.com", "u"), sftp("v", "sftp.example.com", "v"));
        let p = problems(&flow(&servers, "source: { endpoint: s, path: /in }\nsinks: [ { endpoint: t, path: /in } ]\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("`/in` on endpoint `t` is the source folder") && p[0].ends_with("(at /sinks/0/path)"), "{p:?}");
        assert!(
            run(&flow(&servers, "source: { endpoint: s, path: /in }\nsinks: [ { endpoint: v, path: /in } ]\n")).is_ok(),
            "another user"
        );
        // The loopback address, however it is spelt.
        let loopback = format!("{}{}", sftp("s", "localhost", "u"), sftp("t", "\"[::1]\"", "u"));
        let p = problems(&flow(&loopback, "source: { endpoint: s, path: /in }\nsinks: [ { endpoint: t, path: /in } ]\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("`/in` on endpoint `t` is the source folder"), "{p:?}");
        let loopback = format!("{}{}", sftp("s", "127.0.0.1", "u"), sftp("t", "LOCALHOST", "u"));
        assert_eq!(problems(&flow(&loopback, "source: { endpoint: s, path: /in }\nsinks: [ { endpoint: t, path: /in } ]\n")).len(), 1);

        // Quarantine, and two sinks that are one folder.
        let both = format!("{locals}{servers}");
        let p = problems(&flow(
            &both,
            "source: { endpoint: s, path: /in }\nsinks: [ { endpoint: a, path: /in }, { endpoint: b } ]\nsteps: [ { parse: { format: csv } } ]\nquarantine: { endpoint: t, path: /in }\n",
        ));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("delivers to the same place as sink 0") && p[0].ends_with("(at /sinks/1)"), "{p:?}");
        assert!(p[1].contains("`/in` on endpoint `t` is the source folder") && p[1].ends_with("(at /quarantine/path)"), "{p:?}");

        // A move into the folder another name of the sink's endpoint delivers to.
        let p = problems(&flow(
            locals,
            "source: { endpoint: a, path: /in }\nsinks: [ { endpoint: b, path: /archive } ]\nafter: { success: { move_to: /in/archive } }\n",
        ));
        assert_eq!(
            p,
            [
                "`/in/archive` is where sink 0 delivers: each moved source would land beside its own delivered copy (as `NAME-1`) (at /after/success/move_to)"
            ]
        );
    }
}
