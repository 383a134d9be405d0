//! Delivering a file to the flow's sinks: what they receive (the staged original or the
//! steps' output), the upload of each (temporary name, verify, rename — `transfer`), a delivery
//! recovered from a recorded target, and trigger files.

use super::*;
use crate::config::flow::Sink;
use crate::config::raw_steps::OnInvalid;

/// What the sinks receive: the staged original, or the steps' output (and a rejects file).
pub(super) struct Payload {
    pub(super) file: PathBuf,
    pub(super) size: u64,
    /// The name the sink templates see (`{{name}}`).
    pub(super) name: String,
    pub(super) rejects: Option<(PathBuf, u64)>,
    rejects_ext: &'static str,
    /// The SHA-256 `file` must have, when it is the staged file (a steps' output is fsynced
    /// when it is written: its size tells).
    sha256: Option<String>,
}

impl Payload {
    /// Whether the local files are all there, whole.
    pub(super) async fn ready(&self) -> bool {
        staged_complete(&self.file, self.size, self.sha256.as_deref()).await
            && (match &self.rejects {
                Some((p, n)) => staged_complete(p, *n, None).await,
                None => true,
            })
    }
}

/// The payload of the file as recorded: the steps' output when they made one, else the
/// staged original.
pub(super) fn payload(cx: &Ctx<'_>, rec: &FileRecord, entry: &Entry, staged: &Path) -> Result<Payload, FileError> {
    let steps = cx.flow.steps.as_ref();
    let result = match steps {
        Some(_) => cx.ledger.file_result(&cx.flow.name, &rec.path)?,
        None => None,
    };
    let rejects_ext = steps.map_or("csv", |s| s.rejects_ext());
    Ok(match result.and_then(|r| r.output.map(|size| (size, r.rejects))) {
        Some((size, rejects)) => Payload {
            file: content::output_path(staged),
            size,
            name: content::delivered_name(steps, entry.path.name())?,
            rejects: rejects.map(|n| (content::rejects_path(staged), n)),
            rejects_ext,
            sha256: None,
        },
        None => Payload {
            file: staged.to_path_buf(),
            size: rec.size,
            name: entry.path.name().to_string(),
            rejects: None,
            rejects_ext,
            sha256: rec.sha256.clone(),
        },
    })
}

/// What [`deliver_one`] did.
pub(super) struct Sent {
    /// The sink took the payload's file itself (it is gone).
    pub(super) took: bool,
    /// Delivered before this call: confirmed in the record, or found whole after a crash (not
    /// a target left as it was, see [`Delivery::left_alone`]).
    pub(super) before: bool,
}

/// Delivers the payload (and its rejects file) to sink `i`, except what that sink already
/// confirmed; `data`: the payload's bytes, when it is held in memory.
pub(super) async fn deliver_one(
    cx: &Ctx<'_>,
    rec: &mut FileRecord,
    rel: &str,
    i: usize,
    p: &Payload,
    data: Option<&[u8]>,
) -> Result<Sent, FileError> {
    let sink = &cx.flow.sinks[i];
    let ep = &*cx.sinks[i];
    let idx = i as u32;
    let rel_dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let mut took = false;
    // The trigger is owed for a delivered file (uploaded now or before a crash), not for a
    // target left as it was (`if_exists: skip`), now or by a run before a crash.
    let recorded = rec.deliveries.iter().find(|d| d.sink == idx && d.done);
    let kept = recorded.is_some_and(Delivery::left_alone);
    let before = recorded.is_some() && !kept;
    let (target, triggered) = match recovered(cx, rec, ep, idx, p).await? {
        Some(t) if kept => (t, false),
        Some(t) => (t, true),
        None => {
            let (dir, name) = wanted(sink, &p.name, rel_dir, p.size, cx.run, cx.now)?;
            // The last sink to need the payload may take it by renaming (a local folder).
            let last_use = (0..cx.sinks.len() as u32).filter(|&j| j != idx).all(|j| rec.deliveries.iter().any(|d| d.sink == j && d.done));
            // A staged file not hashed yet is hashed on its way out.
            let hash = unhashed(cx, rec);
            let (t, uploaded, taken) = send(cx, rec, i, idx, &dir, &name, rel_dir, (&p.file, data), p.size, last_use, hash).await?;
            took = taken;
            (t, uploaded)
        }
    };
    if let Some((file, size)) = &p.rejects {
        // Beside the delivered output, named after it: `roster-1.csv` → `roster-1.rejects.csv`.
        let ridx = REJECTS + idx;
        if recovered(cx, rec, ep, ridx, p).await?.is_none() {
            let name = rejects_name(&target, p.rejects_ext);
            send(cx, rec, i, ridx, &target.parent(), &name, rel_dir, (file, None), *size, false, false).await?;
        }
    }
    // Last: the trigger tells the partner that everything of this delivery is there (the
    // rejects file too). Written once, also by a run resumed after a crash before it.
    if triggered && trigger_due(sink, rec, i) {
        trigger(cx, rec, i, &target, rel_dir).await?;
    }
    Ok(Sent { took, before })
}

