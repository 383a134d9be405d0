//! The flows a daemon serves: the flow files of one folder, reloaded when they change.
//!
//! Keyed by file. A file that loads is swapped in for the next run (a run in progress keeps
//! the version it started with); a file that no longer loads is reported and its previous
//! good version keeps running; a removed file's flow stops being scheduled. Two files naming
//! the same flow would share its ledger records, so the second one is refused.
//!
//! A flow is looked at again when its file or any file it is built from (`config::inputs`:
//! a script, a schema, a template, a `${file:…}` secret) changes, as told by the files'
//! identity, length, and modification and change times; [`Registry::reload_all`] (SIGHUP)
//! looks at every flow again whatever the files say.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{self, Flow};

/// One flow file.
#[derive(Debug, Clone)]
pub struct Slot {
    pub file: PathBuf,
    /// The version in force: the last one that loaded (`None`: it never did).
    pub flow: Option<Arc<Flow>>,
    /// Why the file on disk is not in force, when it is not.
    pub problem: Option<String>,
    /// The files as they were when this version was loaded (`None`: look at it again).
    seen: Option<Fingerprint>,
    /// The flow name the file gives when another file's flow has it (refused for the
    /// clash): looked at again when that changes.
    clash: Option<String>,
    /// The flow name the file on disk goes by: its flow's; for a file that did not load,
    /// [`config::unloaded_name`], as its refusal was logged.
    given: String,
}

impl Slot {
    /// The flow's name: the version in force's; for a file with none, the name the file
    /// gives (a flow file that does not load: [`config::unloaded_name`], as `wharf status`
    /// names it without a daemon).
    pub fn name(&self) -> String {
        self.flow.as_ref().map_or_else(|| self.given.clone(), |f| f.name.clone())
    }
}

/// What tells a changed file: which file it is (a deploy that renames a new one into place),
/// its length, and its modification and change times (the change time also moves when a
/// copy sets the modification time back: `cp -p`, `rsync -t`). `None`: no file there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp(Option<(u64, u64, u64, i64, i64, i64, i64)>);

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    Stamp(std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec())))
}

/// The stamps of a flow file and of every file its flow is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint(Vec<(PathBuf, Stamp)>);

impl Fingerprint {
    /// The same files, as they are now.
    fn now(&self) -> Fingerprint {
        Fingerprint(self.0.iter().map(|(path, _)| (path.clone(), stamp(path))).collect())
    }
}

/// What a rescan changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Flows (re)loaded.
    pub loaded: Vec<String>,
    /// Files that failed to load (the previous version, if any, stays).
    pub refused: Vec<PathBuf>,
    /// Files gone.
    pub removed: Vec<PathBuf>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty() && self.refused.is_empty() && self.removed.is_empty()
    }
}

/// The flow files of one folder.
#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    slots: BTreeMap<PathBuf, Slot>,
    /// The folder could not be read at the last scan (said once, until it can again).
    unreadable: bool,
}

impl Registry {
    pub fn new(dir: &Path) -> Self {
        Registry { dir: dir.to_path_buf(), slots: BTreeMap::new(), unreadable: false }
    }

