//! When a flow's history is pruned: after its run's listing (which says which files are
//! still in the source folder), at most once a day. What is forgotten is the ledger's rule
//! (`ledger::prune`). A round trip's response flow (`NAME.response`) is pruned with its flow.

use std::time::SystemTime;

use super::discover::{Candidate, Unlisted};
use crate::config::Flow;
use crate::config::flow::Disposition;
use crate::ledger::prune::{ForgetDelivered, Listed, Prune};
use crate::ledger::{Ledger, LedgerError, Millis, to_millis};

/// How often a flow's history is pruned.
const EVERY_MS: i64 = 86_400_000;

/// Records of each kind forgotten in one transaction at most (a first pruning of a ledger
/// years old goes on in the next runs, each one short).
const LIMIT: usize = 20_000;

/// How far back from its deadline an `expect:` window may reach (a week: `days: mon` looks
/// for a delivery since the Monday before), with a day to spare for time zones and DST
/// changes. A flow with `expect:` keeps at least this much of its history, whatever its
/// `history`: a delivery forgotten sooner would be reported missing.
const EXPECT_REACH_MS: i64 = 8 * EVERY_MS;

/// Prunes `flow`'s history when it is due, given the run's `listed` candidates and the
/// subfolders its listing could not read (`unlisted`: nothing under them is forgotten).
pub fn prune_after_listing(
    flow: &Flow,
    ledger: &Ledger,
    listed: &[Candidate],
    unlisted: &[Unlisted],
    now: SystemTime,
) -> Result<(), LedgerError> {
    let Some(keep) = flow.history else { return Ok(()) };
    let now = to_millis(now);
    if ledger.last_pruned(&flow.name)?.is_some_and(|at| (0..EVERY_MS).contains(&(now - at))) {
        return Ok(());
    }
    let listed = Listed {
        paths: listed.iter().map(|c| c.entry.path.as_str().to_string()).collect(),
        unlisted: unlisted.iter().map(|u| u.folder.as_str().to_string()).collect(),
    };
    let mut cutoff = now.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
    if !flow.expect.is_empty() {
        cutoff = cutoff.min(now.saturating_sub(EXPECT_REACH_MS));
    }
    prune(ledger, &flow.name, forget_delivered(flow), cutoff, &listed, now)?;
    match flow.response.as_deref() {
        Some(r) => {
            // The response flow (round trips) lists nothing of its own here: of its records,
            // those of the responses still awaited stay (the awaits read them), as a listed
            // file's do.
            let awaited = Listed::of(ledger.awaits(Some(&flow.name))?.into_iter().filter(|a| a.state.is_open()).map(|a| a.expected));
            prune(ledger, &r.flow.name, forget_delivered(&r.flow), cutoff, &awaited, now)?;
        }
        None => {
            // A round trip taken out of the flow: nothing else would ever prune its responses'
            // records (and `wharf forget` refuses the name while the flow has a file). They go
            // by the flow's `history` as if nothing were listed; what their records do not say
            // of their sources is taken as kept (their delivered identities stay).
            let name = format!("{}.response", flow.name);
            if !ledger.flow_records(&name)?.is_empty() {
                prune(ledger, &name, ForgetDelivered::Never, cutoff, &Listed::default(), now)?;
            }
        }
    }
    Ok(())
}

/// Which delivered identities may go with their records, by what `flow` does with a source.
fn forget_delivered(flow: &Flow) -> ForgetDelivered {
    match flow.after_success {
        Disposition::Keep => ForgetDelivered::Never,
        Disposition::MoveTo(_) => ForgetDelivered::Moved,
        Disposition::Delete => ForgetDelivered::All,
    }
}

