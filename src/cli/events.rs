//! `wharf events [FLOW]`: the event log (failed runs, quarantines, unreachable endpoints and
//! recoveries, missing files, overdue/late/expired responses, files never taken): the newest
//! (`--limit`, saying when earlier ones were left out), or those after `--since SEQ` (a
//! consumer's cursor), oldest first either way, each with the run
//! that raised it (`-` for none: an `expect:` deadline, or an event recorded before events
//! knew their run).

use std::process::ExitCode;

use crate::ledger::Event;

use super::Global;
use super::files::when;
use super::output::outln;
use super::state::{no_ledger, open_for_read};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this flow's events (a flow name, or its file).
    pub flow: Option<String>,
    /// Only events after this sequence number (what a consumer saw last), oldest first.
    /// Without it: the newest events.
    #[arg(long, value_name = "SEQ", value_parser = since_seq)]
    pub since: Option<u64>,
    /// Most events to show: the first after `--since`, else the newest.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// JSON output (times in RFC 3339, UTC: `2026-12-06T07:18:42.123Z`): each event as
    /// recorded, with `folder` (`true` for a source folder the listing could not read, whose
    /// subject ends in `/`; else `false`).
    #[arg(long)]
    pub json: bool,
}

/// `--since`: an event's sequence number. A time (`yesterday`, `2026-12-01`) is the likely
/// mistake, said as such (clap's own message was "invalid digit found in string").
fn since_seq(text: &str) -> Result<u64, String> {
    text.trim().parse::<u64>().map_err(|_| {
        format!("`{text}` is not an event's sequence number: --since takes the `seq` of the last event seen (the first column of `wharf events`, `seq` in --json), not a time; without it the newest events are shown")
    })
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let Some(ledger) = open_for_read(global)? else {
        return no_ledger(global, args.json);
    };
    let flow = args.flow.as_deref().map(super::state::flow_name);
    // Without `--since`, one more than shown: whether earlier events were left out.
    let (events, earlier) = match args.since {
        Some(since) => (ledger.events(flow.as_deref(), since, args.limit)?, false),
        None => {
            let mut events = ledger.latest_events(flow.as_deref(), args.limit.saturating_add(1))?;
            let earlier = events.len() > args.limit;
            if earlier {
                events.remove(0);
            }
            (events, earlier)
        }
    };
    if args.json {
        let rows = events.iter().map(json_row).collect::<serde_json::Result<Vec<_>>>()?;
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let (true, Some(flow)) = (events.is_empty(), &flow)
        && let Some(never) = super::state::never_ran(&ledger, flow)?
    {
        outln!("{never}");
        return Ok(ExitCode::SUCCESS);
    }
    if events.is_empty() {
        outln!("no events{}", flow.map(|f| format!(" for flow {f}")).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![["seq", "at (UTC)", "flow", "run", "kind", "subject", "detail"].map(String::from).to_vec()];
    for e in events {
        let run = e.run.map_or_else(|| "-".to_string(), |r| r.to_string());
        let (subject, detail) = told(e.kind.as_str(), &e.subject, &e.detail);
        rows.push(vec![e.seq.to_string(), when(e.at), e.flow, run, e.kind.as_str().to_string(), subject, detail]);
    }
    use crate::text::Column;
    let columns = [
        Column::right(6),
        Column::left(19),
        Column::left(20),
        Column::right(5).gap(1),
        Column::left(11),
        Column::name(32).gap(1),
        Column::left(0),
    ];
    for line in crate::text::table(&columns, &rows) {
        outln!("{line}");
    }
    if earlier {
        outln!("(the newest {} events; earlier ones: --limit N, or --since SEQ to list from an event on)", args.limit);
    }
    Ok(ExitCode::SUCCESS)
}

/// An event's subject and detail as the table shows them: a subfolder the source's listing
/// could not read (recorded as `/in/locked/`) as its notice tells it, `source folder
/// /in/locked` and `cannot be read: CAUSE` (`--json` keeps the subject as recorded).
fn told(kind: &str, subject: &str, detail: &str) -> (String, String) {
    match crate::notify::unreadable_source_folder(kind, subject) {
        Some((folder, verb)) => (folder, if detail.is_empty() { verb.to_string() } else { format!("{verb}: {detail}") }),
        None => (self::subject(subject), detail.to_string()),
    }
}

/// An event as `--json` gives it: as recorded (its subject too), with `folder` saying whether
/// it is about a source folder (the table's `source folder /in/locked`, [`told`]), so that a
/// consumer need not read that from a trailing `/`.
fn json_row(e: &Event) -> serde_json::Result<serde_json::Value> {
    let mut v = serde_json::to_value(e)?;
    let folder = crate::notify::unreadable_source_folder(e.kind.as_str(), &e.subject).is_some();
    if let serde_json::Value::Object(map) = &mut v {
        map.insert("folder".into(), folder.into());
    }
    Ok(v)
}

/// A file's path as the other commands show it (`/in/a.csv`); `-` for a run-wide event.
fn subject(s: &str) -> String {
    match s {
        "" => "-".into(),
        s if s.starts_with('/') => s.into(),
        s => format!("/{s}"),
    }
}

#[cfg(test)]
mod tests {
    /// `--since` takes a sequence number; a time is refused saying what it takes (before:
    /// "invalid digit found in string").
    #[test]
    fn since_takes_a_sequence_number_and_says_so() {
        assert_eq!(super::since_seq("42"), Ok(42));
        let e = super::since_seq("yesterday").unwrap_err();
        assert!(e.contains("`yesterday` is not an event's sequence number") && e.contains("not a time"), "{e}");
    }

    #[test]
    fn subjects_are_shown_with_one_leading_slash() {
        assert_eq!(super::subject("in/a.csv"), "/in/a.csv");
        assert_eq!(super::subject("/in/a.csv"), "/in/a.csv");
        assert_eq!(super::subject(""), "-");
    }

    /// A subfolder the listing could not read is told as its notice tells it (before: as
    /// `/in/locked/`, read as a file that can never be taken); a file's `not_taken` is not.
    #[test]
    fn an_unreadable_source_folder_is_told_as_a_folder_that_cannot_be_read() {
        let why = "permission denied: opendir; nothing under it is taken while the listing cannot read it";
        let (subject, detail) = super::told("not_taken", "/in/locked/", why);
        assert_eq!((subject.as_str(), detail.as_str()), ("source folder /in/locked", format!("cannot be read: {why}").as_str()));
        // As the notice says it.
        let notice = crate::notify::Notice::new("not_taken", "f", chrono::DateTime::UNIX_EPOCH, "/in/locked/", why);
        assert!(notice.text().ends_with(&format!("{subject} {detail}")), "{}", notice.text());
        let link = "a symbolic link: only regular files are taken";
        assert_eq!(super::told("not_taken", "in/today.csv", link), ("/in/today.csv".into(), link.into()));
        assert_eq!(super::told("quarantined", "/in/a/", "x"), ("/in/a/".into(), "x".into()));
    }

    /// `--json` says which events are about a source folder (`"folder": true`), keeping the
    /// subject as recorded; every other event says `false` (before: only a trailing `/` in
    /// the subject told it).
    #[test]
    fn json_says_whether_an_event_is_about_a_source_folder() {
        use crate::ledger::{Event, EventKind};
        let event = |kind, subject: &str| Event {
            seq: 1,
            flow: "f".into(),
            at: 0,
            kind,
            subject: subject.into(),
            detail: "why".into(),
            run: Some(2),
        };
        let v = super::json_row(&event(EventKind::NotTaken, "/in/locked/")).unwrap();
        assert_eq!((&v["folder"], &v["subject"], &v["kind"]), (&true.into(), &"/in/locked/".into(), &"not_taken".into()), "{v:#}");
        for (kind, subject) in [(EventKind::NotTaken, "in/today.csv"), (EventKind::Quarantined, "/in/a/"), (EventKind::Failed, "")] {
            let v = super::json_row(&event(kind, subject)).unwrap();
            assert_eq!(v["folder"], false, "{v:#}");
            assert_eq!(v["run"], 2, "the rest as recorded: {v:#}");
        }
    }
}