    /// Every slot, by file.
    pub fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.values()
    }

    /// The flow in force named `name`.
    pub fn flow(&self, name: &str) -> Option<Arc<Flow>> {
        self.slots.values().filter_map(|s| s.flow.clone()).find(|f| f.name == name)
    }

    /// The slot of a flow file named `name` that is refused and has no version in force (a
    /// file refused with one in force still runs it): a trigger of it is told why.
    pub fn refused(&self, name: &str) -> Option<&Slot> {
        self.slots.values().find(|s| s.flow.is_none() && s.problem.is_some() && s.name() == name)
    }

    /// When `slot` has no version in force and its flow name is another file's flow in force's
    /// ([`config::name_owner`]: refused for the clash, or a file that does not load): the
    /// problem its row shows alone, without that name's schedule, runs and records. A file
    /// that does not load also says that the name is the other file's (was: its row showed
    /// the other flow's next run, last run and health as its own).
    pub fn alone(&self, slot: &Slot) -> Option<String> {
        if slot.flow.is_some() {
            return None;
        }
        let name = slot.name();
        let loaded = self.slots.values().filter_map(|s| s.flow.as_ref().map(|f| (s.file.as_path(), f.name.as_str())));
        let problem = slot.problem.clone().unwrap_or_default();
        let Some(owner) = config::name_owner(&slot.file, &name, loaded) else {
            // No flow has the name: of the files that do not load and give it, the first
            // shows its history.
            let given: Vec<(&Path, String)> =
                self.slots.values().filter(|s| s.flow.is_none() && s.clash.is_none()).map(|s| (s.file.as_path(), s.name())).collect();
            let first = config::name_shown_by(&slot.file, &name, given.iter().map(|(p, n)| (*p, n.as_str())))?;
            return Some(format!("{problem}; {}", config::name_shown_beside(&name, first)));
        };
        // A clash's problem already names the other file (`config::name_taken`).
        Some(if slot.clash.is_some() { problem } else { format!("{problem}; {}", config::name_also_used(&name, owner)) })
    }

    /// Every flow in force.
    pub fn flows(&self) -> Vec<Arc<Flow>> {
        self.slots.values().filter_map(|s| s.flow.clone()).collect()
    }

    /// [`rescan`](Self::rescan), loading every flow file again, changed or not (SIGHUP: an
    /// operator's way to be sure what runs is what the files say now).
    pub fn reload_all(&mut self) -> Changes {
        for slot in self.slots.values_mut() {
            slot.seen = None;
        }
        self.rescan()
    }

    /// Reads the folder again and loads every new or changed file. A file refused for a name
    /// clash is looked at again when a file is removed or another flow (re)loads: either may
    /// have freed the name.
    ///
    /// Then warns of two flows in force, one of them (re)loaded now, that may take each
    /// other's responses (`config::across`): once per load, as a flow's own warnings; both
    /// run as written.
    pub fn rescan(&mut self) -> Changes {
        let mut changes = self.scan();
        if !changes.loaded.is_empty() && self.slots.values().any(|s| s.clash.is_some()) {
            for slot in self.slots.values_mut().filter(|s| s.clash.is_some()) {
                slot.seen = None;
            }
            let again = self.scan();
            changes.loaded.extend(again.loaded);
            for file in again.refused {
                if !changes.refused.contains(&file) {
                    changes.refused.push(file);
                }
            }
        }
        if !changes.loaded.is_empty() {
            self.warn_across(&changes.loaded);
        }
        changes
    }

    /// Logs the clashes across the flows in force that involve one of `loaded`.
    fn warn_across(&self, loaded: &[String]) {
        let flows = self.flows();
        let flows: Vec<&Flow> = flows.iter().map(|f| f.as_ref()).collect();
        let new = |f: &Flow| loaded.contains(&f.name);
        for c in config::across::response_clashes(&flows).iter().filter(|c| new(c.first) || new(c.second)) {
            let d = c.diagnostic();
            tracing::warn!(
                flow = %c.second.name,
                other = %c.first.name,
                file = %d.file.display(),
                line = d.line,
                col = d.col,
                at = %d.yaml_path,
                warning = %d.message,
                "Flows may take each other's responses; they run as written."
            );
        }
    }

    /// One pass over the folder.
    fn scan(&mut self) -> Changes {
        let mut changes = Changes::default();
        // A folder that cannot be read (gone, replaced by a deploy, unmounted, no permission)
        // is not a folder whose files were all removed: what is in force stays, said once.
        if let Err(e) = std::fs::read_dir(&self.dir) {
            if !self.unreadable {
                let flows = self.flows().len();
                tracing::error!(folder = %self.dir.display(), error = %e, flows, "Flows folder cannot be read; the flows in force keep their schedules until it can.");
                self.unreadable = true;
            }
            return changes;
        }
        if std::mem::take(&mut self.unreadable) {
            tracing::info!(folder = %self.dir.display(), "Flows folder readable again; its files are looked at.");
        }
        let files: Vec<PathBuf> = config::find_flows(std::slice::from_ref(&self.dir)).into_iter().filter(|p| p.is_file()).collect();
        let gone: Vec<PathBuf> = self.slots.keys().filter(|k| !files.contains(k)).cloned().collect();
        for file in gone {
            if let Some(slot) = self.slots.remove(&file) {
                tracing::warn!(flow = %slot.name(), file = %file.display(), "Flow file removed; its flow is no longer scheduled.");
            }
            changes.removed.push(file);
        }
        if !changes.removed.is_empty() {
            // A file refused for a name clash may load now: look at every refused file again.
            for slot in self.slots.values_mut().filter(|s| s.problem.is_some()) {
                slot.seen = None;
            }
        }
        for file in files {
            let seen = self.slots.get(&file).and_then(|s| s.seen.as_ref());
            if seen.is_some_and(|seen| seen.now() == *seen) {
                continue;
            }
            // The flow file's stamp is taken before it is read, so that a change while it is
            // read shows at the next scan; the files it names are known only once it is.
            let file_stamp = stamp(&file);
            let (loaded, inputs) = config::inputs::recording(|| config::load_flow(&file));
            let mut now = vec![(file.clone(), file_stamp)];
            now.extend(inputs.into_iter().filter(|p| *p != file).map(|p| {
                let s = stamp(&p);
                (p, s)
            }));
            let previous = self.slots.get(&file).and_then(|s| s.flow.clone());
            let previous_name = previous.as_ref().map(|f| f.name.clone());
            let given = loaded.as_ref().map_or_else(|_| config::unloaded_name(&file), |f| f.name.clone());
            let mut clash = None;
            let (flow, problem) = match loaded {
                Ok(flow) => match self.clash(&file, &flow.name) {
                    Some(other) if self.slots.get(&other).is_some_and(|s| s.clash.is_some()) => {
                        // The other file no longer gives this name: it asks for another, taken
                        // (two files swapping their names in one edit). Its stale version
                        // gives way, and it is looked at again once this one is in force.
                        if let Some(slot) = self.slots.get_mut(&other) {
                            slot.flow = None;
                            slot.seen = None;
                        }
                        tracing::info!(flow = %flow.name, file = %file.display(), previous = %other.display(), "Flow name taken over from a file that now gives another.");
                        (Some(Arc::new(flow)), None)
                    }
                    Some(other) => {
                        let why = config::name_taken(&flow.name, &other);
                        clash = Some(flow.name);
                        (previous, Some(why))
                    }
                    None => (Some(Arc::new(flow)), None),
                },
                Err(diags) => {
                    // Every problem, each at its line, as `wharf validate` would list them (the
                    // summary below, also shown by `wharf status`, names only the first).
                    let name = previous.as_ref().map_or_else(|| given.clone(), |f| f.name.clone());
                    for d in &diags {
                        tracing::error!(
                            flow = %name,
                            file = %d.file.display(),
                            line = d.line,
                            col = d.col,
                            at = %d.yaml_path,
                            problem = %d.message,
                            "Flow file problem."
                        );
                    }
                    let first = diags.first().map(|d| d.to_string()).unwrap_or_default();
                    let why = format!("{} problem(s), first: {first}", diags.len());
                    (previous, Some(why))
                }
            };
            match &problem {
                Some(why) => {
                    let kept = if flow.is_some() { "the previous version keeps running" } else { "not scheduled" };
                    let name = flow.as_ref().map_or_else(|| given.clone(), |f| f.name.clone());
                    tracing::error!(flow = %name, file = %file.display(), problem = %why, "Flow file refused; {kept}.");
                    changes.refused.push(file.clone());
                }
                None => {
                    let name = flow.as_ref().map(|f| f.name.clone()).unwrap_or_default();
                    tracing::info!(file = %file.display(), flow = %name, "Flow loaded.");
                    if let Some(old) = previous_name.filter(|old| *old != name) {
                        tracing::warn!(
                            flow = %name,
                            previous = %old,
                            file = %file.display(),
                            "Flow renamed. The ledger keeps what a flow did by its name: what the previous name delivered is not known under the \
                             new one (a file the flow keeps at its source is delivered again), and the previous name's records stay until \
                             `wharf forget` removes them."
                        );
                    }
                    if let Some(flow) = &flow {
                        config::diagnostic::log_warnings(flow);
                    }
                    changes.loaded.push(name);
                }
            }
            self.slots.insert(file.clone(), Slot { file, flow, problem, seen: Some(Fingerprint(now)), clash, given });
        }
        changes
    }

    /// Another file whose flow in force is named `name`.
    fn clash(&self, file: &Path, name: &str) -> Option<PathBuf> {
        self.slots.values().find(|s| s.file != file && s.flow.as_ref().is_some_and(|f| f.name == name)).map(|s| s.file.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn flow_yaml(name: &str, root: &Path) -> String {
        format!(
            "name: {name}\nendpoints:\n  a: {{ type: local, root: {r} }}\nsource: {{ endpoint: a, path: /in }}\nsinks: [ {{ endpoint: a, path: /out }} ]\n",
            r = root.display()
        )
    }

    /// Writes `text` so the change is seen even within one mtime tick (the length differs or
    /// the mtime is set explicitly).
    fn write(path: &Path, text: &str, secs: u64) {
        std::fs::write(path, text).unwrap();
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)).unwrap();
    }

    #[test]
    fn loads_reloads_keeps_the_good_version_and_forgets_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("a.yaml"), &flow_yaml("alpha", d), 1);
        write(&d.join("b.yaml"), &flow_yaml("beta", d), 1);
        let mut r = Registry::new(d);
        assert_eq!(r.rescan().loaded, ["alpha", "beta"]);
        assert!(r.rescan().is_empty(), "nothing changed");
        assert_eq!(r.reload_all().loaded, ["alpha", "beta"], "SIGHUP: unchanged, loaded again");
        assert!(r.rescan().is_empty());

        write(&d.join("a.yaml"), "name: alpha\nendpoints: [oops\n", 2);
        let c = r.rescan();
        assert_eq!(c.refused, [d.join("a.yaml")]);
        assert!(r.flow("alpha").is_some(), "the previous version stays in force");
        let slot = r.slots().find(|s| s.file == d.join("a.yaml")).unwrap();
        assert!(slot.problem.as_deref().unwrap().contains("problem(s)"), "{:?}", slot.problem);

        write(&d.join("c.yaml"), &flow_yaml("beta", d), 3);
        let c = r.rescan();
        assert_eq!(c.refused, [d.join("c.yaml")]);
        assert!(r.slots().find(|s| s.file == d.join("c.yaml")).unwrap().problem.as_deref().unwrap().contains("already used by"));

        std::fs::remove_file(d.join("b.yaml")).unwrap();
        let c = r.rescan();
        assert_eq!(c.removed, [d.join("b.yaml")]);
        assert_eq!(c.loaded, ["beta"], "the refused c.yaml takes the freed name");
        assert_eq!(r.flow("beta").unwrap().file, d.join("c.yaml"));
    }

    #[test]
    fn a_folder_that_cannot_be_read_keeps_the_flows_in_force() {
        // Was: taken as a folder whose files were all removed, so every flow stopped being
        // scheduled (a deploy replacing the folder, an unmount), with one line per file.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("flows");
        std::fs::create_dir(&d).unwrap();
        write(&d.join("a.yaml"), &flow_yaml("alpha", dir.path()), 1);
        write(&d.join("b.yaml"), &flow_yaml("beta", dir.path()), 1);
        let mut r = Registry::new(&d);
        assert_eq!(r.rescan().loaded, ["alpha", "beta"]);
        std::fs::rename(&d, dir.path().join("away")).unwrap();
        assert!(r.rescan().is_empty(), "nothing removed");
        std::fs::write(&d, "a file where the folder was").unwrap();
        assert!(r.rescan().is_empty(), "nothing removed");
        assert_eq!(r.flows().len(), 2);
        assert!(r.flow("alpha").is_some() && r.flow("beta").is_some());
        // Back, with one file gone: now that is a removal.
        std::fs::remove_file(&d).unwrap();
        std::fs::rename(dir.path().join("away"), &d).unwrap();
        std::fs::remove_file(d.join("b.yaml")).unwrap();
        assert_eq!(r.rescan().removed, [d.join("b.yaml")]);
        assert!(r.flow("alpha").is_some() && r.flow("beta").is_none());
    }

    #[test]
    fn a_file_refused_for_a_name_clash_loads_once_the_other_flow_is_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // z.yaml is looked at after b.yaml, so it is refused.
        write(&d.join("b.yaml"), &flow_yaml("trig", d), 1);
        write(&d.join("z.yaml"), &flow_yaml("trig", d), 1);
        let mut r = Registry::new(d);
        assert_eq!(r.rescan().refused, [d.join("z.yaml")]);
        // Named by the name it gives (it was named `z`, after its file), refused in `wharf
        // validate`'s words.
        let z = r.slots().find(|s| s.file == d.join("z.yaml")).unwrap();
        assert_eq!(z.name(), "trig");
        assert_eq!(r.alone(z), z.problem.clone(), "shown alone, with its problem");
        assert_eq!(
            z.problem.as_deref(),
            Some(
                format!(
                    "flow name `trig` is already used by {}; flow names must be unique (they key the ledger)",
                    d.join("b.yaml").display()
                )
                .as_str()
            )
        );
        assert!(r.alone(r.slots().find(|s| s.file == d.join("b.yaml")).unwrap()).is_none());
        write(&d.join("b.yaml"), &flow_yaml("trig-renamed", d), 2);
        let (c, log) = crate::log_capture::Log::default().of(|| r.rescan());
        let renamed: Vec<&String> = log.iter().filter(|l| l.contains("Flow renamed.")).collect();
        assert_eq!(renamed.len(), 1, "{log:?}");
        assert!(renamed[0].contains("WARN") && renamed[0].contains("flow=trig-renamed previous=trig file="), "{}", renamed[0]);
        assert_eq!(c.loaded, ["trig-renamed", "trig"], "z.yaml takes the freed name");
        assert_eq!(r.flow("trig").unwrap().file, d.join("z.yaml"));
        assert!(r.slots().all(|s| s.problem.is_none()));
        assert!(r.rescan().is_empty(), "nothing changed");
    }

    /// A file that does not load giving a served flow's name (before or after its file in the
    /// folder) is shown alone, saying the name is the other file's: not refused for the clash
    /// (it does not load), so it was shown with that flow's next run, runs and health. Once
    /// the name is free, the name's history is its own again.
    #[test]
    fn a_file_that_does_not_load_under_a_served_flows_name_is_shown_alone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            &d.join("a.yaml"),
            "name: trig
