//! Tests only: what code under test logs, captured as text lines.

use std::sync::{Arc, Mutex};

/// A log writer that keeps what it is given; [`Log::of`] runs a closure under it.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    /// `f`'s log lines (INFO and above, no colours).
    pub fn of<T>(&self, f: impl FnOnce() -> T) -> (T, Vec<String>) {
        let dispatch = self.dispatch();
        let before = self.0.lock().unwrap().len();
        let out = tracing::dispatcher::with_default(&dispatch, f);
        let text = String::from_utf8(self.0.lock().unwrap()[before..].to_vec()).unwrap();
        (out, text.lines().map(str::to_string).collect())
    }

    /// Captures this thread's log lines (INFO and above) until the guard is dropped: async
    /// code under test, across its awaits on a `#[tokio::test]`'s thread; [`Log::text`] reads them.
    pub fn capture(&self) -> tracing::dispatcher::DefaultGuard {
        tracing::dispatcher::set_default(&self.dispatch())
    }

    fn dispatch(&self) -> tracing::Dispatch {
        let writer = self.clone();
        tracing::Dispatch::new(tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish())
    }

    /// Everything logged to it so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
