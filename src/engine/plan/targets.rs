//! The plan's look at the sinks: for each file a run would deliver (or resume before the end
//! of its deliveries, for the sinks not confirmed yet), the target each sink's
//! exists-policy would choose now (`transfer::choose_target`, which only stats, and the names
//! the files of the same run take before it), so that the plan does not say "deliver" where
//! the run fails the file, or name a target the run does not write; and what the run writes
//! beside each target: the rejects file (if records are rejected) and the trigger; and the
//! triggers an earlier run left owed for deliveries it confirmed (`lifecycle::owed_triggers`).
//!
//! Only looks: nothing is written, no folder made. A sink that cannot be reached is a caveat.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use futures::StreamExt;

use super::{Action, PlannedFile};
use crate::config::Flow;
use crate::config::flow::{Disposition, IfExists, Sink};
use crate::endpoint::{DynEndpoint, RemotePath};
use crate::engine::error::FileError;
use crate::engine::transfer::{self, Target};
use crate::engine::{discover, endpoints, lifecycle};
use crate::ledger::{FileRecord, FileState, LedgerError, Snapshot};

/// The folder and name sink `i` gives the file, as a run names it (`lifecycle::wanted_for`):
/// after the output's extension when the steps write another format.
pub(super) fn named(flow: &Flow, i: usize, c: &discover::Candidate, run: u64, now: SystemTime) -> Result<(RemotePath, String), FileError> {
    lifecycle::wanted_for(flow, i, &c.entry, &c.rel, run, now)
}

/// `erp:/inbox/a.csv`.
pub(super) fn shown(sink: &Sink, dir: &RemotePath, name: &str) -> String {
    format!("{}:{}/{}", sink.endpoint, dir.to_string().trim_end_matches('/'), name)
}

/// How a plan shows the target a sink's exists-policy `chosen` for `wanted` (`name` in the
/// sink's folder on `endpoint`), with no other file of the run taking it: what the run writes
/// (or leaves there), or, `Err`, why the sink refuses it (the run fails the file). Also for a
/// round trip's responses (`awaits::foresee`).
pub(in crate::engine) fn chosen_shown(
    endpoint: &str,
    wanted: String,
    name: &str,
    chosen: Result<Target, FileError>,
) -> Result<String, String> {
    match chosen {
        Err(FileError::TargetExists { why, .. }) => Err(format!("{wanted} exists already ({why})")),
        Err(e) => Ok(format!("{wanted} (not looked at: {e})")),
        Ok(Target::Skip(..)) => Ok(format!("{wanted} (there already: left as it is, counted as delivered)")),
        Ok(Target::Upload(_, Some(_))) => Ok(format!("{wanted} (replacing the file there)")),
        Ok(Target::Upload(p, None)) if p.name() == name => Ok(wanted),
        Ok(Target::Upload(p, None)) => Ok(format!("{endpoint}:{p} ({wanted} is taken)")),
    }
}

/// How a plan shows a delivery to `target` on `endpoint` an earlier run recorded and did not
/// confirm (a crash, a failed upload): the run takes it as delivered if it is there whole,
/// else sends it again (`lifecycle::recovered`). Also for a round trip's responses
/// (`awaits::foresee`).
pub(in crate::engine) fn unconfirmed_shown(endpoint: &str, target: &str) -> String {
    format!("{endpoint}:/{target} (recorded by an earlier run: taken as delivered if found there whole, else sent again)")
}

/// One sink's target of one file, as looked at.
enum Look {
    /// Shown as it is: a name that cannot be made, a sink not reached.
    Shown(String),
    /// Delivered to `target` on sink `sink` before (`shown`: as said, not for a resumed file):
    /// its rejects file may still be owed.
    Before { sink: usize, target: RemotePath, shown: Option<String> },
    /// What the run's exists-policy chose for `dir/name` on sink `sink`, on the sink as it is.
    /// `room`: the longest free name `rename` may choose (`lifecycle::rename_room`).
    Chosen { sink: usize, dir: RemotePath, name: String, room: usize, chosen: Result<Target, FileError> },
}