source: 3
",
            1,
        );
        write(&d.join("b.yaml"), &flow_yaml("trig", d), 1);
        write(
            &d.join("c.yaml"),
            "name: trig
source: 3
",
            1,
        );
        let mut r = Registry::new(d);
        assert_eq!(r.rescan().loaded, ["trig"]);
        let also = config::name_also_used("trig", &d.join("b.yaml"));
        for file in ["a.yaml", "c.yaml"] {
            let slot = r.slots().find(|s| s.file == d.join(file)).unwrap();
            let alone = r.alone(slot).unwrap();
            assert!(alone.starts_with(slot.problem.as_deref().unwrap()) && alone.ends_with(&format!("; {also}")), "{alone}");
        }
        std::fs::remove_file(d.join("b.yaml")).unwrap();
        r.rescan();
        // The name's history is a.yaml's row's, the first by path; c.yaml says so.
        let alone = |file: &str| r.alone(r.slots().find(|s| s.file == d.join(file)).unwrap());
        assert_eq!(alone("a.yaml"), None);
        let c = alone("c.yaml").unwrap();
        assert!(c.ends_with(&format!("; {}", config::name_shown_beside("trig", &d.join("a.yaml")))), "{c}");
        std::fs::remove_file(d.join("a.yaml")).unwrap();
        r.rescan();
        assert!(r.slots().all(|s| r.alone(s).is_none()));
    }

    #[test]
    fn two_files_that_swap_their_names_in_one_edit_both_load() {
        // Was: each refused for the other's name, both running their old versions for ever
        // (nothing loaded, so neither was looked at again).
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("a.yaml"), &flow_yaml("east", d), 1);
        write(&d.join("b.yaml"), &flow_yaml("west", d), 1);
        let mut r = Registry::new(d);
        assert_eq!(r.rescan().loaded, ["east", "west"]);
        write(&d.join("a.yaml"), &flow_yaml("west", d), 2);
        write(&d.join("b.yaml"), &flow_yaml("east", d), 2);
        let c = r.rescan();
        assert_eq!(r.flow("west").map(|f| f.file.clone()), Some(d.join("a.yaml")), "{c:?}");
        assert_eq!(r.flow("east").map(|f| f.file.clone()), Some(d.join("b.yaml")), "{c:?}");
        assert!(r.slots().all(|s| s.problem.is_none()), "{:?}", r.slots().map(|s| &s.problem).collect::<Vec<_>>());
        assert_eq!(r.flows().len(), 2);
        assert!(r.rescan().is_empty(), "nothing changed");

        // A real clash still refuses the second file, which keeps its version in force.
        write(&d.join("b.yaml"), &flow_yaml("west", d), 3);
        assert_eq!(r.rescan().refused, [d.join("b.yaml")]);
        assert_eq!(r.flow("west").map(|f| f.file.clone()), Some(d.join("a.yaml")));
        assert_eq!(r.flow("east").map(|f| f.file.clone()), Some(d.join("b.yaml")), "the previous version keeps running");
    }

    #[test]
    fn a_refused_file_without_a_version_in_force_is_found_by_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("bad.yaml"), "name: bad\nsource: 3\n", 1);
        write(&d.join("good.yaml"), &flow_yaml("good", d), 1);
        let mut r = Registry::new(d);
        r.rescan();
        assert_eq!(r.refused("bad").map(|s| s.file.clone()), Some(d.join("bad.yaml")));
        assert!(r.refused("good").is_none() && r.refused("nope").is_none());
        // Broken after it loaded: the previous version runs, so it is not "refused" to a trigger.
        write(&d.join("good.yaml"), "name: good\nsource: 3\n", 2);
        assert_eq!(r.rescan().refused, [d.join("good.yaml")]);
        assert!(r.refused("good").is_none() && r.flow("good").is_some());
    }

    /// A brand-new flow file that does not load, with no version in force, goes by the
    /// `name:` it gives when its YAML got that far — listed, logged, triggered, its history
    /// looked up by it — as `wharf status` names it without a daemon; by its file name when
    /// the YAML did not get that far. Before, the daemon used the file name for both, and so
    /// showed the flow `orders-v2` with no history while `wharf status` showed `orders`.
    #[test]
    fn a_new_file_that_does_not_load_goes_by_the_name_it_gives() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("orders-v2.yaml"), "name: orders\nsource: 3\n", 1);
        write(&d.join("broken.yaml"), "name: [\n", 1);
        let log = Log::default();
        let mut r = Registry::new(d);
        let (changes, lines) = log.of(|| r.rescan());
        assert_eq!(changes.refused, [d.join("broken.yaml"), d.join("orders-v2.yaml")]);
        let names: Vec<(String, PathBuf)> = r.slots().map(|s| (s.name(), s.file.clone())).collect();
        assert_eq!(names, [("broken".to_string(), d.join("broken.yaml")), ("orders".to_string(), d.join("orders-v2.yaml"))]);
        assert_eq!(r.refused("orders").map(|s| s.file.clone()), Some(d.join("orders-v2.yaml")));
        assert!(r.refused("orders-v2").is_none());
        let refused: Vec<&String> = lines.iter().filter(|l| l.contains("Flow file refused")).collect();
        assert_eq!(refused.len(), 2, "{lines:#?}");
        assert!(refused.iter().any(|l| l.contains("flow=orders ") && l.contains("orders-v2.yaml")), "{refused:#?}");
        assert!(refused.iter().any(|l| l.contains("flow=broken ")), "{refused:#?}");
        // One rule with `wharf status`.
        for s in r.slots() {
            assert_eq!(s.name(), config::unloaded_name(&s.file));
        }
    }

    /// A flow whose records go through the script `m.rhai` and whose password is the secret
    /// file `secret.txt`, beside it.
    fn scripted_yaml(name: &str, root: &Path) -> String {
        format!(
            "{}quarantine: {{ endpoint: a, path: /bad }}\nsteps: [ {{ parse: {{ format: csv }} }}, {{ map: {{ script: m.rhai }} }} ]\n",
            flow_yaml(name, root).replace(
                "endpoints:\n",
                "endpoints:\n  partner: { type: ftp, host: 127.0.0.1, user: u, password: \"${file:secret.txt}\", tls: none }\n"
            )
        )
    }

    fn password_of(r: &Registry, name: &str) -> String {
        match &r.flow(name).unwrap().endpoints["partner"] {
            config::flow::EndpointSpec::Ftp(f) => f.password.expose().to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_flow_is_reloaded_when_a_file_it_is_built_from_changes() {
        // Was: only the flow file's mtime and length were watched, so a corrected script, a
        // rotated password file or a script that appeared later were never seen by a daemon.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("secret.txt"), "old", 1);
        write(&d.join("s.yaml"), &scripted_yaml("scripted", d), 1);
        let mut r = Registry::new(d);
        assert_eq!(r.rescan().refused, [d.join("s.yaml")], "its script is missing");

        write(&d.join("m.rhai"), "fn map(r) { r }", 1);
        assert_eq!(r.rescan().loaded, ["scripted"], "loaded once the script is there");
        assert!(r.rescan().is_empty(), "nothing changed");

        // Past the file system's coarse clock tick, so the change time moves.
        std::thread::sleep(std::time::Duration::from_millis(25));
        write(&d.join("m.rhai"), "fn map(x) { x }", 1);
        assert_eq!(r.rescan().loaded, ["scripted"], "a same-length edit with the old mtime (cp -p) is seen");

        assert_eq!(password_of(&r, "scripted"), "old");
        std::thread::sleep(std::time::Duration::from_millis(25));
        write(&d.join("secret.txt"), "new", 1);
        assert_eq!(r.rescan().loaded, ["scripted"], "a rotated secret file");
        assert_eq!(password_of(&r, "scripted"), "new");
        assert!(r.rescan().is_empty());

        std::fs::remove_file(d.join("m.rhai")).unwrap();
        assert_eq!(r.rescan().refused, [d.join("s.yaml")]);
        assert!(r.flow("scripted").is_some(), "the previous version stays in force");
    }

    use crate::log_capture::Log;

    #[test]
    fn every_problem_of_a_refused_file_is_logged_with_its_line_and_the_flow() {
        // Was one line, with the first problem only and no flow: "2 problem(s), first: …".
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("a.yaml"), &flow_yaml("alpha", d), 1);
        let mut r = Registry::new(d);
        r.rescan();
        let broken = flow_yaml("alpha", d)
            .replace("path: /in }", "path: /in, include: [\"[\"] }")
            .replace("endpoint: a, path: /out", "endpoint: b, path: /out");
        write(&d.join("a.yaml"), &broken, 2);
        let log = Log::default();
        let (changes, lines) = log.of(|| r.rescan());
        assert_eq!(changes.refused, [d.join("a.yaml")]);
        let problems: Vec<&String> = lines.iter().filter(|l| l.contains("Flow file problem.")).collect();
        assert_eq!(problems.len(), 2, "{lines:#?}");
        assert!(problems.iter().all(|l| l.contains("flow=alpha") && l.contains("a.yaml")), "{lines:#?}");
        assert!(problems[0].contains("line=4") && problems[0].contains("at=/source/include/0"), "{lines:#?}");
        assert!(problems[1].contains("line=5") && problems[1].contains("unknown endpoint `b`"), "{lines:#?}");
        let refused = lines.iter().find(|l| l.contains("Flow file refused; the previous version keeps running.")).unwrap();
        assert!(refused.contains("flow=alpha"), "{refused}");
        // A new file that never loaded is named after its file.
        write(&d.join("new-one.yaml"), "name: x\nendpoints: [oops\n", 3);
        let (_, lines) = log.of(|| r.rescan());
        assert!(lines.iter().any(|l| l.contains("Flow file refused; not scheduled.") && l.contains("flow=new-one")), "{lines:#?}");
    }

    #[test]
    fn a_removed_file_is_logged_with_its_flow() {
        // Was `file=` only: an operator looking for the flow's name in the log missed it.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("a.yaml"), &flow_yaml("alpha", d), 1);
        let mut r = Registry::new(d);
        r.rescan();
        std::fs::remove_file(d.join("a.yaml")).unwrap();
        let (changes, lines) = Log::default().of(|| r.rescan());
        assert_eq!(changes.removed, [d.join("a.yaml")]);
        let line = lines.iter().find(|l| l.contains("Flow file removed")).unwrap();
        assert!(line.contains("flow=alpha") && line.contains("a.yaml"), "{line}");
    }

    #[test]
    fn two_flows_that_may_take_each_others_responses_are_warned_of_once_per_load() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let round_trip = |name: &str, answer: &str| {
            format!(
                "{}response: {{ path: /acks, name: \"{answer}\", deadline: 1h, sinks: [ {{ endpoint: a, path: /taken }} ] }}\n",
                flow_yaml(name, d)
            )
        };
        write(&d.join("orders.yaml"), &round_trip("orders", "{{stem}}.ack"), 1);
        write(&d.join("invoices.yaml"), &round_trip("invoices", "{{name}}.ack"), 1);
        write(&d.join("other.yaml"), &round_trip("other", "{{stem}}.xml"), 1);
        let log = Log::default();
        let mut r = Registry::new(d);
        let logged = |r: &mut Registry| {
            let (_, lines) = log.of(|| r.rescan());
            lines.into_iter().filter(|l| l.contains("take each other's responses")).collect::<Vec<_>>()
        };
        let warned = logged(&mut r);
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].contains("flow=") && warned[0].contains("other=") && warned[0].contains("at=/response/name"), "{warned:?}");
        assert!(warned[0].contains("orders") && warned[0].contains("invoices") && !warned[0].contains("flow=other"), "{warned:?}");
        assert_eq!(logged(&mut r), Vec::<String>::new(), "not loaded again, not logged again");
        // The other one told apart: no more warning when it reloads.
        write(&d.join("invoices.yaml"), &round_trip("invoices", "INV-{{name}}.ack"), 2);
        write(&d.join("orders.yaml"), &round_trip("orders", "ORD-{{stem}}.ack"), 2);
        assert_eq!(logged(&mut r), Vec::<String>::new());
    }

    #[test]
    fn a_flow_with_a_warning_loads_and_its_warning_is_logged_once_per_load() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let yaml = format!(
            "{}quarantine: {{ endpoint: a, path: /bad }}\nsteps: [ {{ parse: {{ format: json, header: true }} }} ]\n",
            flow_yaml("warned", d)
        );
        write(&d.join("w.yaml"), &yaml, 1);
        let log = Log::default();
        let mut r = Registry::new(d);
        let logged = |r: &mut Registry| {
            let (changes, lines) = log.of(|| r.rescan());
            (changes.loaded, lines.into_iter().filter(|l| l.contains("Flow file warning")).collect::<Vec<_>>())
        };
        let (loaded, warnings) = logged(&mut r);
        assert_eq!(loaded, ["warned"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("flow=warned") && warnings[0].contains("at=/steps/0/parse/header"), "{warnings:?}");
        assert_eq!(logged(&mut r), (vec![], vec![]), "not loaded again, not logged again");
        write(&d.join("w.yaml"), &format!("{yaml}# changed\n"), 2);
        assert_eq!(logged(&mut r).1.len(), 1, "logged again with the new version");
    }
}
