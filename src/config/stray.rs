//! Files that land among the flows but are not flows: the settings of `wharf serve`
//! (`serve.yaml`, docs/operations.md). Refused as a flow, such a file read as a list of
//! "missing field `name`" and "unknown field `listen`"; this says what it is and where it
//! belongs.
//!
//! Only recognises; the loader asks about a file that did not load as a flow.

use std::path::Path;

use super::diagnostic::Problem;

/// The top-level fields of `serve.yaml` (`serve::config::RawServeConfig`; a test there keeps
/// the two in step).
pub const SERVE_CONFIG_FIELDS: [&str; 7] = ["listen", "allow_remote", "limits", "retry", "shutdown_grace", "rescan", "notify"];

/// Whether `file` is named as the daemon's settings are: `serve.yaml` (`serve.yml`…).
/// `wharf validate` checks such a file named on its command line as those settings.
pub fn is_serve_config_name(file: &Path) -> bool {
    file.file_stem().is_some_and(|s| s == "serve")
}

/// For a file that did not load as a flow, with top-level fields `fields`: the problem saying
/// it is the daemon's settings, when it is named `serve.yaml` (`.yml`), or when every field of
/// it is one of `serve.yaml`'s and one at least is not a flow's (`is_flow_field`).
pub fn serve_config(file: &Path, fields: &[String], is_flow_field: impl Fn(&str) -> bool) -> Option<Problem> {
    let named = is_serve_config_name(file);
    let shaped = fields.iter().all(|f| SERVE_CONFIG_FIELDS.contains(&f.as_str())) && fields.iter().any(|f| !is_flow_field(f));
    (named || shaped).then(|| Problem {
        yaml_path: "/".into(),
        message: "this looks like the settings of `wharf serve` (serve.yaml), not a flow: keep it outside the flows folder and \
                  give it with `wharf serve --config FILE` (see docs/operations.md)"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(f: &[&str]) -> Vec<String> {
        f.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_daemon_settings_are_told_by_name_or_by_their_fields() {
        let flow_field = |f: &str| ["name", "endpoints", "source", "sinks", "retry", "notify"].contains(&f);
        let serve = Path::new("flows/serve.yaml");
        assert!(serve_config(serve, &fields(&["name", "bogus"]), flow_field).is_some(), "by its name");
        let other = Path::new("flows/daemon.yml");
        assert!(serve_config(other, &fields(&["listen", "limits"]), flow_field).is_some(), "by its fields");
        // A broken flow is not taken for one: a flow's field, a field of neither, nothing at all.
        assert!(serve_config(other, &fields(&["retry", "notify"]), flow_field).is_none());
        assert!(serve_config(other, &fields(&["listen", "name"]), flow_field).is_none());
        assert!(serve_config(other, &fields(&[]), flow_field).is_none());
        assert!(is_serve_config_name(Path::new("/etc/wharf/serve.yml")) && !is_serve_config_name(Path::new("flows/served.yaml")));
    }
}
