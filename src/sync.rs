//! Mutexes that outlive a panic elsewhere.
//!
//! Every `std::sync::Mutex` in wharf guards plain data changed in one step while it is held
//! (an insert, a take, a counter, a handle put in place), never an invariant spread over
//! several steps. A panic in another task while one was held (a bug, reported where it
//! happened) therefore leaves the data whole, and refusing it from then on would only turn
//! one failed run into a daemon that fails everything. This module owns that decision.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, whether or not a panic poisoned it (see the module doc).
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