/// The first free name for `name` in `dir` that no earlier file of the run takes either, as
/// `naming::free_name_but` finds it once those files are delivered.
async fn next_free(
    ep: &dyn crate::endpoint::Endpoint,
    dir: &RemotePath,
    (name, room): (&str, usize),
    endpoint: &str,
    taken: &HashMap<(String, String), String>,
) -> Result<RemotePath, FileError> {
    crate::engine::naming::free_name_within(ep, dir, name, room, |p| taken.contains_key(&(endpoint.to_string(), p.to_string()))).await
}

/// What a run writes beside the file it delivers to `target` on `sink`, looked at as the run
/// chooses it: the rejects file (when the steps may write one: only if records are rejected)
/// through the sink's exists-policy (`transfer::choose_target`, passing over the names
/// earlier files of the run take, `taken`, which it then joins as `source`'s), and the
/// trigger, which never replaces a file with content (`transfer::trigger_room`: the file
/// then fails, delivered).
#[allow(clippy::too_many_arguments)]
async fn beside(
    flow: &Flow,
    sink: &Sink,
    ep: &dyn crate::endpoint::Endpoint,
    target: &RemotePath,
    rel_dir: &str,
    run: u64,
    now: SystemTime,
    (source, taken): (&str, &mut HashMap<(String, String), String>),
    targets: &mut Vec<String>,
    refused: &mut Vec<String>,
) {
    look_at_rejects(flow, sink, ep, target, (source, &mut *taken), targets).await;
    match lifecycle::trigger_of(sink, target, rel_dir, run, now) {
        Ok(None) => {}
        Ok(Some(t)) => look_at_trigger(sink, ep, &t, None, targets, refused).await,
        Err(e) => refused.push(format!("sink {} trigger: {e}", sink.endpoint)),
    }
}

/// The rejects file a run delivers beside the output delivered to `target` on `sink` (when
/// the steps may write one: only if records are rejected), through the sink's exists-policy
/// (`transfer::choose_target`, passing over the names earlier files of the run take, `taken`,
/// which it then joins as `source`'s).
async fn look_at_rejects(
    flow: &Flow,
    sink: &Sink,
    ep: &dyn crate::endpoint::Endpoint,
    target: &RemotePath,
    (source, taken): (&str, &mut HashMap<(String, String), String>),
    targets: &mut Vec<String>,
) {
    let at = |p: &RemotePath| format!("{}:{p}", sink.endpoint);
    let Some(ext) = lifecycle::rejects_ext(flow) else { return };
    let (dir, name) = (target.parent(), lifecycle::rejects_name(target, ext));
    let wanted = shown(sink, &dir, &name);
    let what = "the rejects file, if records are rejected";
    let mut chosen = transfer::choose_target(ep, &dir, &name, sink.if_exists).await;
    // Files of the run with one rejects name are held back but for `rename`
    // (`shared_targets`), whose free names pass over those of earlier files.
    let key = |p: &RemotePath| (sink.endpoint.clone(), p.to_string());
    let first = match &chosen {
        Ok(Target::Upload(p, None)) if sink.if_exists == IfExists::Rename => taken.get(&key(p)).cloned(),
        _ => None,
    };
    if first.is_some() {
        chosen =
            next_free(ep, &dir, (&name, crate::engine::naming::NAME_MAX), &sink.endpoint, taken).await.map(|p| Target::Upload(p, None));
    }
    targets.push(match &chosen {
        Ok(Target::Upload(p, None)) if p.name() == name => format!("{wanted} ({what})"),
        Ok(Target::Upload(p, None)) => match &first {
            Some(first) => format!("{} ({what}; {wanted} is delivered first by {first} in the same run)", at(p)),
            None => format!("{} ({what}; {wanted} is taken)", at(p)),
        },
        Ok(Target::Upload(p, Some(_))) => format!("{} ({what}, replacing the file there)", at(p)),
        Ok(Target::Skip(p, _)) => format!("{} ({what}: there already, left as it is)", at(p)),
        Err(FileError::TargetExists { why, .. }) => {
            format!("{wanted} ({what}: exists already ({why}); then the file fails, the output delivered)")
        }
        Err(e) => format!("{wanted} ({what}; not looked at: {e})"),
    });
    if let Ok(Target::Upload(p, _)) = &chosen {
        taken.insert(key(p), source.to_string());
    }
}