/// Forgets what the records of the flow named `flow` older than `cutoff` allow, the paths
/// `listed` excepted.
fn prune(
    ledger: &Ledger,
    flow: &str,
    forget_delivered: ForgetDelivered,
    cutoff: Millis,
    listed: &Listed,
    now: Millis,
) -> Result<(), LedgerError> {
    let p = Prune { flow, cutoff, listed: Some(listed), forget_delivered, limit: LIMIT };
    let pruned = ledger.prune(&p, now)?;
    if !pruned.is_empty() {
        tracing::info!(
            flow = %flow,
            runs = pruned.runs,
            events = pruned.events,
            files = pruned.files,
            observations = pruned.observations,
            awaits = pruned.awaits,
            deliveries = pruned.deliveries,
            more = pruned.more,
            "Forgot history older than the flow's `history`."
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use crate::config::flow::{Disposition, EndpointSpec};
    use crate::engine::{RunOptions, run_once};
    use crate::ledger::Ledger;

    const DAY: Duration = Duration::from_secs(86_400);

    /// A flow whose round trip was taken out (its `response:` removed): its responses' records
    /// go by the flow's `history`, as they did with it (nothing else would ever prune them);
    /// a quarantined one stays, and the delivered identity of a response kept at its source.
    #[test]
    fn the_responses_of_a_round_trip_taken_out_of_the_flow_are_pruned_with_it() {
        use crate::ledger::{DoneRecord, FileRecord, FileState, SourceFate};
        let ledger = Ledger::in_memory().unwrap();
        let mut flow = crate::engine::tests::sample_flow();
        flow.history = Some(DAY);
        assert!(flow.response.is_none());
        let now = SystemTime::now();
        let old = crate::ledger::to_millis(now - 3 * DAY);
        let response = |path: &str, state, source_fate| FileRecord {
            path: path.into(),
            identity: format!("id:{path}"),
            state,
            updated: old,
            source_fate,
            ..Default::default()
        };
        for (path, fate) in [("ack/a.xml", SourceFate::Deleted), ("ack/b.xml", SourceFate::Kept)] {
            let rec = response(path, FileState::Done, fate);
            ledger.complete("t.response", &rec, &DoneRecord { path: path.into(), run: 1, at: old, targets: vec![] }).unwrap();
        }
        ledger.put_file("t.response", &response("ack/bad.xml", FileState::Quarantined, SourceFate::Kept)).unwrap();
        super::prune_after_listing(&flow, &ledger, &[], &[], now).unwrap();
        let left: Vec<String> = ledger.files("t.response").unwrap().into_iter().map(|r| r.path).collect();
        assert_eq!(left, ["ack/bad.xml"]);
        assert!(ledger.done("t.response", "id:ack/a.xml").unwrap().is_none());
        assert!(ledger.done("t.response", "id:ack/b.xml").unwrap().is_some());
    }

    /// A daemon polling for months: the ledger file stops growing once the flow's `history`
    /// is reached (redb reuses what pruning freed), and holds no more records than `history`
    /// allows.
    #[tokio::test]
    async fn a_ledger_stops_growing_once_history_is_reached() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst, state) = (dir.path().join("src"), dir.path().join("dst"), dir.path().join("state"));
        std::fs::create_dir_all(src.join("in")).unwrap();
        std::fs::create_dir_all(dst.join("inbox")).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let mut flow = crate::engine::tests::sample_flow();
        flow.endpoints.insert("partner".into(), EndpointSpec::Local { root: src.clone() });
        flow.endpoints.insert("erp".into(), EndpointSpec::Local { root: dst.clone() });
        flow.after_success = Disposition::Delete;
        flow.history = Some(DAY);
        let path = state.join("ledger.redb");
        let ledger = Ledger::open(&path).unwrap();
        let t0 = SystemTime::now();
        let every = Duration::from_secs(7200);
        let (per_run, days) = (3, 8u32);
        let runs_a_day = (DAY.as_secs() / every.as_secs()) as u32;
        let mut sizes = Vec::new();
        for i in 0..runs_a_day * days {
            for k in 0..per_run {
                std::fs::write(src.join(format!("in/f{i}-{k}.csv")), format!("{i},{k}\n")).unwrap();
            }
            let mut opts = RunOptions::new(state.join("staging"));
            // Records are stamped by the system clock: the runs go on from it, two hours apart.
            opts.now = Some(t0 + every * i);
            let r = run_once(&flow, &ledger, &opts, &mut |_| {}).await.unwrap();
            assert_eq!(r.counts.delivered, per_run, "{r:#?}");
            if (i + 1) % runs_a_day == 0 {
                sizes.push(std::fs::metadata(&path).unwrap().len());
            }
        }
        // Pruning is daily: at most two days' worth of records at any time.
        let (runs, files) = (ledger.runs(Some("t"), 100_000).unwrap().len(), ledger.files("t").unwrap().len());
        assert!(runs <= 2 * runs_a_day as usize + 1, "{runs} runs");
        assert!(files <= 2 * (runs_a_day * per_run) as usize, "{files} file records");
        // Bounded, give or take the pages redb's allocator holds at a given moment (up to a
        // dozen either way from one day to the next: one day in four or so ends a third above
        // the others, the next back down): unpruned, day 8 would be about 8/3 of day 3.
        let first = sizes[..3].iter().max().copied().unwrap_or(0);
        assert!(sizes.iter().skip(3).all(|s| *s <= first + first / 2), "ledger size at each day's end: {sizes:?}");
    }
}
