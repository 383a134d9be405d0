//! `wharf probe --write`: behaviour that can only be learnt by writing, checked in a scratch
//! folder of our own that is removed again — also when a check fails.
//!
//! Written once for every protocol, over the `Endpoint` trait: what the server's own rename
//! does to an existing file, whether wharf's rename with and without replace behaves as the
//! engine expects, the mtime precision the listings really carry, and the server's clock
//! offset (see `clock`). Nothing outside the scratch folder is touched.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::clock::{self, ClockOffset, Sample};
use crate::endpoint::{Endpoint, EndpointError, EntryKind, ErrorKind, RemotePath};

/// Files written for the clock; spaced so that together they span more than a second.
const CLOCK_SAMPLES: usize = 4;
const SAMPLE_SPACING: Duration = Duration::from_millis(450);
/// Largest file read back (ours are a few bytes).
const MAX_READ: usize = 4096;

/// What the server's own rename does when the target exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RenameBehaviour {
    /// The target now holds the renamed file.
    Replaces,
    /// The rename failed and both files are as they were.
    Refuses { kind: ErrorKind, message: String },
    /// Anything else (a file lost, a rename reported as done that did nothing).
    Odd { what: String },
}

/// The results of the write checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteChecks {
    #[serde(with = "crate::timestamp::utc")]
    pub at: DateTime<Utc>,
    /// The scratch folder (relative to the endpoint root).
    pub scratch: String,
    /// The server's own rename onto an existing file.
    pub plain_rename: RenameBehaviour,
    /// wharf's rename with replace (`if_exists: overwrite`, trigger files): `None` when it
    /// replaced the target as it must, else what went wrong.
    pub replace_problem: Option<String>,
    /// wharf's rename without replace: `None` when it refused and left the target alone.
    pub no_replace_problem: Option<String>,
    /// The coarsest unit all listed mtimes were whole multiples of.
    #[serde(with = "crate::endpoint::facts::millis")]
    pub mtime_precision: Duration,
    /// `None` when the listing carried no modification times.
    pub clock: Option<ClockOffset>,
    /// `None` when the scratch folder was removed again, else why it was not.
    pub cleanup_problem: Option<String>,
    /// `None` when renaming a file to a free name worked (what every upload through a
    /// temporary name ends with), else how it failed. Absent in probes stored before it.
    #[serde(default)]
    pub rename_problem: Option<String>,
}

/// A write check could not be done (the scratch folder was still removed where possible).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}{}", cleanup.as_ref().map(|c| format!(" (and the scratch folder {scratch} could not be removed: {c})")).unwrap_or_default())]
pub struct WriteCheckError {
    pub what: String,
    pub scratch: String,
    #[source]
    pub source: Cause,
    pub cleanup: Option<String>,
}

/// Why the write checks stopped.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// Ctrl-C: the checks stopped where they were, and their folder was removed.
    #[error("the checks were not finished")]
    Interrupted,
}

/// Ctrl-C as the write checks see it: they stop where they are and remove their folder
/// (stopping the process instead would leave it on the partner's server). The default never
/// fires.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Option<tokio::sync::watch::Receiver<bool>>);

impl Interrupt {
    /// An interrupt, and what sets it (`send(true)`).
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Interrupt) {
        let (set, seen) = tokio::sync::watch::channel(false);
        (set, Interrupt(Some(seen)))
    }

    /// Whether it was set.
    pub fn is_set(&self) -> bool {
        self.0.as_ref().is_some_and(|seen| *seen.borrow())
    }

    /// Completes once set; never when it cannot be (no sender left, or none at all).
    async fn wait(&self) {
        if let Some(seen) = &self.0 {
            let mut seen = seen.clone();
            // The guard `wait_for` returns is not Send: dropped here, never held across an await.
            if seen.wait_for(|set| *set).await.map(drop).is_ok() {
                return;
            }
        }
        std::future::pending::<()>().await
    }
}

/// What an interrupted check is called in its error.
const INTERRUPTED: &str = "interrupted (Ctrl-C)";