/// Whether sink `i` writes a trigger that `rec` does not record as written.
fn trigger_due(sink: &Sink, rec: &FileRecord, i: usize) -> bool {
    sink.trigger.is_some() && !rec.deliveries.iter().any(|d| d.sink == TRIGGERS + i as u32 && d.done)
}

/// Where `sink` (sink `i`) writes the trigger of its delivered `target` (of a file from
/// `rel_dir`, in run `run`), if it writes one, and whether a run recorded it as about to be
/// written and then stopped (a crash, or a failed write: it may be there already). A recorded
/// trigger keeps its recorded name: named again, a name with `{{run}}` or the date would be
/// another one, a second trigger for one delivery.
pub(in crate::engine) fn owed_trigger(
    sink: &Sink,
    rec: &FileRecord,
    i: usize,
    target: &RemotePath,
    rel_dir: &str,
    run: u64,
    now: SystemTime,
) -> Result<Option<(RemotePath, bool)>, FileError> {
    let recorded = rec.deliveries.iter().find(|d| d.sink == TRIGGERS + i as u32 && !d.done).and_then(|d| RemotePath::parse(&d.target).ok());
    match recorded {
        Some(p) if sink.trigger.is_some() => Ok(Some((p, true))),
        _ => Ok(trigger_of(sink, target, rel_dir, run, now)?.map(|p| (p, false))),
    }
}

/// The triggers a run that takes up `rec` writes for deliveries an earlier run confirmed (a
/// run that crashed or failed between a delivery and its trigger), as [`deliver_one`] decides
/// it: for each sink with a `trigger` whose delivery is confirmed (not a target left as it
/// was, which is owed none) and whose trigger is not recorded written, the sink and the
/// delivered target (the trigger's name and state: [`owed_trigger`]). None once every sink
/// confirmed (the file is past its deliveries). `wharf plan` shows them from this.
pub(in crate::engine) fn owed_triggers<'a>(
    flow: &'a crate::config::Flow,
    rec: &'a FileRecord,
) -> impl Iterator<Item = (usize, RemotePath)> + 'a {
    let delivering = !delivered(rec);
    rec.deliveries.iter().filter(move |d| delivering && d.sink < REJECTS && d.done && !d.left_alone()).filter_map(move |d| {
        let i = d.sink as usize;
        flow.sinks.get(i).filter(|s| trigger_due(s, rec, i))?;
        let target = RemotePath::parse(&d.target).ok()?;
        Some((i, target))
    })
}

/// Whether `rec` does not record sink `i`'s rejects file delivered: a run that delivers the
/// steps' output there (again, or for the first time) delivers its rejects file too, when
/// records are rejected ([`deliver_one`]).
pub(in crate::engine) fn rejects_owed(rec: &FileRecord, i: usize) -> bool {
    !rec.deliveries.iter().any(|d| d.sink == REJECTS + i as u32 && d.done)
}

