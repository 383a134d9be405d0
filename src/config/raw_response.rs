//! The `response:` part of a flow file as written: a round trip, where every delivered file
//! (the request) is answered by a file the partner puts on a server (the response). Serde +
//! schemars types that mirror the YAML one to one, like `raw.rs` (kept in a file of its own
//! because it is a concept of its own and `raw.rs` is already long).
//!
//! Shape only: endpoint references, the name template, paths and durations are checked by
//! `validate/response.rs`; the engine side lives in `engine/awaits.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::raw::{RawDisposition, RawSink};
use super::raw_steps::{OnInvalid, RawMaxInvalid, RawQuarantine, RawStep};

/// Awaiting the partner's response to every delivered file (a round trip). After a file is
/// delivered to every sink, wharf expects a response file, named after the delivered file, in
/// a folder on the partner's server within a deadline. At the end of every run the folder is
/// listed once; a response that is there is taken through its own steps and sinks like any
/// file, and the correlation is recorded (`wharf awaits`). A response still missing at the
/// deadline is recorded as an `overdue` event, one arriving later is matched and reported
/// `late` (`wharf events`). See docs/round-trips.md.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawResponse {
    /// Name of the endpoint in `endpoints` where responses appear. Default: the first sink's
    /// endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Folder polled for responses, relative to the endpoint root (`..` is refused). Must not
    /// be the flow's source folder. A folder, not a pattern (`/acks/*.ack` is refused): which
    /// file answers which request is `name`'s.
    pub path: String,
    /// Name template of the response, over the name the request was delivered under (on the
    /// first sink on the response endpoint, else the first sink): `name`, `stem`, `ext`, `size`
    /// (of the request as picked up), `run` (the delivering run), and the `date` helper (the
    /// delivery time, UTC). E.g. `{{stem}}.ack`: `orders_1.csv` is answered by `orders_1.ack`.
    /// Must give a plain file name. Responses are matched by this name alone: a request whose
    /// response name another open request awaits (`orders_1.xml` beside `orders_1.csv`) is
    /// not sent until that await is answered or expires (the run reports it not ready, and why).
    pub name: String,
    /// Match the response's name whatever its case (Unicode, not only ASCII): `X.ACK` answers
    /// the request awaiting `x.ack`. The name `name` gives when that file is there, else the
    /// one file in the folder named like it ignoring case (recorded under its own name from
    /// then on: `wharf awaits`); two or more named like it (`x.ack` and `X.ACK`), none answers,
    /// and the run's report says so. Requests whose responses would be named alike but for
    /// case are sent one at a time, as requests awaiting one name are. Default `false`: the
    /// case must match, and a response there only in another case answers nothing (the run's
    /// report and `wharf plan` name it, and this option).
    #[serde(default)]
    pub ignore_case: bool,
    /// How long after the delivery the response is due (a duration: `30m`). A response still
    /// missing when a run looks after this is recorded once as an `overdue` event; one that
    /// arrives later is still taken and reported `late`.
    #[schemars(schema_with = "super::duration::schema")]
    pub deadline: String,
    /// Stop waiting this long after the delivery (a duration: `7d`, longer than `deadline`):
    /// the await is recorded as `expired` (with an event) and its folder no longer checked for
    /// it. Default: wait for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::duration::schema")]
    pub expire_after: Option<String>,
    /// Content steps for responses, like a flow's `steps`. Without steps responses are
    /// delivered byte for byte.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<RawStep>,
    /// Where responses the steps refuse are put aside, with reports. Required with `steps`. A
    /// refused response is left where the partner put it and its await recorded as `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<RawQuarantine>,
    /// What an invalid record does to its response, like a flow's `on_invalid`.
    #[serde(default)]
    pub on_invalid: OnInvalid,
    /// With `on_invalid: skip`: the most invalid records a response may have, like a flow's
    /// `max_invalid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_invalid: Option<RawMaxInvalid>,
    /// Where matched responses are delivered (at least one), like a flow's `sinks`.
    #[schemars(length(min = 1))]
    pub sinks: Vec<RawSink>,
    /// What happens to a response on the partner's server once every response sink confirmed:
    /// `keep` (default: wharf never removes a partner's file unless told to; the ledger keeps
    /// it from being taken twice), `delete`, or `{move_to: FOLDER}` (not the response folder).
    #[serde(default = "default_keep")]
    pub after: RawDisposition,
}

fn default_keep() -> RawDisposition {
    RawDisposition::Keep
}
