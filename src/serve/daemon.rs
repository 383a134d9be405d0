//! What the control interface asks of a running daemon: its status, a run now, metrics.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::supervisor::{self, Shared};
use crate::control::{self, FlowStatus, Metrics, RunSummary, Status, TriggerError, Triggered};

/// The daemon as the control interface sees it.
pub(super) struct DaemonView(pub Arc<Shared>);

#[async_trait::async_trait]
impl control::Daemon for DaemonView {
    fn status(&self) -> Status {
        status(&self.0)
    }

    async fn trigger(&self, flow: &str) -> Result<Triggered, TriggerError> {
        supervisor::trigger(&self.0, flow).await
    }

    fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
}

fn at(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::from_timestamp_millis)
}

/// The flow's latest run in the ledger (none when the ledger cannot say).
fn from_ledger(shared: &Shared, flow: &str) -> Option<RunSummary> {
    let last = shared.ledger.last_runs(flow).ok()?.last?;
    let content = shared.ledger.run_content(flow, last.id).ok().flatten();
    Some(RunSummary::from_record(&last, content.as_ref()))
}

/// Every flow file and what it is doing.
pub(super) fn status(shared: &Arc<Shared>) -> Status {
    let slots: Vec<_> = {
        let registry = shared.registry();
        registry.slots().map(|s| (s.clone(), registry.alone(s))).collect()
    };
    let plans = shared.plans().clone();
    let mut flows: Vec<FlowStatus> = slots
        .iter()
        .map(|(slot, alone)| {
            let name = slot.name();
            if let Some(problem) = alone {
                // Under the name it gives, with why it is refused; the schedule, runs and
                // records of that name are the other file's flow's, shown in its own row.
                let mut f = FlowStatus::new(name, Some(slot.file.clone()));
                f.problem = Some(problem.clone());
                return f;
            }
            let plan = plans.get(&name).cloned().unwrap_or_default();
            let health = shared.ledger.health(&name).unwrap_or_default();
            let last_run = plan.last.as_ref().map(|r| RunSummary {
                run: r.run,
                status: r.status.as_str().to_string(),
                started: plan.last_started.unwrap_or(shared.started_at),
                finished: plan.last_finished,
                delivered: r.counts.delivered as u64,
                failed: r.counts.failed as u64,
                quarantined: r.quarantined as u64,
                bytes: r.counts.bytes,
                error: r.error.clone(),
            });
            // No run since this daemon started: the ledger's last one, as `wharf status`
            // shows it without a daemon.
            let last_run = last_run.or_else(|| from_ledger(shared, &name));
            // None when the ledger cannot say.
            let not_taken = crate::control::NotTaken::of(&shared.ledger, &name).unwrap_or_default();
            let now = crate::ledger::now_millis();
            let overdue = crate::control::overdue::Overdue::of(&shared.ledger, &name, now).unwrap_or_default();
            // Counted in the ledger, so across restarts, with those not written yet.
            let (skipped_total, last_skipped) = shared.skips.total(&name);
            FlowStatus {
                name,
                file: Some(slot.file.clone()),
                schedule: slot.flow.as_ref().and_then(|f| f.schedule.as_ref()).map(|s| s.to_string()),
                next_due: plan.next_due,
                next_due_if_served: None,
                running: plan.running,
                waiting: plan.waiting,
                queued: plan.queued || plan.waits_for.is_some(),
                skipped: plan.skipped,
                skipped_total,
                last_skipped: at(last_skipped),
                last_run,
                last_success: at(health.last_ok),
                failing_streak: health.failing_streak,
                problem: slot.problem.clone(),
                not_taken,
                overdue,
            }
        })
        .collect();
    // A flow whose file was removed or renamed while it ran: listed until its run ends.
    for name in plans.iter().filter(|(_, p)| p.running).map(|(name, _)| name) {
        if !flows.iter().any(|f| &f.name == name) {
            let mut f = FlowStatus::new(name.clone(), None);
            f.running = true;
            f.problem = Some("flow file removed or renamed; its run in progress goes on, no new run starts".into());
            flows.push(f);
        }
    }
    Status { version: crate::VERSION.to_string(), pid: std::process::id(), started_at: shared.started_at, flows }
}