/// The extension of the rejects file `flow`'s steps deliver beside their output when records
/// are rejected (`on_invalid: skip`), if they may deliver one.
pub(in crate::engine) fn rejects_ext(flow: &crate::config::Flow) -> Option<&'static str> {
    let steps = flow.steps.as_ref().filter(|s| s.policy().on_invalid == OnInvalid::Skip && s.output_ext().is_some())?;
    Some(steps.rejects_ext())
}

/// The name of the rejects file delivered beside the output delivered as `target` (before
/// the sink's exists-policy): `roster-1.csv` → `roster-1.rejects.csv`
/// ([`naming::rejects`](crate::engine::naming::rejects): shortened past 255 bytes).
pub(in crate::engine) fn rejects_name(target: &RemotePath, ext: &str) -> String {
    crate::engine::naming::rejects(target.name(), ext)
}

/// Where `sink` delivers a payload named `name` (of `size` bytes, from `rel_dir` under the
/// source folder) before its exists-policy: the folder and the name there.
fn wanted(sink: &Sink, name: &str, rel_dir: &str, size: u64, run: u64, now: SystemTime) -> Result<(RemotePath, String), FileError> {
    let vars = NameVars::new(name, rel_dir, size, run, now);
    let dir = sink.path.render(&vars).map_err(FileError::TargetName)?;
    let dir = RemotePath::parse(&dir).map_err(|e| FileError::TargetName(format!("sink {} path: {e}", sink.endpoint)))?;
    let name = sink.name.render(&vars).map_err(FileError::TargetName)?;
    // Refused here too (the run's choice, `transfer::choose_target`, refuses it), so that
    // `wharf plan` shows it as the name error it is, like a template's.
    crate::engine::naming::check_target_name(&name)?;
    // The trigger named after the wanted name, checked before anything is uploaded: a file
    // whose trigger cannot be written must not be delivered without it. (A free name that
    // `rename` lengthens is checked again when its trigger is named.)
    let target = dir.join(&name).map_err(|e| FileError::TargetName(format!("target name {name:?}: {e}")))?;
    trigger_of(sink, &target, rel_dir, run, now)?;
    Ok((dir, name))
}

/// Where sink `i` of `flow` will deliver the listed file `entry` (at `rel` under the source
/// folder), as far as it can be told before the file is read: the output's name when the
/// steps write another format, the listed size.
pub(in crate::engine) fn wanted_for(
    flow: &crate::config::Flow,
    i: usize,
    entry: &Entry,
    rel: &str,
    run: u64,
    now: SystemTime,
) -> Result<(RemotePath, String), FileError> {
    let sink = &flow.sinks[i];
    let rel_dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
    let name = crate::engine::content::delivered_name(flow.steps.as_ref(), entry.path.name())?;
    wanted(sink, &name, rel_dir, entry.size, run, now)
}

/// The recorded target of delivery `idx` of `p` when that delivery is complete: confirmed, or
/// found whole after a crash (the rename only happens after verification, so it happened),
/// holding what `p` delivers there.
pub(super) async fn recovered(
    cx: &Ctx<'_>,
    rec: &mut FileRecord,
    ep: &dyn Endpoint,
    idx: u32,
    p: &Payload,
) -> Result<Option<RemotePath>, FileError> {
    let Some(d) = rec.deliveries.iter().find(|d| d.sink == idx) else { return Ok(None) };
    let Ok(t) = RemotePath::parse(&d.target) else { return Ok(None) };
    if d.done {
        return Ok(Some(t));
    }
    let (size, expect) = if idx >= REJECTS {
        let Some((file, size)) = &p.rejects else { return Ok(None) };
        (*size, transfer::Expect::File(file))
    } else {
        (p.size, p.sha256.as_deref().map_or(transfer::Expect::File(&p.file), transfer::Expect::Sha256))
    };
    if transfer::already_delivered(ep, &t, size, d.replaces, expect).await? {
        mark(rec, idx, &t, true, None);
        put_lazy(cx, rec)?;
        return Ok(Some(t));
    }
    Ok(None)
}

