//! Why SFTP did not start on a login that succeeded. russh-sftp only says "sender dropped"
//! (or a length it could not use) when the server's SFTP channel closed at once or began
//! with something other than SFTP. After such a failure, and only then, a channel of one
//! more login (the failed login may have gone with its channel) asks for the `sftp`
//! subsystem and listens without saying anything: an SFTP server waits for the client's
//! first word, so whatever comes first was not SFTP.
//!
//! - Text first: something the server runs for the login writes to its output (a login
//!   script such as `~/.bashrc`, a `ForceCommand` other than `internal-sftp`): quoted.
//! - The channel closed with nothing said: the server runs no SFTP server for this login
//!   (`Subsystem sftp` missing or naming another program such as `/bin/false`).
//!
//! Only asks and words the cause; the kind stays the caller's (`Protocol`: the partner
//! changes the server, no retry mends it).

use std::time::Duration;

use russh::ChannelMsg;
use russh::client::Handle;

use super::connect::ClientHandler;
use crate::text::{Keep, SERVER_TEXT, one_line};

/// How long the second channel is listened to: text or a close comes at once.
const LISTEN: Duration = Duration::from_secs(2);

/// Bytes of the server's text kept for the message.
const KEPT: usize = 200;

/// What the second channel showed before the client said anything.
#[derive(Debug, Default, PartialEq, Eq)]
struct Heard {
    out: Vec<u8>,
    err: Vec<u8>,
    exit: Option<u32>,
    closed: bool,
}

/// Why the SFTP start on the login `handle` failed, in words, or `None` when the second
/// look shows nothing wrong (an SFTP server waiting, as it should).
pub(super) async fn why_not(handle: &Handle<ClientHandler>) -> Option<String> {
    let mut ch = handle.channel_open_session().await.ok()?;
    ch.request_subsystem(true, "sftp").await.ok()?;
    let mut heard = Heard::default();
    let _ = tokio::time::timeout(LISTEN, async {
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => keep(&mut heard.out, &data),
                ChannelMsg::ExtendedData { data, .. } => keep(&mut heard.err, &data),
                ChannelMsg::ExitStatus { exit_status } => heard.exit = Some(exit_status),
                // The exit status comes between the two.
                ChannelMsg::Eof => heard.closed = true,
                ChannelMsg::Close => {
                    heard.closed = true;
                    break;
                }
                _ => {}
            }
            // The first line of text is enough to quote.
            if (heard.out.contains(&b'\n') && !blank(&heard.out)) || heard.out.len() >= KEPT {
                break;
            }
        }
    })
    .await;
    let _ = ch.close().await;
    cause(&heard)
}

fn keep(into: &mut Vec<u8>, data: &[u8]) {
    let take = data.len().min(KEPT.saturating_sub(into.len()));
    into.extend_from_slice(&data[..take]);
}

fn blank(text: &[u8]) -> bool {
    text.iter().all(u8::is_ascii_whitespace)
}

fn cause(h: &Heard) -> Option<String> {
    let quote = |b: &[u8]| one_line(&String::from_utf8_lossy(b), SERVER_TEXT, Keep::Start);
    let stderr = if blank(&h.err) { String::new() } else { format!(", saying `{}` on its error output", quote(&h.err)) };
    if !h.out.is_empty() {
        // An SFTP server says nothing before the client: any byte, a blank line too, is not SFTP.
        let text = if blank(&h.out) { "a blank line".to_string() } else { format!("`{}`", quote(&h.out)) };
        return Some(format!(
            "the server's SFTP channel began with text, not SFTP: {text}{stderr}; something the server runs for this login writes \
             to its output (a login script such as ~/.bashrc, or a `ForceCommand` other than `internal-sftp`), which breaks SFTP: \
             ask the partner to make it print nothing for logins without a terminal"
        ));
    }
    if h.closed {
        let exit = h.exit.map(|c| format!(" (exit status {c})")).unwrap_or_default();
        return Some(format!(
            "the server ended its SFTP service at once{exit}{stderr}: it runs no SFTP server for this login (its sshd's \
             `Subsystem sftp` is missing or names another program, or a `ForceCommand` runs something else); ask the partner to \
             enable SFTP for this login"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_before_sftp_is_quoted_on_one_line() {
        let h = Heard { out: b"Last login: yesterday\r\nWelcome\n".to_vec(), ..Heard::default() };
        let said = cause(&h).unwrap();
        assert!(said.starts_with("the server's SFTP channel began with text, not SFTP: `Last login: yesterday ⏎ Welcome`;"), "{said}");
        assert!(said.contains("~/.bashrc"), "{said}");
    }

    #[test]
    fn a_channel_closed_at_once_is_no_sftp_service() {
        let h = Heard { exit: Some(1), closed: true, ..Heard::default() };
        let said = cause(&h).unwrap();
        assert!(said.starts_with("the server ended its SFTP service at once (exit status 1): it runs no SFTP server"), "{said}");
        let h = Heard { err: b"This service allows sftp connections only.\n".to_vec(), closed: true, ..Heard::default() };
        assert!(cause(&h).unwrap().contains(", saying `This service allows sftp connections only.` on its error output"));
    }

    #[test]
    fn a_blank_line_before_sftp_is_named() {
        let said = cause(&Heard { out: b"\n".to_vec(), ..Heard::default() }).unwrap();
        assert!(said.starts_with("the server's SFTP channel began with text, not SFTP: a blank line;"), "{said}");
    }

    #[test]
    fn a_server_waiting_for_the_client_is_not_blamed() {
        assert_eq!(cause(&Heard::default()), None);
    }
}
