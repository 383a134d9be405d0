//! How the CLI finds a running `wharf serve`: the discovery file `<state_dir>/serve.json`.
//!
//! The server writes it (atomically) once its sockets are bound and removes it on a clean
//! shutdown. A daemon that was killed leaves it behind, so the file alone proves nothing:
//! [`find`] also connects to the socket it names. This module reads and writes the file and
//! probes; it does not talk HTTP (that is [`super::client`]).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ControlError;
use super::client::Client;

/// File name of the discovery file in the state folder.
pub const INFO_NAME: &str = "serve.json";

/// What a running daemon says about itself in `serve.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeInfo {
    pub pid: u32,
    /// The control socket (the CLI's way in).
    pub socket: PathBuf,
    /// The TCP address of the HTTP listener, if any.
    pub http: Option<SocketAddr>,
    #[serde(with = "crate::timestamp::utc")]
    pub started_at: DateTime<Utc>,
    /// wharf's version.
    pub version: String,
}

impl ServeInfo {
    /// Where the discovery file of `state_dir` is.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join(INFO_NAME)
    }

    /// Reads a discovery file; `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<ServeInfo>, ControlError> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ControlError::Discovery { path: path.to_path_buf(), source }),
        };
        serde_json::from_slice(&text).map(Some).map_err(|source| ControlError::DiscoveryInvalid { path: path.to_path_buf(), source })
    }

    /// Writes the file at `path` atomically (a temporary file renamed over it), readable by
    /// the owner only like the socket.
    pub fn write(&self, path: &Path) -> Result<(), ControlError> {
        let err = |source| ControlError::Discovery { path: path.to_path_buf(), source };
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        std::fs::write(&tmp, text).map_err(err)?;
        set_owner_only(&tmp).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Removes the file at `path` if it is still this process's (a newer daemon may have
    /// replaced it).
    pub fn remove_if_ours(path: &Path) {
        if let Ok(Some(info)) = ServeInfo::read(path)
            && info.pid == std::process::id()
        {
            let _ = std::fs::remove_file(path);
        }
    }

    /// `pid N, control at SOCKET` (and the HTTP address), for messages.
    pub fn describe(&self) -> String {
        let http = self.http.map(|a| format!(", http://{a}")).unwrap_or_default();
        format!("pid {}, control at {}{http}", self.pid, self.socket.display())
    }
}

/// Is a daemon serving this state folder?
#[derive(Debug)]
pub enum Found {
    /// Its discovery file names a socket that accepts connections.
    Running { info: ServeInfo, client: Client },
    /// None answers; `stale` is the discovery file a daemon that did not shut down cleanly
    /// left behind.
    NotRunning { stale: Option<ServeInfo> },
}

/// Looks for the daemon of `state_dir`: reads `serve.json` and connects to its socket.
/// Errors only when the file cannot be read or the socket refuses us for another reason than
/// nobody listening (e.g. it belongs to another user).
pub async fn find(state_dir: &Path) -> Result<Found, ControlError> {
    let info = match ServeInfo::read(&ServeInfo::path_in(state_dir)) {
        Ok(Some(info)) => info,
        Ok(None) => return Ok(Found::NotRunning { stale: None }),
        // A daemon writes the file whole (and replaces it at start): one that cannot be read
        // is not a running daemon's.
        Err(e @ ControlError::DiscoveryInvalid { .. }) => {
            tracing::warn!(error = %e, "Ignoring a discovery file that is not what `wharf serve` writes.");
            return Ok(Found::NotRunning { stale: None });
        }
        Err(e) => return Err(e),
    };
    let client = Client::unix(&info.socket);
    match client.probe().await {
        Ok(()) => Ok(Found::Running { info, client }),
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) => Ok(Found::NotRunning { stale: Some(info) }),
        Err(source) => Err(ControlError::Socket { path: info.socket.clone(), source }),
    }
}

/// Restricts a file to its owner (mode 0600).
pub(super) fn set_owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(dir: &Path) -> ServeInfo {
        ServeInfo {
            pid: std::process::id(),
            socket: dir.join("wharf.sock"),
            http: Some("127.0.0.1:9464".parse().unwrap()),
            started_at: DateTime::from_timestamp(1_764_064_800, 0).unwrap(),
            version: "0.1.0".into(),
        }
    }

    #[test]
    fn the_discovery_file_round_trips_owner_only_and_is_removed_only_by_its_writer() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = ServeInfo::path_in(dir.path());
        assert_eq!(ServeInfo::read(&path).unwrap(), None);
        let i = info(dir.path());
        i.write(&path).unwrap();
        assert_eq!(ServeInfo::read(&path).unwrap(), Some(i.clone()));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(i.describe(), format!("pid {}, control at {}, http://127.0.0.1:9464", i.pid, i.socket.display()));
        let other = ServeInfo { pid: i.pid + 1, ..i };
        other.write(&path).unwrap();
        ServeInfo::remove_if_ours(&path);
        assert!(path.exists(), "another daemon's file stays");
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(ServeInfo::read(&path), Err(ControlError::DiscoveryInvalid { .. })));
        // No daemon writes such a file: `wharf status` says none runs rather than failing.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert!(matches!(rt.block_on(find(dir.path())), Ok(Found::NotRunning { stale: None })));
    }

    #[tokio::test]
    async fn a_file_left_by_a_dead_daemon_is_not_a_running_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(find(dir.path()).await.unwrap(), Found::NotRunning { stale: None }));
        let i = info(dir.path());
        i.write(&ServeInfo::path_in(dir.path())).unwrap();
        // No socket at all, then a socket file nobody listens on.
        assert!(matches!(find(dir.path()).await.unwrap(), Found::NotRunning { stale: Some(_) }));
        drop(std::os::unix::net::UnixListener::bind(&i.socket).unwrap());
        assert!(i.socket.exists());
        match find(dir.path()).await.unwrap() {
            Found::NotRunning { stale } => assert_eq!(stale, Some(i)),
            other => panic!("{other:?}"),
        }
    }
}