/// The trigger `sink` writes at `t`, looked at as the run writes it: one a run recorded as
/// about to be written (`pending_for`: the delivered file it tells of) is first looked for
/// (`transfer::trigger_written`: there, or the file taken by the partner, it is not written
/// again); then whether it may be written (`transfer::trigger_room`: never over a file with
/// content, the file then fails, delivered).
async fn look_at_trigger(
    sink: &Sink,
    ep: &dyn crate::endpoint::Endpoint,
    t: &RemotePath,
    pending_for: Option<&RemotePath>,
    targets: &mut Vec<String>,
    refused: &mut Vec<String>,
) {
    let at = format!("{}:{t}", sink.endpoint);
    if let Some(delivered) = pending_for {
        match transfer::trigger_written(ep, t, delivered).await {
            Ok(true) => return targets.push(format!("{at} (trigger, there already or its file taken by the partner: not written again)")),
            Ok(false) => {}
            Err(e) => return targets.push(format!("{at} (trigger; not looked at: {e})")),
        }
    }
    match transfer::trigger_room(ep, t).await {
        Ok(false) => targets.push(format!("{at} (trigger)")),
        Ok(true) => targets.push(format!("{at} (trigger, replacing the empty one there)")),
        Err(e @ FileError::TriggerWouldReplace { .. }) => refused.push(format!("{e}, after the file is delivered")),
        Err(e) => targets.push(format!("{at} (trigger; not looked at: {e})")),
    }
}

/// The triggers a run writes for deliveries of `rec` an earlier run confirmed and did not
/// trigger (it crashed or failed in between: `lifecycle::owed_triggers`), looked at on the
/// sinks reached.
#[allow(clippy::too_many_arguments)]
async fn look_at_owed(
    flow: &Flow,
    sinks: &BTreeMap<String, DynEndpoint>,
    rec: &FileRecord,
    rel_dir: &str,
    run: u64,
    now: SystemTime,
    targets: &mut Vec<String>,
    refused: &mut Vec<String>,
) {
    for (i, delivered) in lifecycle::owed_triggers(flow, rec) {
        let sink = &flow.sinks[i];
        let Some(ep) = sinks.get(&sink.endpoint) else { continue };
        match lifecycle::owed_trigger(sink, rec, i, &delivered, rel_dir, run, now) {
            Ok(None) => {}
            Ok(Some((t, pending))) => look_at_trigger(sink, &**ep, &t, pending.then_some(&delivered), targets, refused).await,
            Err(e) => refused.push(format!("sink {} trigger: {e}", sink.endpoint)),
        }
    }
}

/// Files in flight at once while the sinks are looked at (stat round trips to a server).
const LOOKS_IN_FLIGHT: usize = 8;

/// Most files whose targets a plan looks at: a folder of 50,000 files to deliver would take
/// 50,000 stats on each sink, minutes on a distant server, where the listing and the ledger
/// took seconds. The others keep their targets as named, with a caveat.
pub(super) const LOOKS_MAX: usize = 1000;

