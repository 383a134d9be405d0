//! The `command` step: a file's bytes through a program (`gpg --decrypt`, `gunzip`, …).
//!
//! Owns one pass: the current bytes (a file) are the program's stdin, as a file handle (wharf
//! never holds them); its stdout is copied, a buffer at a time, into a new file beside the
//! staging file, so memory stays bounded whatever the size, and a full disk is wharf's own
//! write error (the run's trouble), never mistaken for the program's. The output is bounded
//! too (`max_output`): past it, or on a write error (a full disk), the program is killed with
//! its group and what it wrote removed at once, so that a program writing without end (a
//! decompression bomb) never leaves the state disk full for the other flows. How the program is
//! started, its environment, its time limit and what it leaves running are
//! `crate::process`'s, as for `source.command`. Which bytes a step gets and where its output
//! goes next is the pipeline's (`steps::FileRun`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::duration;
use crate::config::raw_steps::RawStepCommand;
use crate::process::{self, FlowProgram, Unsuccessful};
use crate::steps::check::MaxOutput;
use crate::template::{NameTemplate, NameVars};

/// How much of the program's output is copied at a time.
const CHUNK: usize = 256 * 1024;

/// A built `command` step.
#[derive(Debug, Clone)]
pub struct Command {
    /// Its position in its list (for messages: `steps[1]`).
    pub at: usize,
    /// Its list, as messages name it: `steps`, or a round trip's `response.steps`.
    pub list: &'static str,
    /// The program, how it is started and bounded (its timeout and `max_output` for one
    /// file).
    pub program: FlowProgram,
    /// The file's name after this step, from its name before (`None`: kept).
    pub name: Option<NameTemplate>,
}

/// Where one pass runs: the flow, the run and the file's name as the step gets it.
pub struct Env<'a> {
    pub flow: &'a str,
    pub run: u64,
    pub file: &'a str,
    /// The run's side giving up on the pass (`wharf serve` cutting the run off at its
    /// shutdown): the program is killed with its group, at once.
    pub abandoned: Option<&'a process::Abandoned>,
}

/// Why a pass did not give the file's new bytes, when it is not the file's fault.
#[derive(Debug)]
pub enum Trouble {
    /// The program could not be started (missing, not executable): the flow's setup.
    NotStarted(String),
    /// Local I/O (reading the current bytes, writing the output: a full disk).
    Io(std::io::Error),
}

impl From<std::io::Error> for Trouble {
    fn from(e: std::io::Error) -> Self {
        Trouble::Io(e)
    }
}

/// Sample names a step's `name` template is tried on: different in everything but the name.
fn samples() -> [NameVars; 2] {
    let day = Duration::from_secs(90_000);
    [NameVars::new("sample.csv.gpg", "", 1, 1, UNIX_EPOCH), NameVars::new("sample.csv.gpg", "a", 2, 2, UNIX_EPOCH + day)]
}