/// `.wharf-probe-1a2b3c4d`: a name no partner file has.
fn scratch_name() -> String {
    // std's RandomState is seeded randomly per process and per instance.
    let bits = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!(".wharf-probe-{:08x}", bits as u32)
}

/// Runs the write checks in a new folder inside `parent` (which must exist) and removes it,
/// also when a check fails or `interrupt` stops them.
pub async fn run(ep: &dyn Endpoint, parent: &RemotePath, interrupt: &Interrupt) -> Result<WriteChecks, WriteCheckError> {
    let fail = |what: &str, scratch: &RemotePath, source: Cause, cleanup| WriteCheckError {
        what: what.to_string(),
        scratch: scratch.to_string(),
        source,
        cleanup,
    };
    match ep.stat(parent).await {
        Ok(Some(e)) if e.kind == EntryKind::Dir => {}
        Ok(_) => {
            let e = EndpointError::new(ErrorKind::NotFound, crate::endpoint::Op::Stat, ep.describe(), Some(parent), "no such folder");
            return Err(fail("the scratch folder's parent", parent, e.into(), None));
        }
        Err(e) => return Err(fail("the scratch folder's parent", parent, e.into(), None)),
    }
    if interrupt.is_set() {
        return Err(fail(INTERRUPTED, parent, Cause::Interrupted, None));
    }
    let scratch = parent.join(&scratch_name()).map_err(|e| {
        let e = EndpointError::new(ErrorKind::Protocol, crate::endpoint::Op::CreateDir, ep.describe(), Some(parent), e.to_string());
        fail("the scratch folder's name", parent, e.into(), None)
    })?;
    if let Err(e) = ep.create_dir_all(&scratch).await {
        // It may exist half-made: try to remove it anyway.
        let cleanup = remove_scratch(ep, &scratch).await.err();
        return Err(fail("creating the scratch folder", &scratch, e.into(), cleanup));
    }
    // Interrupted, the check in progress is dropped where it is (a file half-written is in
    // the scratch folder, and goes with it).
    let res = tokio::select! {
        res = checks(ep, &scratch) => res.map_err(|(what, e)| (what, Cause::Endpoint(e))),
        () = interrupt.wait() => Err((INTERRUPTED, Cause::Interrupted)),
    };
    let cleanup = remove_scratch(ep, &scratch).await.err();
    match res {
        Ok(mut c) => {
            c.cleanup_problem = cleanup;
            Ok(c)
        }
        Err((what, e)) => Err(fail(what, &scratch, e, cleanup)),
    }
}

