//! Standard output and standard error of the commands: a reader that goes away stops the
//! printing, never the command.
//!
//! Most commands keep SIGPIPE ignored (see `cli::only_prints`): `wharf run … | head` must
//! finish its run, and exit with the run's code, whatever became of its output. A write to a
//! closed pipe then fails with `EPIPE`, on which `println!` and `eprintln!` panic. So every
//! command prints through [`outln!`] / [`out!`] (stdout) and [`errln!`] (stderr) instead: the
//! first write to a stream that fails marks it closed and every later one is dropped. A
//! closed pipe is the reader's choice and is not reported; any other failure of stdout (a
//! full disk under `> report.txt`) is said once on stderr.
//!
//! This module owns the two streams; it must not decide anything about the command's outcome.
//! It remembers whether stdout was written to, for `failure`.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Like `println!`, for the commands' output: see the module doc.
macro_rules! outln {
    () => {
        $crate::cli::output::write($crate::cli::output::Stream::Out, format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write($crate::cli::output::Stream::Out, format_args!($($arg)*), true)
    };
}

/// Like `print!` (the text is flushed at once: it is a prompt, or the last of something).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write($crate::cli::output::Stream::Out, format_args!($($arg)*), false)
    };
}

/// Like `eprintln!`, for the commands' messages: see the module doc.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::write($crate::cli::output::Stream::Err, format_args!($($arg)*), true)
    };
}

pub(crate) use {errln, out, outln};

/// Which of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// Set by the first failed write to stdout, to stderr: nothing more is written there.
static CLOSED: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// Set by the first write to stdout (see [`wrote_stdout`]).
static WROTE_STDOUT: AtomicBool = AtomicBool::new(false);

/// Whether the command printed anything on stdout (a failure reported as JSON must not
/// follow another document there).
pub fn wrote_stdout() -> bool {
    WROTE_STDOUT.load(Ordering::Relaxed)
}

/// Writes `args` to `stream` (with a newline when `line`, else flushed), unless it is closed.
pub fn write(stream: Stream, args: fmt::Arguments<'_>, line: bool) {
    match stream {
        Stream::Out => {
            WROTE_STDOUT.store(true, Ordering::Relaxed);
            write_to(stream, &mut io::stdout().lock(), args, line)
        }
        Stream::Err => write_to(stream, &mut io::stderr().lock(), args, line),
    }
}

fn write_to(stream: Stream, w: &mut dyn Write, args: fmt::Arguments<'_>, line: bool) {
    let closed = &CLOSED[stream as usize];
    if closed.load(Ordering::Relaxed) {
        return;
    }
    let written = w.write_fmt(args).and_then(|()| if line { w.write_all(b"\n") } else { w.flush() });
    let Err(e) = written else { return };
    if closed.swap(true, Ordering::Relaxed) || e.kind() == io::ErrorKind::BrokenPipe || stream == Stream::Err {
        // Told already; or the reader's choice; or there is no one left to tell.
        return;
    }
    errln!("warning: cannot write to standard output ({e}); output stopped, the command goes on");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader went away.
    struct Gone(usize);

    impl Write for Gone {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.0 += 1;
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_stops_the_printing_without_a_panic() {
        // Stderr's flag: no test prints there through this module.
        let mut w = Gone(0);
        write_to(Stream::Err, &mut w, format_args!("flow {}: ok", "demo"), true);
        assert!(CLOSED[Stream::Err as usize].load(Ordering::Relaxed));
        write_to(Stream::Err, &mut w, format_args!("more"), true);
        assert_eq!(w.0, 1, "nothing is written once the reader is gone");
        CLOSED[Stream::Err as usize].store(false, Ordering::Relaxed);
    }
}