impl Command {
    /// Builds the step at position `at` of `list` (`steps`, `response.steps`); a program path with a `/` resolves against `base`
    /// (the flow file's folder). Problems with the field they are about.
    pub fn build(raw: &RawStepCommand, (list, at): (&'static str, usize), base: &Path) -> Result<Command, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let program = match raw.run.first() {
            Some(p) if !p.is_empty() => Some(if p.contains('/') { crate::config::paths::resolve(base, p) } else { PathBuf::from(p) }),
            _ => {
                problems.push(("run", "must name a program".to_string()));
                None
            }
        };
        let timeout = match duration::parse_positive(&raw.timeout) {
            Ok(d) => Some(d),
            Err(e) => {
                problems.push(("timeout", e));
                None
            }
        };
        let max_output = match MaxOutput::parse(&raw.max_output) {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(("max_output", e));
                None
            }
        };
        let name = match raw.name.as_deref().map(name_template).transpose() {
            Ok(n) => n,
            Err(e) => {
                problems.push(("name", e));
                None
            }
        };
        match (program, timeout, max_output) {
            (Some(program), Some(timeout), Some(max_output)) if problems.is_empty() => Ok(Command {
                at,
                list,
                program: FlowProgram {
                    path: program,
                    args: raw.run[1..].to_vec(),
                    pass_env: raw.pass_env.clone(),
                    dir: base.to_path_buf(),
                    timeout,
                    max_output,
                },
                name,
            }),
            _ => Err(problems),
        }
    }

    /// Where the step is, for messages: `steps[1]`, `response.steps[0]`.
    pub fn place(&self) -> String {
        format!("{}[{}]", self.list, self.at)
    }

    /// The program as written for messages (`gpg`, `/flows/decrypt.sh`).
    pub fn shown(&self) -> String {
        self.program.shown()
    }

    /// The file's name after this step, given its name before.
    pub fn rename(&self, name: &str) -> Result<String, String> {
        let Some(t) = &self.name else { return Ok(name.to_string()) };
        let renamed = t.render(&NameVars::new(name, "", 0, 0, UNIX_EPOCH))?;
        crate::endpoint::path::check_name(&renamed).map_err(|e| {
            format!("the `command` step {}: its name `{}` gives no usable file name for {name:?}: {e}", self.place(), t.source())
        })?;
        Ok(renamed)
    }

    /// Runs the program on the bytes of `input`, its output written to `output`. `Ok(Err)`:
    /// the program failed (how, for the file's quarantine reason). Must not be called from
    /// async code (it blocks on the program); within a tokio runtime's blocking thread it
    /// uses that runtime, elsewhere one of its own.
    /// A pass abandoned ([`Env::abandoned`]) is `Trouble::Io` of kind `Interrupted`; the
    /// output file is then incomplete. Output past `max_output` (`Ok(Err)`) and a write error
    /// (`Trouble::Io`: a full disk) kill the program and remove the output before returning.
    pub fn run(&self, env: &Env<'_>, input: &Path, output: &Path) -> Result<Result<(), String>, Trouble> {
        let pass = async {
            let Some(abandoned) = env.abandoned else { return self.pass(env, input, output).await };
            abandoned.or_abandoned(self.pass(env, input, output)).await.unwrap_or_else(|| {
                let why = format!("the `command` step {} (`{}`) was killed: the run was cut off", self.place(), self.shown());
                Err(Trouble::Io(std::io::Error::new(std::io::ErrorKind::Interrupted, why)))
            })
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => h.block_on(pass),
            Err(_) => tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(pass),
        }
    }

    async fn pass(&self, env: &Env<'_>, input: &Path, output: &Path) -> Result<Result<(), String>, Trouble> {
        let stdin = std::fs::File::open(input)?;
        let mut out = tokio::fs::File::create(output).await?;
        let mut cmd = self.program.command(env.flow, env.run);
        cmd.env("WHARF_FILE", env.file).stdin(Stdio::from(stdin)).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut running = match process::spawn(cmd).await {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied) => {
                return Err(Trouble::NotStarted(format!(
                    "the `command` step {}: program `{}` could not be started: {}",
                    self.place(),
                    self.shown(),
                    crate::endpoint::local::io_reason(&e)
                )));
            }
            Err(e) => return Err(Trouble::Io(e)),
        };
        let stdout = running.take_stdout();
        let max = self.program.max_output.bytes;
        // Told when the output passes `max`: the program is then stopped (killed with its group,
        // the end of its stderr still read).
        let (over_tx, over_rx) = tokio::sync::oneshot::channel::<()>();
        let over = async {
            if over_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        // Ends when the program's stdout closes (it exited, what it left behind killed, or was
        // killed at its limit), when its output passes `max` (`Ok(false)`), or on a write error.
        let copy = async move {
            if let Some(mut stdout) = stdout {
                let mut buf = vec![0u8; CHUNK];
                let mut written = 0u64;
                loop {
                    let n = stdout.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    written = written.saturating_add(n as u64);
                    if written > max {
                        let _ = over_tx.send(());
                        return Ok(false);
                    }
                    out.write_all(&buf[..n]).await?;
                }
            }
            out.flush().await?;
            out.sync_all().await?;
            Ok::<bool, std::io::Error>(true)
        };
        let waited = {
            let wait = running.wait_unless(None, self.program.timeout, process::STDERR_TAIL, over);
            tokio::pin!(copy, wait);
            let mut waited = None;
            let copied = loop {
                tokio::select! {
                    c = &mut copy => break c,
                    w = &mut wait, if waited.is_none() => waited = Some(w),
                }
            };
            match copied {
                Ok(true) => Ok(match waited {
                    Some(w) => w,
                    None => wait.await,
                }),
                Ok(false) => {
                    // Removed at once (the copy closed it), before the program's stderr is
                    // read: a full state disk is every flow's trouble.
                    let _ = tokio::fs::remove_file(output).await;
                    let waited = match waited {
                        Some(w) => w,
                        None => wait.await,
                    };
                    let how = format!("wrote more than its max_output of {} and was killed", self.program.max_output.shown);
                    return Ok(Err(self.failed(&how, waited.stderr())));
                }
                Err(e) => Err(e),
            }
        };
        // On a write error the wait was dropped with the block: the program still running is
        // killed with its group, not waited for until its limit.
        let waited = match waited {
            Ok(w) => w,
            Err(e) => {
                // Removed at once: a full state disk is every flow's trouble.
                let _ = tokio::fs::remove_file(output).await;
                return Err(Trouble::Io(e));
            }
        };
        Ok(match waited.success(self.program.timeout) {
            Ok(()) => Ok(()),
            Err(Unsuccessful::Wait(e)) => return Err(Trouble::Io(e)),
            Err(Unsuccessful::Ended { how, stderr }) => Err(self.failed(&how, &stderr)),
        })
    }

    /// A pass's failure, for the file's quarantine reason: the step, the program, how it
    /// ended and the end of its stderr.
    fn failed(&self, how: &str, stderr: &str) -> String {
        format!("the `command` step {} (`{}`) {}", self.place(), self.shown(), Unsuccessful::ended(how, stderr))
    }
}