/// Writes sink `i`'s trigger file beside its delivered `target` and records it, so a resumed
/// run neither forgets it nor writes it twice.
///
/// The trigger tells the partner to take the file, so the file's delivery is made durable
/// (with the trigger recorded as pending) before the trigger is written: a crash after it
/// can no longer leave the ledger not knowing the delivery, which the next run would upload
/// again — a second copy for a partner that took the first at its trigger. A run resumed
/// with the trigger pending finds it there (written before the crash), or finds neither the
/// trigger nor the file (the partner took both): nothing is written again.
async fn trigger(cx: &Ctx<'_>, rec: &mut FileRecord, i: usize, target: &RemotePath, rel_dir: &str) -> Result<(), FileError> {
    let sink = &cx.flow.sinks[i];
    let Some((path, pending)) = owed_trigger(sink, rec, i, target, rel_dir, cx.run, cx.now)? else { return Ok(()) };
    let temp = temp_path(cx, i, &path, rel_dir, 0)?;
    let ep = &*cx.sinks[i];
    let idx = TRIGGERS + i as u32;
    let mut names = vec![claims::key(&sink.endpoint, path.as_str()), claims::key(&sink.endpoint, temp.as_str())];
    // An upload with `rename` claims its folder, not its temporary name, which a constant
    // `temp_name` makes the trigger's too: the trigger waits for it.
    if sink.if_exists == IfExists::Rename {
        names.push(rename_claim(&sink.endpoint, &target.parent()));
    }
    let _names = cx.claims.claim(names).await;
    if pending && retry(cx.flow, "check trigger", || transfer::trigger_written(ep, &path, target)).await? {
        mark(rec, idx, &path, true, None);
        return put(cx, rec).await;
    }
    if !pending {
        mark(rec, idx, &path, false, None);
        put(cx, rec).await?;
    }
    halt::point("triggering");
    retry(cx.flow, "write trigger", || transfer::put_trigger(ep, &cx.folders, &temp, &path)).await?;
    halt::point("triggered");
    mark(rec, idx, &path, true, None);
    put(cx, rec).await
}

/// Where sink `i` writes the trigger of its delivered `target`, if it writes one.
fn trigger_path(cx: &Ctx<'_>, i: usize, target: &RemotePath, rel_dir: &str) -> Result<Option<RemotePath>, FileError> {
    trigger_of(&cx.flow.sinks[i], target, rel_dir, cx.run, cx.now)
}

/// Where `sink` writes the trigger of its delivered `target` (of a file from `rel_dir` under
/// the source folder, in run `run`), if it writes one.
pub(in crate::engine) fn trigger_of(
    sink: &Sink,
    target: &RemotePath,
    rel_dir: &str,
    run: u64,
    now: SystemTime,
) -> Result<Option<RemotePath>, FileError> {
    let Some(template) = &sink.trigger else { return Ok(None) };
    let vars = NameVars::new(target.name(), rel_dir, 0, run, now);
    let name = template.render(&vars).map_err(FileError::TargetName)?;
    crate::engine::naming::check_trigger_name(&name)?;
    let path = target.parent().join(&name).map_err(|e| FileError::TargetName(format!("trigger name {name:?}: {e}")))?;
    if &path == target {
        // This file's name only (`{{stem}}.csv` of a `.csv`): it fails, the others go on.
        return Err(FileError::TargetName(format!(
            "the trigger name {name:?} is the delivered file's own: writing the trigger would empty it; change the sink's `trigger` \
             template (`{{{{name}}}}.done`)"
        )));
    }
    Ok(Some(path))
}