/// Looks at each target of the files to deliver on its sink, as the run chooses it
/// (`transfer::choose_target`, which only stats): a target that exists already is refused
/// (`if_exists: fail`: the file fails), renamed to the free name the run would take, replaced,
/// or left as it is. A sink that cannot be reached leaves its targets as named, with a caveat.
pub(super) async fn look_at_targets(
    flow: &Flow,
    candidates: &[discover::Candidate],
    files: &mut [PlannedFile],
    ledger: Option<&Snapshot>,
    run: u64,
    now: SystemTime,
    caveats: &mut Vec<String>,
) -> Result<(), LedgerError> {
    // The record of the same version of the file: sinks a run confirmed before (a failed file
    // retried, or one a crashed run left in flight), and the triggers it still owes for them.
    let record = |i: usize| -> Result<Option<FileRecord>, LedgerError> {
        let c = &candidates[i];
        Ok(match ledger {
            Some(l) => l.file(&flow.name, c.entry.path.as_str())?.filter(|r| lifecycle::same_version(flow, &c.entry, r)),
            None => None,
        })
    };
    // In listing order: the files to deliver, and those a crashed run left before the end of
    // their deliveries (the resumed run delivers to the sinks not confirmed yet, as a file
    // retried after a failure); not one being quarantined, which writes to no sink.
    let mut deliver = Vec::new();
    let mut recs = Vec::new();
    for (i, f) in files.iter().enumerate() {
        match f.action {
            Action::Deliver { .. } => recs.push(record(i)?),
            Action::Resume { state: FileState::Quarantining, .. } => continue,
            Action::Resume { .. } => match record(i)?.filter(|r| !lifecycle::delivered(r)) {
                Some(rec) => recs.push(Some(rec)),
                None => continue,
            },
            _ => continue,
        }
        deliver.push(i);
    }
    if deliver.is_empty() {
        return Ok(());
    }
    if deliver.len() > LOOKS_MAX {
        caveats.push(format!(
            "the targets of the first {LOOKS_MAX} files to deliver were looked at on the sinks; those of the other {} are shown as named \
             (a run applies each sink's if_exists to every file)",
            deliver.len() - LOOKS_MAX
        ));
        deliver.truncate(LOOKS_MAX);
        recs.truncate(LOOKS_MAX);
    }
    // Each sink on its own: one that cannot be reached leaves the others looked at.
    let mut sinks = std::collections::BTreeMap::new();
    for s in &flow.sinks {
        if sinks.contains_key(&s.endpoint) {
            continue;
        }
        match endpoints::open_all(flow, &[s.endpoint.as_str()]).await {
            Ok(eps) => sinks.extend(eps),
            Err(e) => caveats.push(format!(
                "sink {} could not be reached ({e}): its targets were not looked at, and a run now would stop before taking any file",
                s.endpoint
            )),
        }
    }
    let looks = futures::stream::iter(deliver.iter().zip(recs))
        .map(|(&i, rec)| {
            let (c, sinks) = (&candidates[i], &sinks);
            // A resumed file's line says what it still writes, not what it wrote.
            let resumed = matches!(files[i].action, Action::Resume { .. });
            async move {
                let mut looks = Vec::new();
                let recorded = rec.as_ref().map_or(&[][..], |r| &r.deliveries[..]);
                for (k, sink) in flow.sinks.iter().enumerate() {
                    match recorded.iter().find(|d| d.sink == k as u32) {
                        Some(d) if d.done => {
                            let shown = (!resumed).then(|| format!("{}:/{} (delivered before)", sink.endpoint, d.target));
                            match RemotePath::parse(&d.target) {
                                Ok(target) => looks.push(Look::Before { sink: k, target, shown }),
                                Err(_) => looks.extend(shown.map(Look::Shown)),
                            }
                            continue;
                        }
                        // Left unconfirmed (a crash, a failed upload): the run takes it as
                        // delivered if it is there whole, else sends it again.
                        Some(d) => {
                            looks.push(Look::Shown(unconfirmed_shown(&sink.endpoint, &d.target)));
                            continue;
                        }
                        None => {}
                    }
                    let (dir, name) = match named(flow, k, c, run, now) {
                        Ok(n) => n,
                        Err(e) => {
                            looks.push(Look::Shown(format!("{}:<{e}>", sink.endpoint)));
                            continue;
                        }
                    };
                    let Some(ep) = sinks.get(&sink.endpoint) else {
                        // Not reached (a note says so): as named, with its trigger (before,
                        // left out, as if the run wrote none).
                        looks.push(Look::Shown(shown(sink, &dir, &name)));
                        let rel_dir = c.rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                        match dir.join(&name).map(|target| lifecycle::trigger_of(sink, &target, rel_dir, run, now)) {
                            Ok(Ok(Some(t))) => looks.push(Look::Shown(format!("{}:{t} (trigger)", sink.endpoint))),
                            Ok(Ok(None)) | Err(_) => {}
                            Ok(Err(e)) => looks.push(Look::Shown(format!("{}:<trigger: {e}>", sink.endpoint))),
                        }
                        continue;
                    };
                    // As the run chooses (`delivery::send`); a trigger too long for the
                    // wanted name was refused by `named` already.
                    let room = lifecycle::rename_room(sink, &dir, &name, &c.rel, run, now).unwrap_or(crate::engine::naming::NAME_MAX);
                    let chosen = transfer::choose_target_within(&**ep, &dir, &name, sink.if_exists, room).await;
                    looks.push(Look::Chosen { sink: k, dir, name, room, chosen });
                }
                (i, looks, rec)
            }
        })
        .buffered(LOOKS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    // In listing order, as the run's files claim their names: a name an earlier file of the
    // same run delivers to is taken by then (a sink name without `{{name}}`).
    let mut taken: HashMap<(String, String), String> = HashMap::new();
    for (i, looks, rec) in looks {
        let source = files[i].path.clone();
        let mut targets = Vec::new();
        let mut refused = Vec::new();
        for look in looks {
            let (k, dir, name, room, chosen) = match look {
                Look::Chosen { sink, dir, name, room, chosen } => (sink, dir, name, room, chosen),
                Look::Shown(t) => {
                    targets.push(t);
                    continue;
                }
                Look::Before { sink: k, target, shown } => {
                    targets.extend(shown);
                    let sink = &flow.sinks[k];
                    if let (Some(rec), Some(ep)) = (&rec, sinks.get(&sink.endpoint))
                        && lifecycle::rejects_owed(rec, k)
                    {
                        look_at_rejects(flow, sink, &**ep, &target, (&source, &mut taken), &mut targets).await;
                    }
                    continue;
                }
            };
            let sink = &flow.sinks[k];
            let wanted = shown(sink, &dir, &name);
            let chosen_path = match &chosen {
                Ok(Target::Upload(p, _) | Target::Skip(p, _)) => Some(p.clone()),
                _ => None,
            };
            let first = chosen_path.as_ref().and_then(|p| taken.get(&(sink.endpoint.clone(), p.to_string()))).cloned();
            let writes = match (chosen, first) {
                (chosen @ Err(_), _) | (chosen, None) => {
                    let writes = match &chosen {
                        Ok(Target::Upload(p, _)) => Some(p.clone()),
                        _ => None,
                    };
                    match chosen_shown(&sink.endpoint, wanted, &name, chosen) {
                        Ok(shown) => targets.push(shown),
                        Err(why) => refused.push(why),
                    }
                    writes
                }
                (Ok(Target::Upload(p, _) | Target::Skip(p, _)), Some(first)) => {
                    let there = format!("{}:{p}", sink.endpoint);
                    match sink.if_exists {
                        IfExists::Fail => {
                            refused.push(format!("{there} is delivered first by {first} in the same run (sink if_exists: fail)"));
                            None
                        }
                        IfExists::Overwrite => {
                            targets.push(format!("{there} (replacing what {first} delivers there first in the same run)"));
                            Some(p)
                        }
                        IfExists::Skip => {
                            targets.push(format!("{there} ({first} is delivered there first in the same run: left as it is)"));
                            None
                        }
                        IfExists::Rename => match sinks.get(&sink.endpoint) {
                            Some(ep) => match next_free(&**ep, &dir, (&name, room), &sink.endpoint, &taken).await {
                                Ok(free) => {
                                    targets
                                        .push(format!("{}:{free} ({there} is delivered first by {first} in the same run)", sink.endpoint));
                                    Some(free)
                                }
                                Err(e) => {
                                    targets.push(format!("{there} (taken by {first} in the same run; no free name found: {e})"));
                                    None
                                }
                            },
                            None => None,
                        },
                    }
                }
            };
            if let Some(p) = writes {
                taken.insert((sink.endpoint.clone(), p.to_string()), source.clone());
                if let Some(ep) = sinks.get(&sink.endpoint) {
                    let rel_dir = candidates[i].rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    beside(flow, sink, &**ep, &p, rel_dir, run, now, (&source, &mut taken), &mut targets, &mut refused).await;
                }
            }
        }
        let rel_dir = candidates[i].rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        if let Some(rec) = &rec {
            look_at_owed(flow, &sinks, rec, rel_dir, run, now, &mut targets, &mut refused).await;
        }
        settle(flow, &mut files[i], targets, refused);
    }
    Ok(())
}

/// Gives `file` (to deliver, or resumed) what it writes (`targets`), or makes it fail for
/// what a sink refuses (`refused`), after what it delivers.
fn settle(flow: &Flow, file: &mut PlannedFile, targets: Vec<String>, refused: Vec<String>) {
    if refused.is_empty() {
        match &mut file.action {
            Action::Deliver { targets: t, .. } => *t = targets,
            Action::Resume { writes, .. } => *writes = targets,
            _ => {}
        }
        return;
    }
    let then = match &flow.after_failure {
        Disposition::MoveTo(p) => format!("the source is moved to {p}/"),
        _ => "the source stays and the next run tries again".to_string(),
    };
    let delivered = if targets.is_empty() { String::new() } else { format!(" (after delivering to {})", targets.join(", ")) };
    file.action = Action::Fail { why: format!("{}: the file fails{delivered}; {then}", refused.join("; ")) };
}
