//! Which of an endpoint's SSH connections an operation goes to.
//!
//! An SFTP endpoint keeps up to `max_connections` connections (slots), each made the first
//! time it is wanted. An operation goes to the least busy live connection; a new one is made
//! only for a streamed file (bigger than a MiB), when every live connection is busy (an
//! operation under way, or a file open on it) and a slot is still free — so a run that moves
//! one file at a time never logs in twice, and small files, whole in one round trip over the
//! connection's four channels, never wait for a login. Several connections spread big files
//! over as many server processes (OpenSSH serves each connection's encryption from one
//! process) and as many SSH and TCP windows. A server that refuses
//! an extra connection while others are live (a limit of sessions per user or address, or
//! OpenSSH's `MaxStartups`) costs that slot for the rest of the run, with one warning, not a
//! failed file. Making connections is `super::connect`'s; keeping one alive and the one
//! reconnect per operation are `super::SftpEndpoint`'s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::connect::Conn;
use crate::endpoint::{EndpointError, ErrorKind};

pub(super) struct Pool {
    label: String,
    slots: Vec<Slot>,
    /// A slot was given up already (warned once).
    limited: AtomicBool,
}

pub(super) struct Slot {
    /// The connection, once made; `None` before and after it died.
    pub conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    /// Operations under way and files open on this slot, or waiting for its connection.
    busy: AtomicUsize,
    /// A connection is there and not known to be dead.
    up: AtomicBool,
    /// A connection was made for this slot once (a failure to make it again is an outage,
    /// not a limit).
    made: AtomicBool,
    /// Given up: the server refused a connection for it while others were live.
    gone: AtomicBool,
}

/// What an operation wants of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    /// A request or a whole small file: a live connection, however busy (a new one only
    /// when there is none).
    Brief,
    /// A file streamed for as long as it takes: worth a connection of its own while the
    /// pool has room.
    Stream,
}

/// An operation's (or an open file's) place on a slot; counts as busy until dropped.
pub(super) struct Busy {
    pool: Arc<Pool>,
    slot: usize,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.pool.slots[self.slot].busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Busy {
    pub fn slot(&self) -> &Slot {
        &self.pool.slots[self.slot]
    }
}

impl Slot {
    /// Records whether this slot has a live connection.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if up {
            self.made.store(true, Ordering::SeqCst);
        }
    }
}

impl Pool {
    pub fn new(label: String, max_connections: usize) -> Arc<Pool> {
        let slots = (0..max_connections.max(1))
            .map(|_| Slot {
                conn: tokio::sync::Mutex::new(None),
                busy: AtomicUsize::new(0),
                up: AtomicBool::new(false),
                made: AtomicBool::new(false),
                gone: AtomicBool::new(false),
            })
            .collect();
        Arc::new(Pool { label, slots, limited: AtomicBool::new(false) })
    }

    /// The slot for the next operation: a live one that is idle; else, for a stream, a slot
    /// not used yet (its connection is made by the caller); else the least busy one.
    pub fn pick(self: &Arc<Self>, usage: Use) -> Busy {
        let load = |s: &Slot| (s.up.load(Ordering::SeqCst), s.busy.load(Ordering::SeqCst));
        let usable = self.slots.iter().enumerate().filter(|(_, s)| !s.gone.load(Ordering::SeqCst));
        let mut least: Option<(usize, usize)> = None;
        let mut spare = None;
        for (i, s) in usable {
            match load(s) {
                (false, 0) => spare = spare.or(Some(i)),
                (_, busy) if least.is_none_or(|(b, _)| busy < b) => least = Some((busy, i)),
                _ => {}
            }
        }
        let slot = match (least, spare) {
            (Some((0, i)), _) => i,
            (Some((_, i)), Some(_)) if usage == Use::Brief => i,
            (_, Some(i)) | (Some((_, i)), None) => i,
            // Invariant: a slot is given up only while another one is live, so one is usable.
            (None, None) => 0,
        };
        self.slots[slot].busy.fetch_add(1, Ordering::SeqCst);
        Busy { pool: self.clone(), slot }
    }