/// Chooses the target for `dir/name` on sink `i` (exists-policy), records it, uploads `file`
/// (from `data`, its bytes, when it is held in memory) through the temporary name (taking
/// it by rename with `last_use`, where the sink can) and records the confirmation (and,
/// with `hash`, the SHA-256 of the file as read on its way out in `rec.sha256`). Returns
/// the final target, whether it was uploaded (not skipped by `if_exists: skip`), and whether
/// the sink took `file` itself (it is gone).
#[allow(clippy::too_many_arguments)]
async fn send(
    cx: &Ctx<'_>,
    rec: &mut FileRecord,
    i: usize,
    idx: u32,
    dir: &RemotePath,
    name: &str,
    rel_dir: &str,
    (file, data): (&Path, Option<&[u8]>),
    size: u64,
    last_use: bool,
    hash: bool,
) -> Result<(RemotePath, bool, bool), FileError> {
    let sink = &cx.flow.sinks[i];
    let ep = &*cx.sinks[i];
    // Every name this delivery may write, claimed before the target is chosen: with `rename`
    // the folder (free names are chosen one file at a time), else the target and its temp name.
    let names = match sink.if_exists {
        IfExists::Rename => vec![rename_claim(&sink.endpoint, dir)],
        _ => {
            let wanted = dir.join(name).map_err(|e| FileError::TargetName(format!("target name {name:?}: {e}")))?;
            let temp = temp_path(cx, i, &wanted, rel_dir, size)?;
            let mut names = vec![claims::key(&sink.endpoint, wanted.as_str()), claims::key(&sink.endpoint, temp.as_str())];
            // A direct write removes the target's old trigger (below): no other file's meanwhile.
            if sink.direct()
                && let Some(trigger) = trigger_path(cx, i, &wanted, rel_dir)?
            {
                names.push(claims::key(&sink.endpoint, trigger.as_str()));
            }
            names
        }
    };
    let _names = cx.claims.claim(names).await;
    // Written straight under the final name (`direct`), an interrupted delivery left part of
    // the file there: its recorded target is written again rather than chosen anew (the
    // exists-policy would take that part for somebody else's file).
    let unfinished = rec.deliveries.iter().find(|d| d.sink == idx && !d.done).filter(|_| sink.direct());
    let room = if idx < REJECTS { rename_room(sink, dir, name, rel_dir, cx.run, cx.now)? } else { crate::engine::naming::NAME_MAX };
    let choose = || retry(cx.flow, "check target", || transfer::choose_target_within(ep, dir, name, sink.if_exists, room));
    let mut target = match unfinished.and_then(|d| RemotePath::parse(&d.target).ok().map(|t| Target::Upload(t, d.replaces))) {
        Some(t) => t,
        None => choose().await?,
    };
    // Free names taken by somebody else between the choice and the rename (`rename`).
    let mut raced = 0;
    loop {
        match target {
            Target::Skip(t, held) => {
                tracing::info!(flow = %cx.flow.name, target = %t, "Target exists; skipped (if_exists: skip).");
                // Recorded with the file kept there: a resumed run tells it from a delivery.
                mark(rec, idx, &t, true, Some(held));
                // Lazy: lost, the policy finds the target again and skips again.
                put_lazy(cx, rec)?;
                return Ok((t, false, false));
            }
            Target::Upload(t, replaces) => {
                // A free name's trigger, refused before anything is uploaded (`rename_room`
                // leaves it room when it is the name and a suffix: `{{name}}.done`).
                if sink.if_exists == IfExists::Rename && idx < REJECTS {
                    trigger_path(cx, i, &t, rel_dir)?;
                }
                // Durable before the rename can make `t` final: a resumed run checks this target
                // (against the file it replaces) instead of choosing one again (which would
                // deliver twice).
                // An earlier run's attempt (killed, or its temporary file not removable) may
                // have left the temporary file.
                let earlier = rec.deliveries.iter().any(|d| d.sink == idx && !d.done);
                mark(rec, idx, &t, false, replaces);
                put(cx, rec).await?;
                // Written in place, the file would be incomplete under the final name beside an
                // older delivery's trigger, which tells the partner to take it: that goes first.
                if sink.direct()
                    && idx < REJECTS
                    && let Some(old) = trigger_path(cx, i, &t, rel_dir)?
                {
                    retry(cx.flow, "remove the old trigger", || transfer::remove_old_trigger(ep, &old)).await?;
                }
                let temp = temp_path(cx, i, &t, rel_dir, size)?;
                let replace = sink.if_exists == IfExists::Overwrite;
                let tried = std::sync::atomic::AtomicBool::new(false);
                let sent = retry(cx.flow, "upload", || {
                    let again = tried.swap(true, std::sync::atomic::Ordering::Relaxed);
                    let attempt = transfer::Attempt { again, replaces };
                    let (temp, t) = (&temp, &t);
                    async move {
                        if transfer::done_before(attempt, ep, t, size).await? {
                            return Ok(transfer::Uploaded { sha256: None, took: None });
                        }
                        transfer::upload(ep, &cx.folders, &cx.budget, file, data, size, temp, t, replace, last_use, hash, earlier || again)
                            .await
                    }
                })
                .await;
                let sent = match sent {
                    // `rename` means "never fail because the name is taken": another free name.
                    Err(FileError::TargetExists { .. })
                        if sink.if_exists == IfExists::Rename && raced < crate::engine::naming::MAX_NAME_RACES =>
                    {
                        raced += 1;
                        tracing::info!(flow = %cx.flow.name, target = %t, "Target taken by somebody else before the rename; choosing another free name.");
                        target = choose().await?;
                        continue;
                    }
                    sent => sent?,
                };
                halt::point("renamed");
                if hash && rec.sha256.is_none() {
                    rec.sha256 = sent.sha256;
                }
                mark(rec, idx, &t, true, None);
                // Lazy: lost, the recorded target is found whole and confirmed then.
                put_lazy(cx, rec)?;
                // The rename becomes durable with the next commit (before this file's next
                // durable transition, `done` at the latest): one folder fsync for many files.
                let took = sent.took.is_some();
                if let Some(folder) = sent.took {
                    cx.commits.sync_first(folder);
                }
                return Ok((t, true, took));
            }
        }
    }
}