/// A step's `name` template: compiled, knowing only the name (`name`, `stem`, `ext`), and
/// giving a plain file name for a sample.
fn name_template(text: &str) -> Result<NameTemplate, String> {
    let t = NameTemplate::new(text)?;
    let [a, b] = samples();
    let (ra, rb) = (t.render(&a)?, t.render(&b)?);
    if ra != rb {
        return Err(format!(
            "`{text}` reads more than the file's name: a step's `name` knows `name`, `stem` and `ext` (not `rel_dir`, `size`, `run` or `date`)"
        ));
    }
    crate::endpoint::path::check_name(&ra)
        .map_err(|e| format!("template `{}` must give a plain file name: for a file named {}, {e}", crate::text::visible(text), a.name))?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw_steps::RawSize;

    fn step(run: &[&str], timeout: &str, name: Option<&str>) -> Command {
        Command::build(&raw(run, timeout, name), ("steps", 1), &std::env::temp_dir()).unwrap()
    }

    fn raw(run: &[&str], timeout: &str, name: Option<&str>) -> RawStepCommand {
        RawStepCommand {
            run: run.iter().map(|s| s.to_string()).collect(),
            pass_env: Vec::new(),
            timeout: timeout.into(),
            max_output: RawSize::Text("10GiB".into()),
            name: name.map(str::to_string),
        }
    }

    /// A step whose output may be at most `max_output`.
    fn bounded(run: &[&str], max_output: &str) -> Command {
        Command::build(
            &RawStepCommand { max_output: RawSize::Text(max_output.into()), ..raw(run, "1h", None) },
            ("steps", 1),
            Path::new("/"),
        )
        .unwrap()
    }

    /// Asserts that every process whose pid is a line of `pids` is gone (or a zombie) within 2 s.
    fn all_gone(pids: &Path) {
        for pid in std::fs::read_to_string(pids).unwrap().lines() {
            let stat = format!("/proc/{pid}/stat");
            let gone = (0..100).any(|_| {
                std::thread::sleep(Duration::from_millis(20));
                std::fs::read_to_string(&stat).map_or(true, |s| s.contains(") Z "))
            });
            assert!(gone, "process {pid} still runs");
        }
    }

    fn env() -> Env<'static> {
        Env { flow: "f", run: 3, file: "x.csv.gz", abandoned: None }
    }

    #[test]
    fn gzip_and_gunzip_round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, packed, back) = (dir.path().join("plain"), dir.path().join("packed"), dir.path().join("back"));
        let body: Vec<u8> = (0..200_000u32).flat_map(|i| format!("{i},row\n").into_bytes()).collect();
        std::fs::write(&plain, &body).unwrap();
        assert_eq!(step(&["gzip", "-c"], "1m", None).run(&env(), &plain, &packed).unwrap(), Ok(()));
        assert_eq!(&std::fs::read(&packed).unwrap()[..2], &[0x1f, 0x8b]);
        assert_eq!(step(&["gunzip", "-c"], "1m", None).run(&env(), &packed, &back).unwrap(), Ok(()));
        assert_eq!(std::fs::read(&back).unwrap(), body);
    }

    #[test]
    fn the_program_sees_the_flow_the_run_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (input, out) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::write(&input, "").unwrap();
        let s = step(&["sh", "-c", "echo \"$WHARF_FLOW $WHARF_RUN $WHARF_FILE\"; pwd"], "1m", None);
        assert_eq!(s.run(&env(), &input, &out).unwrap(), Ok(()));
        let pwd = std::env::temp_dir().canonicalize().unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("f 3 x.csv.gz\n{}\n", pwd.display()), "empty input, output made");
    }

    #[test]
    fn a_failing_program_says_how_with_the_end_of_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let (input, out) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::write(&input, "not gzip").unwrap();
        let why = step(&["gunzip", "-c"], "1m", None).run(&env(), &input, &out).unwrap().unwrap_err();
        assert!(why.starts_with("the `command` step steps[1] (`gunzip`) exited with status 1; its stderr ends: "), "{why}");
        assert!(why.contains("not in gzip format"), "{why}");

        let s = step(&["sh", "-c", "echo 'gpg: decryption failed: No secret key' >&2; kill -9 $$"], "1m", None);
        let why = s.run(&env(), &input, &out).unwrap().unwrap_err();
        assert_eq!(
            why,
            "the `command` step steps[1] (`sh`) was killed by signal 9; its stderr ends: gpg: decryption failed: No secret key"
        );

        let started = std::time::Instant::now();
        let why = step(&["sleep", "30"], "300ms", None).run(&env(), &input, &out).unwrap().unwrap_err();
        assert_eq!(why, "the `command` step steps[1] (`sleep`) did not finish within 300ms and was killed");
        assert!(started.elapsed() < Duration::from_secs(10));

        let why = step(&["sh", "-c", "(sleep 5; echo late) & echo early"], "1m", None).run(&env(), &input, &out).unwrap().unwrap_err();
        assert!(why.contains("left processes running in the background"), "{why}");
    }

    /// The run given up (cut off at `wharf serve`'s shutdown): the program and what it
    /// started are killed at once, not left to their time limit.
    #[test]
    fn an_abandoned_pass_kills_the_program_and_its_group_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (input, out, pids) = (dir.path().join("in"), dir.path().join("out"), dir.path().join("pids"));
        std::fs::write(&input, "x").unwrap();
        let script = format!("sleep 60 & echo $! >> {p}; echo $$ >> {p}; wait", p = pids.display());
        let s = step(&["sh", "-c", &script], "1h", None);
        let (abandon, abandoned) = process::abandonment();
        let pids_c = pids.clone();
        let giver_up = std::thread::spawn(move || {
            while std::fs::read_to_string(&pids_c).map_or(0, |t| t.lines().count()) < 2 {
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(abandon);
        });
        let started = std::time::Instant::now();
        let env = Env { abandoned: Some(&abandoned), ..env() };
        match s.run(&env, &input, &out) {
            Err(Trouble::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "{e}"),
            other => panic!("{other:?}"),
        }
        giver_up.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
        all_gone(&pids);
    }

    /// A program writing without end (a decompression bomb) is stopped at `max_output`, not
    /// at its `timeout`: killed with its group, what it wrote removed, the file's reason
    /// naming the step, the program and the limit. Output up to the limit passes.
    #[test]
    fn output_past_max_output_kills_the_program_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (input, out, pids) = (dir.path().join("in"), dir.path().join("out"), dir.path().join("pids"));
        std::fs::write(&input, "x").unwrap();
        let started = std::time::Instant::now();
        let script = format!("sleep 60 & echo $! >> {p}; echo $$ >> {p}; exec yes", p = pids.display());
        let why = bounded(&["sh", "-c", &script], "1MiB").run(&env(), &input, &out).unwrap().unwrap_err();
        assert_eq!(why, "the `command` step steps[1] (`sh`) wrote more than its max_output of 1MiB and was killed");
        assert!(!out.exists(), "the partial output is removed");
        assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
        all_gone(&pids);

        // A program that exits at once, its output still in the pipe: counted all the same.
        let why = bounded(&["head", "-c", "5M", "/dev/zero"], "1MiB").run(&env(), &input, &out).unwrap().unwrap_err();
        assert!(why.ends_with("(`head`) wrote more than its max_output of 1MiB and was killed"), "{why}");
        assert!(!out.exists());

        // Exactly the limit, and under it, pass.
        assert_eq!(bounded(&["head", "-c", "1048576", "/dev/zero"], "1MiB").run(&env(), &input, &out).unwrap(), Ok(()));
        assert_eq!(std::fs::metadata(&out).unwrap().len(), 1 << 20);
        assert_eq!(bounded(&["head", "-c", "1000", "/dev/zero"], "1MiB").run(&env(), &input, &out).unwrap(), Ok(()));
        assert_eq!(std::fs::metadata(&out).unwrap().len(), 1000);
    }

    /// The reason for output past `max_output` quotes the end of the program's stderr, as
    /// every other failure's does: read after its group was killed, not lost with the wait.
    #[test]
    fn output_past_max_output_quotes_the_end_of_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let (input, out) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::write(&input, "x").unwrap();
        let started = std::time::Instant::now();
        let script = "echo 'gunzip: unexpected block of zeros' >&2; sleep 0.2; exec yes";
        let why = bounded(&["sh", "-c", script], "64KiB").run(&env(), &input, &out).unwrap().unwrap_err();
        assert_eq!(
            why,
            "the `command` step steps[1] (`sh`) wrote more than its max_output of 64KiB and was killed; its stderr ends: \
             gunzip: unexpected block of zeros"
        );
        assert!(!out.exists(), "the partial output is removed");
        // Something that outlives the kill holding stderr open (here a process that left the
        // group) keeps the reason waiting a short bounded time only, and what was read is kept.
        let pid = dir.path().join("pid");
        let script = format!("echo early-line >&2; setsid sleep 30 & echo $! > {}; sleep 0.2; exec yes", pid.display());
        let why = bounded(&["sh", "-c", &script], "64KiB").run(&env(), &input, &out).unwrap().unwrap_err();
        let escaped: i32 = std::fs::read_to_string(&pid).unwrap().trim().parse().unwrap();
        // SAFETY: kill(2) of the `sleep` this test's script started.
        unsafe { libc::kill(escaped, libc::SIGKILL) };
        assert!(why.ends_with("wrote more than its max_output of 64KiB and was killed; its stderr ends: early-line"), "{why}");
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    }

    /// A full disk while the output is written: the output is removed and the program killed
    /// at once, before the error is returned, freeing the disk for the other flows.
    #[test]
    fn a_full_disk_removes_the_output_and_kills_the_program_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (input, out, pids) = (dir.path().join("in"), dir.path().join("out"), dir.path().join("pids"));
        std::fs::write(&input, "x").unwrap();
        // Writes through the link fail with ENOSPC; removing the output removes the link only.
        std::os::unix::fs::symlink("/dev/full", &out).unwrap();
        let started = std::time::Instant::now();
        let script = format!("trap '' PIPE; echo $$ >> {p}; while :; do yes; done", p = pids.display());
        match bounded(&["sh", "-c", &script], "1GiB").run(&env(), &input, &out) {
            Err(Trouble::Io(e)) => assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
        assert!(std::fs::symlink_metadata(&out).is_err(), "the output is removed");
        assert!(Path::new("/dev/full").exists());
        all_gone(&pids);
    }

    /// Programs a hostile or broken file makes misbehave: none holds wharf up past the step's
    /// `timeout` or makes it keep more than the end of stderr.
    #[test]
    fn misbehaving_programs_end_within_their_limit_with_bounded_messages() {
        let dir = tempfile::tempdir().unwrap();
        let (input, out) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::write(&input, vec![b'x'; 4 << 20]).unwrap();
        let quick = std::time::Instant::now();

        // 20 MB on stderr: only its end is kept and quoted.
        let s = step(&["sh", "-c", "head -c 20000000 /dev/zero | tr '\\0' e >&2; echo the-end >&2; exit 4"], "1m", None);
        let why = s.run(&env(), &input, &out).unwrap().unwrap_err();
        assert!(why.starts_with("the `command` step steps[1] (`sh`) exited with status 4; its stderr ends: …eee"), "{}", &why[..200]);
        assert!(why.ends_with("eeethe-end") && why.chars().count() < 700, "{} chars: {}", why.chars().count(), &why[why.len() - 40..]);

        // Never reads its (file) stdin: no broken pipe on wharf's side; an empty output.
        assert_eq!(step(&["true"], "1m", None).run(&env(), &input, &out).unwrap(), Ok(()));
        assert_eq!(std::fs::metadata(&out).unwrap().len(), 0);

        // Closes its stdout and runs on: killed at its limit, not waited for for ever.
        let s = step(&["sh", "-c", "echo part; exec >&-; sleep 30"], "500ms", None);
        assert_eq!(
            s.run(&env(), &input, &out).unwrap().unwrap_err(),
            "the `command` step steps[1] (`sh`) did not finish within 500ms and was killed"
        );

        // Writes for ever: killed at its limit.
        let why = step(&["yes"], "300ms", None).run(&env(), &input, &out).unwrap().unwrap_err();
        assert!(why.contains("did not finish within 300ms"), "{why}");
        assert!(quick.elapsed() < Duration::from_secs(20), "{:?}", quick.elapsed());
    }

    #[test]
    fn a_program_that_cannot_start_is_the_flow_s_trouble() {
        let dir = tempfile::tempdir().unwrap();
        let (input, out) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::write(&input, "x").unwrap();
        match step(&["no-such-program-wharf"], "1m", None).run(&env(), &input, &out) {
            Err(Trouble::NotStarted(m)) => {
                assert!(m.starts_with("the `command` step steps[1]: program `no-such-program-wharf` could not be started: "), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_step_renames_the_file_from_its_name_alone() {
        assert_eq!(step(&["gpg"], "1m", Some("{{stem}}")).rename("orders.csv.gpg").unwrap(), "orders.csv");
        assert_eq!(step(&["gzip"], "1m", Some("{{name}}.gz")).rename("orders.csv").unwrap(), "orders.csv.gz");
        assert_eq!(step(&["gzip"], "1m", None).rename("orders.csv").unwrap(), "orders.csv");
        let e = step(&["gpg"], "1m", Some("{{ext}}")).rename("README").unwrap_err();
        assert!(e.starts_with("the `command` step steps[1]: its name `{{ext}}` gives no usable file name for \"README\": "), "{e}");
        let build =
            |name: &str, timeout: &str| Command::build(&raw(&["gpg"], timeout, Some(name)), ("steps", 0), Path::new("/f")).unwrap_err();
        let p = build("{{stem}}-{{run}}", "1m");
        assert!(p[0].0 == "name" && p[0].1.contains("knows `name`, `stem` and `ext`"), "{p:?}");
        let p = build("a/{{stem}}", "0s");
        assert_eq!(p.iter().map(|p| p.0).collect::<Vec<_>>(), ["timeout", "name"], "{p:?}");
        assert!(p[1].1.contains("must give a plain file name"), "{p:?}");
    }
}