    /// Whether `failed` (making `busy`'s connection) means the server allows no more
    /// connections: it refused or dropped this one, or the login, while another slot's is
    /// live — the slot's first connection; making one again after it died is an outage,
    /// reported as such. The slot is then given up for the rest of the run and the caller
    /// picks again.
    pub fn give_up(&self, busy: &Busy, failed: &EndpointError) -> bool {
        let refused = matches!(failed.kind, ErrorKind::Transient | ErrorKind::AuthFailed);
        let others = self.slots.iter().enumerate().any(|(i, s)| i != busy.slot && s.up.load(Ordering::SeqCst));
        if !refused || !others || busy.slot().made.load(Ordering::SeqCst) {
            return false;
        }
        busy.slot().gone.store(true, Ordering::SeqCst);
        if !self.limited.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                endpoint = %self.label,
                error = %failed.message,
                "The server refused another SSH connection while others were open (a limit of sessions per user or address, or MaxStartups); going on with the connections it accepted. Setting max_connections to that number spares it the extra ones."
            );
        }
        true
    }

    /// Drops `dead` from whichever slot holds it, so the next operation there reconnects.
    pub async fn forget(&self, dead: &Arc<Conn>) {
        for s in &self.slots {
            let mut slot = s.conn.lock().await;
            if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, dead)) {
                *slot = None;
                s.set_up(false);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(pool: &Pool, slot: usize) {
        pool.slots[slot].set_up(true);
    }

    fn err(kind: ErrorKind) -> EndpointError {
        EndpointError::new(kind, crate::endpoint::Op::Connect, "sftp u@h:22", None, "refused")
    }

    #[test]
    fn one_file_at_a_time_stays_on_one_connection() {
        let pool = Pool::new("t".into(), 4);
        let a = pool.pick(Use::Stream);
        assert_eq!(a.slot, 0);
        up(&pool, 0);
        drop(a);
        for _ in 0..3 {
            assert_eq!(pool.pick(Use::Stream).slot, 0, "an idle live connection is used before a new one is made");
        }
    }

    #[test]
    fn requests_and_small_files_never_wait_for_a_new_connection() {
        let pool = Pool::new("t".into(), 2);
        let a = pool.pick(Use::Brief);
        up(&pool, 0);
        let b = pool.pick(Use::Brief);
        assert_eq!((a.slot, b.slot), (0, 0));
        assert_eq!(pool.pick(Use::Stream).slot, 1);
    }

    #[test]
    fn a_new_connection_only_when_every_live_one_is_busy() {
        let pool = Pool::new("t".into(), 2);
        let a = pool.pick(Use::Stream);
        up(&pool, 0);
        let b = pool.pick(Use::Stream);
        assert_eq!((a.slot, b.slot), (0, 1));
        up(&pool, 1);
        // Full: the least busy.
        let c = pool.pick(Use::Stream);
        drop(a);
        let d = pool.pick(Use::Stream);
        assert_eq!((c.slot, d.slot), (0, 0));
        let e = pool.pick(Use::Stream);
        assert_eq!(e.slot, 1, "slot 0 has two, slot 1 one");
        drop((b, c, d, e));
    }

    #[test]
    fn a_refused_extra_connection_gives_its_slot_up_only_while_another_is_live() {
        let pool = Pool::new("t".into(), 3);
        let a = pool.pick(Use::Stream);
        assert!(!pool.give_up(&a, &err(ErrorKind::Transient)), "the first connection's failure is the caller's error");
        up(&pool, 0);
        let b = pool.pick(Use::Stream);
        assert_eq!(b.slot, 1);
        assert!(!pool.give_up(&b, &err(ErrorKind::HostKey)), "a changed host key is never a limit");
        assert!(pool.give_up(&b, &err(ErrorKind::AuthFailed)));
        drop(b);
        let c = pool.pick(Use::Stream);
        assert_eq!(c.slot, 2, "the given-up slot is skipped");
        assert!(pool.give_up(&c, &err(ErrorKind::Transient)));
        drop(c);
        let picks: Vec<usize> = (0..3).map(|_| pool.pick(Use::Stream).slot).collect();
        assert_eq!(picks, [0, 0, 0]);
        drop(a);
    }

    #[test]
    fn a_connection_that_died_and_cannot_be_made_again_is_an_outage_not_a_limit() {
        let pool = Pool::new("t".into(), 2);
        let (a, b) = (pool.pick(Use::Stream), pool.pick(Use::Stream));
        up(&pool, 0);
        up(&pool, 1);
        pool.slots[1].set_up(false); // died; its reconnect fails
        assert!(!pool.give_up(&b, &err(ErrorKind::Transient)));
        drop((a, b));
    }
}