/// How long a free name `if_exists: rename` chooses for `dir/name` (of a file from
/// `rel_dir`, in run `run`) on `sink` may be: room for the trigger named after it, when that
/// is longer than the name (`{{name}}.done`: 5 bytes fewer than a file name may have).
/// Without it the file would be delivered, its trigger refused as too long, run after run.
pub(in crate::engine) fn rename_room(
    sink: &Sink,
    dir: &RemotePath,
    name: &str,
    rel_dir: &str,
    run: u64,
    now: SystemTime,
) -> Result<usize, FileError> {
    let max = crate::engine::naming::NAME_MAX;
    if sink.if_exists != IfExists::Rename {
        return Ok(max);
    }
    let wanted = dir.join(name).map_err(|e| FileError::TargetName(format!("target name {name:?}: {e}")))?;
    let longer = trigger_of(sink, &wanted, rel_dir, run, now)?.map_or(0, |t| t.name().len().saturating_sub(name.len()));
    Ok(max.saturating_sub(longer))
}

/// The claim an upload with `if_exists: rename` takes on its folder `dir`: free names are
/// chosen there one file at a time.
fn rename_claim(endpoint: &str, dir: &RemotePath) -> String {
    claims::key(endpoint, &format!("{dir}/\u{0}rename"))
}

/// Whether the payload is the staged file and it was staged unhashed ([`stage::Hash::Deferred`]).
pub(super) fn unhashed(cx: &Ctx<'_>, rec: &FileRecord) -> bool {
    rec.sha256.is_none() && cx.flow.steps.is_none()
}

/// The temporary name sink `i` uploads `target` under: `target` itself for a sink that
/// writes straight under the final name (`direct`).
fn temp_path(cx: &Ctx<'_>, i: usize, target: &RemotePath, rel_dir: &str, size: u64) -> Result<RemotePath, FileError> {
    let Some(template) = &cx.flow.sinks[i].temp_name else { return Ok(target.clone()) };
    let vars = NameVars::new(target.name(), rel_dir, size, cx.run, cx.now);
    let temp_name = crate::engine::naming::fit(&template.render(&vars).map_err(FileError::TargetName)?);
    target.parent().join(&temp_name).map_err(|e| FileError::TargetName(format!("temp name {temp_name:?}: {e}")))
}

fn mark(rec: &mut FileRecord, sink: u32, target: &RemotePath, done: bool, replaces: Option<Replaced>) {
    rec.deliveries.retain(|d| d.sink != sink);
    rec.deliveries.push(Delivery { sink, target: target.as_str().to_string(), done, replaces });
    rec.deliveries.sort_by_key(|d| d.sink);
}
