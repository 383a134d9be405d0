//! What a server says about itself, in protocol-neutral terms: the answer of
//! [`Endpoint::facts`](super::Endpoint::facts), which `wharf probe` shows and stores.
//!
//! Each backend fills it from its own protocol (the SFTP version packet and extensions, the
//! FTP welcome, `SYST` and `FEAT`, the local file system) — asking, never writing. The
//! [`Traits`] are the few properties the probe's rules reason about; the [`Feature`] list is
//! everything the server offered, for people. No policy lives here: what a missing feature
//! means for a flow is decided once, in `crate::probe`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A server's own account of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerFacts {
    /// `SFTP v3`, `FTPS (explicit)`, `FTP (no TLS)`, `local`.
    pub protocol: String,
    /// What the server calls itself: the SSH version string, the FTP welcome line and `SYST`.
    pub software: Option<String>,
    /// Every feature the server listed (and the relevant ones it did not), in its order.
    pub features: Vec<Feature>,
    /// The properties the probe's rules read.
    pub traits: Traits,
    /// What failed while asking (say, a listing over the data connection), as sentences.
    pub problems: Vec<String>,
}

/// One feature: its name as the protocol spells it, its value, and what it means for wharf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    /// The version or parameters the server gave; `None` for a feature it does not offer.
    pub value: Option<String>,
    pub meaning: String,
}

impl Feature {
    /// An offered feature.
    pub fn offered(name: impl Into<String>, value: impl Into<String>, meaning: impl Into<String>) -> Feature {
        Feature { name: name.into(), value: Some(value.into()), meaning: meaning.into() }
    }

    /// A feature that matters to wharf and that the server does not offer.
    pub fn missing(name: impl Into<String>, meaning: impl Into<String>) -> Feature {
        Feature { name: name.into(), value: None, meaning: meaning.into() }
    }
}

/// A yes/no property and the server fact it follows from ("posix-rename@openssh.com offered").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Support {
    pub yes: bool,
    pub why: String,
}

impl Support {
    pub fn yes(why: impl Into<String>) -> Support {
        Support { yes: true, why: why.into() }
    }

    pub fn no(why: impl Into<String>) -> Support {
        Support { yes: false, why: why.into() }
    }
}

/// What the probe's rules reason about, whatever the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traits {
    /// A rename can replace an existing file in one atomic step.
    pub atomic_replace: Support,
    /// A written file can be forced to stable storage on the server.
    pub durable_writes: Support,
    /// The server computes a file's SHA-256 itself (uploads are verified by content).
    pub server_sha256: Support,
    /// Credentials and file contents are encrypted on the wire.
    pub encrypted: Support,
    /// Granularity of the modification times a listing carries…
    #[serde(with = "millis")]
    pub mtime_precision: Duration,
    /// …and where they come from ("MLSD: UTC, seconds").
    pub mtime_source: String,
    /// How many connections the server accepted at once, of the `max_connections` asked
    /// for (`None`: not asked; a local folder, or a probe stored before this was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Sessions>,
}

/// Connections asked for side by side, and how many the server accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    pub asked: usize,
    pub accepted: usize,
}

/// `Duration`s as (fractional) milliseconds in JSON: `1000`, `0.001`.
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Duration::try_from_secs_f64(ms / 1000.0).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_as_milliseconds() {
        let t = Traits {
            atomic_replace: Support::yes("x"),
            durable_writes: Support::no("y"),
            server_sha256: Support::no("z"),
            encrypted: Support::yes("w"),
            mtime_precision: Duration::from_micros(1),
            mtime_source: "stat".into(),
            sessions: None,
        };
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["mtime_precision"], 0.001);
        let back: Traits = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
    }
}