type Step<T> = Result<T, (&'static str, EndpointError)>;

async fn checks(ep: &dyn Endpoint, scratch: &RemotePath) -> Step<WriteChecks> {
    let at = Utc::now();
    let file = |name: &str| scratch.join(name).map_err(|e| ("a scratch file name", path_error(ep, scratch, e)));

    // Clock and precision: files written one after another, then listed as a run lists them.
    let mut written = Vec::new();
    for i in 0..CLOCK_SAMPLES {
        if i > 0 {
            tokio::time::sleep(SAMPLE_SPACING).await;
        }
        let path = file(&format!("clock-{i}"))?;
        let before = SystemTime::now();
        put(ep, &path, b"wharf probe: clock sample\n").await.map_err(|e| ("writing a file", e))?;
        let after = SystemTime::now();
        written.push((path, before, after));
    }
    let listed = ep.list(scratch).await.map_err(|e| ("listing the scratch folder", e))?;
    let samples: Vec<Sample> = written
        .iter()
        .filter_map(|(path, before, after)| {
            let mtime = listed.entries.iter().find(|e| &e.path == path)?.mtime?;
            Some(Sample { before: *before, after: *after, mtime })
        })
        .collect();
    let mtimes: Vec<SystemTime> = samples.iter().map(|s| s.mtime).collect();
    let mtime_precision = clock::observed_precision(&mtimes).unwrap_or(ep.capabilities().mtime_precision);
    let clock = clock::estimate(&samples, mtime_precision);

    // A rename to a free name, as every upload through a temporary name ends.
    let (a, b) = (file("rename-a")?, file("rename-b")?);
    put(ep, &a, b"wharf probe: rename\n").await.map_err(|e| ("writing a file", e))?;
    let rename_problem = match ep.rename(&a, &b, false).await {
        Ok(()) => None,
        Err(e) => Some(format!("{}: {}", e.kind, e.message)),
    };
    clear(ep, &[&a, &b]).await?;

    // The server's own rename onto an existing file.
    let (new, old) = (&b"new\n"[..], &b"old\n"[..]);
    let fresh_pair = || async {
        for (p, body) in [(&a, new), (&b, old)] {
            put(ep, p, body).await.map_err(|e| ("writing a file", e))?;
        }
        Ok::<(), (&'static str, EndpointError)>(())
    };
    fresh_pair().await?;
    let renamed = ep.rename_plain(&a, &b).await;
    let (a_now, b_now) = (contents(ep, &a).await?, contents(ep, &b).await?);
    let plain_rename = match renamed {
        Ok(()) if a_now.is_none() && b_now.as_deref() == Some(new) => RenameBehaviour::Replaces,
        Err(e) if a_now.as_deref() == Some(new) && b_now.as_deref() == Some(old) => {
            RenameBehaviour::Refuses { kind: e.kind, message: e.message }
        }
        res => RenameBehaviour::Odd { what: odd(&res, &a_now, &b_now) },
    };

    // wharf's rename without replace must refuse and keep the target.
    clear(ep, &[&a, &b]).await?;
    fresh_pair().await?;
    let res = ep.rename(&a, &b, false).await;
    let (a_now, b_now) = (contents(ep, &a).await?, contents(ep, &b).await?);
    let no_replace_problem = match &res {
        Err(e) if e.kind == ErrorKind::AlreadyExists && a_now.as_deref() == Some(new) && b_now.as_deref() == Some(old) => None,
        Err(e) if e.kind == ErrorKind::AlreadyExists => Some(format!("refused, but {}", odd(&res, &a_now, &b_now))),
        Err(e) => Some(format!("failed with {} instead of \"already exists\": {}", e.kind, e.message)),
        Ok(()) => Some(format!("replaced the existing file; {}", odd(&res, &a_now, &b_now))),
    };

    // wharf's rename with replace must replace.
    clear(ep, &[&a, &b]).await?;
    fresh_pair().await?;
    let res = ep.rename(&a, &b, true).await;
    let (a_now, b_now) = (contents(ep, &a).await?, contents(ep, &b).await?);
    let replace_problem = match &res {
        Ok(()) if a_now.is_none() && b_now.as_deref() == Some(new) => None,
        Ok(()) => Some(odd(&res, &a_now, &b_now)),
        Err(e) => Some(format!("failed: {}: {}", e.kind, e.message)),
    };

    Ok(WriteChecks {
        at,
        scratch: scratch.to_string(),
        plain_rename,
        replace_problem,
        no_replace_problem,
        mtime_precision,
        clock,
        cleanup_problem: None,
        rename_problem,
    })
}

/// What the two files look like, for a check that went wrong.
fn odd(res: &Result<(), EndpointError>, a: &Option<Vec<u8>>, b: &Option<Vec<u8>>) -> String {
    let show = |c: &Option<Vec<u8>>| match c {
        None => "gone".to_string(),
        Some(body) => format!("{:?}", String::from_utf8_lossy(body).trim()),
    };
    let how = match res {
        Ok(()) => "the rename reported success".to_string(),
        Err(e) => format!("the rename failed ({}: {})", e.kind, e.message),
    };
    format!("{how}; afterwards the source is {} and the target {}", show(a), show(b))
}

fn path_error(ep: &dyn Endpoint, dir: &RemotePath, e: crate::endpoint::PathError) -> EndpointError {
    EndpointError::new(ErrorKind::Protocol, crate::endpoint::Op::Write, ep.describe(), Some(dir), e.to_string())
}

async fn put(ep: &dyn Endpoint, path: &RemotePath, body: &[u8]) -> Result<(), EndpointError> {
    let mut w = ep.open_write(path).await?;
    w.write_all(body).await?;
    w.finish().await
}

/// A small file's contents; `None` when it does not exist.
async fn contents(ep: &dyn Endpoint, path: &RemotePath) -> Step<Option<Vec<u8>>> {
    let read = |e| ("reading a file back", e);
    if ep.stat(path).await.map_err(read)?.is_none() {
        return Ok(None);
    }
    let mut r = ep.open_read(path, 0).await.map_err(read)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = r.read(&mut buf).await.map_err(read)?;
        if n == 0 || out.len() > MAX_READ {
            return Ok(Some(out));
        }
        out.extend_from_slice(&buf[..n]);
    }
}

async fn clear(ep: &dyn Endpoint, paths: &[&RemotePath]) -> Step<()> {
    for p in paths {
        match ep.remove(p).await {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(("removing a file", e)),
        }
    }
    Ok(())
}

/// Removes every file in `scratch` and then the folder; the first failure, as a sentence.
async fn remove_scratch(ep: &dyn Endpoint, scratch: &RemotePath) -> Result<(), String> {
    // Only the probe's own files are in its scratch folder: none has a name it cannot use.
    let entries = match ep.list(scratch).await {
        Ok(listing) => listing.entries,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    for e in entries {
        if e.kind == EntryKind::Dir {
            ep.remove_dir(&e.path).await.map_err(|e| e.to_string())?;
        } else {
            match ep.remove(&e.path).await {
                Ok(()) => {}
                Err(err) if err.kind == ErrorKind::NotFound => {}
                Err(err) => return Err(err.to_string()),
            }
        }
    }
    ep.remove_dir(scratch).await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::local::LocalEndpoint;

    #[tokio::test]
    async fn a_local_folder_replaces_on_rename_and_the_scratch_folder_is_gone_afterwards() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
        let ep = LocalEndpoint::new(dir.path());
        let c = run(&ep, &RemotePath::root(), &Interrupt::default()).await.unwrap();
        assert_eq!(c.plain_rename, RenameBehaviour::Replaces);
        assert_eq!(c.replace_problem, None);
        assert_eq!(c.no_replace_problem, None);
        assert_eq!(c.cleanup_problem, None);
        assert!(c.mtime_precision < Duration::from_secs(1), "{c:?}");
        let clock = c.clock.unwrap();
        // File times come from the kernel's coarse clock: a few ms behind the precise one.
        assert!(clock.offset_ms.unsigned_abs() <= clock.uncertainty_ms + 20, "{clock:?}");
        assert_eq!(clock.samples, CLOCK_SAMPLES);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("keep.txt")]);
    }

    #[tokio::test]
    async fn interrupted_midway_the_scratch_folder_is_removed_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
        let ep = LocalEndpoint::new(dir.path());
        let (ctrl_c, interrupt) = Interrupt::new();
        // Half-way through the clock samples (about 1.4 s of them).
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            let _ = ctrl_c.send(true);
        });
        let started = std::time::Instant::now();
        let e = run(&ep, &RemotePath::root(), &interrupt).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(1200), "stopped at once: {:?}", started.elapsed());
        assert!(matches!(e.source, Cause::Interrupted), "{e}");
        assert!(e.to_string().starts_with("interrupted (Ctrl-C): the checks were not finished"), "{e}");
        assert_eq!(e.cleanup, None, "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("keep.txt")], "the partner's folder as it was");
    }

    #[tokio::test]
    async fn a_missing_parent_is_an_error_and_nothing_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let ep = LocalEndpoint::new(dir.path());
        let e = run(&ep, &RemotePath::parse("nope").unwrap(), &Interrupt::default()).await.unwrap_err();
        assert!(matches!(&e.source, Cause::Endpoint(s) if s.kind == ErrorKind::NotFound), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
