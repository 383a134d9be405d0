//! Readiness: is a file complete enough to take?
//!
//! Decided from data, never by sleeping: the file's age (`min_age`), whether its size and
//! mtime stayed the same across polls for `stable_for` (observations kept in the ledger),
//! and whether a done/trigger file exists. Every "not ready" carries a reason a person can
//! act on. This is the only place readiness rules are evaluated.

use std::time::Duration;

use crate::config::flow::Ready;
use crate::endpoint::Entry;
use crate::ledger::{Millis, Observation};

use super::identity::mtime_millis;

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady(String),
}

/// Judges `entry` at time `now`. `prev` is the last observation of this path;
/// `done_file` is `Some(present)` when the flow wants a done file. Returns the verdict and
/// the observation to store for the next poll.
pub fn assess(
    rules: &Ready,
    entry: &Entry,
    prev: Option<&Observation>,
    now: Millis,
    done_file: Option<(&str, bool)>,
) -> (Readiness, Observation) {
    let mtime = mtime_millis(entry);
    let obs = match prev {
        Some(p) if p.size == entry.size && p.mtime == mtime => p.clone(),
        _ => Observation { size: entry.size, mtime, since: now },
    };
    let mut reasons = Vec::new();
    if let Some(min_age) = rules.min_age {
        match mtime {
            // More than a minute ahead of this clock: the server's clock or time zone is off
            // (`wharf probe` measures it), and the file waits until the time comes.
            Some(m) if m > now.saturating_add(60_000) => reasons.push(format!(
                "modified {} in the future by this machine's clock (is the server's clock or time zone off? `wharf probe` checks), needs {} ago",
                human(m - now),
                human(min_age.as_millis() as Millis)
            )),
            Some(m) => {
                let age = now.saturating_sub(m);
                if age < min_age.as_millis() as Millis {
                    reasons.push(format!("modified {} ago, needs {} ago", human(age), human(min_age.as_millis() as Millis)));
                }
            }
            None => reasons.push("server reports no modification time, so min_age cannot be checked".to_string()),
        }
    }
    if let Some(stable) = rules.stable_for {
        let need = stable.as_millis() as Millis;
        match prev {
            None => reasons.push(format!("first seen now; size and mtime must stay unchanged for {}", human(need))),
            Some(p) if p.size != entry.size || p.mtime != mtime => reasons.push(format!(
                "size or mtime changed since the last poll ({} → {} bytes); needs {} stable",
                p.size,
                entry.size,
                human(need)
            )),
            Some(_) => {
                let stable_since = now.saturating_sub(obs.since);
                if stable_since < need {
                    reasons.push(format!("unchanged for {}, needs {}", human(stable_since), human(need)));
                }
            }
        }
    }
    if let Some((name, false)) = done_file {
        reasons.push(format!("no done file {name:?} yet"));
    }
    let verdict = if reasons.is_empty() { Readiness::Ready } else { Readiness::NotReady(reasons.join("; ")) };
    (verdict, obs)
}

fn human(ms: Millis) -> String {
    let d = Duration::from_millis(ms.max(0) as u64);
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else if s >= 1 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{EntryKind, RemotePath};
    use std::time::UNIX_EPOCH;

    fn entry(size: u64, mtime_ms: u64) -> Entry {
        Entry {
            path: RemotePath::parse("a").unwrap(),
            kind: EntryKind::File,
            size,
            mtime: Some(UNIX_EPOCH + Duration::from_millis(mtime_ms)),
        }
    }

    #[test]
    fn no_rules_means_ready() {
        let (r, o) = assess(&Ready::default(), &entry(1, 0), None, 100, None);
        assert_eq!(r, Readiness::Ready);
        assert_eq!(o.since, 100);
    }

    #[test]
    fn min_age() {
        let rules = Ready { min_age: Some(Duration::from_secs(60)), ..Default::default() };
        let (r, _) = assess(&rules, &entry(1, 100_000), None, 130_000, None);
        assert_eq!(r, Readiness::NotReady("modified 30s ago, needs 1m0s ago".into()));
        assert_eq!(assess(&rules, &entry(1, 100_000), None, 160_000, None).0, Readiness::Ready);
        let (r, _) = assess(&rules, &entry(1, 3_700_000), None, 100_000, None);
        let Readiness::NotReady(why) = r else { panic!("{r:?}") };
        assert!(why.starts_with("modified 1h0m in the future by this machine's clock"), "{why}");
    }

    #[test]
    fn stable_for_needs_two_polls_with_same_size() {
        let rules = Ready { stable_for: Some(Duration::from_secs(30)), ..Default::default() };
        let (r1, o1) = assess(&rules, &entry(10, 5), None, 1_000, None);
        assert!(matches!(r1, Readiness::NotReady(ref s) if s.starts_with("first seen")));
        let (r2, o2) = assess(&rules, &entry(20, 6), Some(&o1), 20_000, None);
        assert!(matches!(r2, Readiness::NotReady(ref s) if s.contains("changed")));
        assert_eq!(o2.since, 20_000);
        let (r3, o3) = assess(&rules, &entry(20, 6), Some(&o2), 40_000, None);
        assert!(matches!(r3, Readiness::NotReady(ref s) if s.contains("unchanged for 20s")));
        assert_eq!(o3.since, 20_000);
        assert_eq!(assess(&rules, &entry(20, 6), Some(&o3), 50_000, None).0, Readiness::Ready);
    }

    #[test]
    fn done_file() {
        let r = assess(&Ready::default(), &entry(1, 0), None, 0, Some(("a.done", false))).0;
        assert_eq!(r, Readiness::NotReady("no done file \"a.done\" yet".into()));
        assert_eq!(assess(&Ready::default(), &entry(1, 0), None, 0, Some(("a.done", true))).0, Readiness::Ready);
    }
}
