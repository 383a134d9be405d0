//! The overdue responses of a flow, for `wharf status` (with or without `wharf serve`): the
//! open awaits (round trips) whose deadline has passed, whether or not a run has looked since
//! (a deadline passed while wharf was down is overdue too), the first few by deadline, and how
//! many. Read from the ledger only; what a run does with them is `engine::awaits`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ledger::{AwaitRecord, Ledger, LedgerError, Millis};

/// How many overdue awaits a flow's status names (the count says how many in all).
pub const SHOWN: usize = 3;

/// A flow's overdue responses: the first few, and how many there are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overdue {
    /// Open awaits past their deadline, in all.
    pub total: usize,
    /// The first [`SHOWN`] of them, the longest overdue first.
    pub first: Vec<OverdueAwait>,
}

/// One overdue await, as `wharf awaits` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueAwait {
    /// The request's source path (`/a.csv`).
    pub request: String,
    /// The expected response's path on the response endpoint (`/outbox/a.ack`).
    pub expected: String,
    #[serde(with = "crate::timestamp::utc")]
    pub due: DateTime<Utc>,
    /// When waiting stops (`None`: never).
    #[serde(default, with = "crate::timestamp::utc_opt")]
    pub expires: Option<DateTime<Utc>>,
}

impl Overdue {
    /// `flow`'s open awaits whose deadline is before `now`.
    pub fn of(ledger: &Ledger, flow: &str, now: Millis) -> Result<Overdue, LedgerError> {
        Ok(Self::among(ledger.awaits(Some(flow))?, now))
    }

    fn among(awaits: Vec<AwaitRecord>, now: Millis) -> Overdue {
        let mut late: Vec<AwaitRecord> = awaits.into_iter().filter(|a| a.state.is_open() && a.deadline_at < now).collect();
        late.sort_by(|a, b| (a.deadline_at, &a.request).cmp(&(b.deadline_at, &b.request)));
        let first = late
            .iter()
            .take(SHOWN)
            .map(|a| OverdueAwait {
                request: format!("/{}", a.request),
                expected: format!("/{}", a.expected),
                due: super::utc(a.deadline_at),
                expires: a.expire_at.map(super::utc),
            })
            .collect();
        Overdue { total: late.len(), first }
    }

    /// The status line under the flow, `None` when nothing is overdue: `2 responses overdue:
    /// /outbox/a.ack to /a.csv (due by …), …; `wharf awaits FLOW --open` lists them, …`.
    pub fn line(&self, flow: &str) -> Option<String> {
        let first = self.first.first()?;
        let time = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        let count = if self.total == 1 { "1 response overdue".to_string() } else { format!("{} responses overdue", self.total) };
        let shown: Vec<String> = self.first.iter().map(|a| format!("{} to {} (due by {})", a.expected, a.request, time(a.due))).collect();
        Some(format!(
            "{count}: {}; `wharf awaits {flow} --open` lists them, `wharf awaits close {flow} {}` gives one up",
            crate::text::first_few(&shown, self.total),
            first.request
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::AwaitState;

    fn await_(request: &str, state: AwaitState, deadline_at: Millis) -> AwaitRecord {
        AwaitRecord {
            flow: "orders".into(),
            request: request.into(),
            request_identity: request.into(),
            request_target: format!("partner:/inbox/{request}"),
            request_run: 1,
            expected: format!("outbox/{request}.ack"),
            sent_at: 0,
            deadline_at,
            expire_at: None,
            state,
            response_run: None,
            answered_at: None,
            detail: None,
            answerable_from: 1,
        }
    }

    /// `wharf status` said nothing of a response overdue for days: it names the open awaits
    /// past their deadline — also one no run has seen overdue yet (wharf was down) — the
    /// longest overdue first, and the commands that list them and give one up.
    #[test]
    fn open_awaits_past_their_deadline_are_named_with_what_to_do() {
        let awaits = vec![
            await_("b.csv", AwaitState::Overdue, 2_000),
            await_("a.csv", AwaitState::Waiting, 1_000),
            await_("c.csv", AwaitState::Waiting, 9_000),
            await_("d.csv", AwaitState::Expired, 500),
            await_("e.csv", AwaitState::Answered, 500),
        ];
        let o = Overdue::among(awaits, 5_000);
        assert_eq!(o.total, 2);
        let line = o.line("orders").unwrap();
        assert!(
            line.starts_with(
                "2 responses overdue: /outbox/a.csv.ack to /a.csv (due by 1970-01-01 00:00:01 UTC), /outbox/b.csv.ack to /b.csv"
            ),
            "{line}"
        );
        assert!(line.ends_with("`wharf awaits orders --open` lists them, `wharf awaits close orders /a.csv` gives one up"), "{line}");
        assert_eq!(Overdue::among(vec![await_("c.csv", AwaitState::Waiting, 9_000)], 5_000).line("orders"), None);
        let many: Vec<_> = (0..5).map(|i| await_(&format!("{i}.csv"), AwaitState::Overdue, 1_000)).collect();
        assert!(Overdue::among(many, 5_000).line("orders").unwrap().contains(" and 2 more;"));
    }
}
