//! IANA time zones as written in flow files (`Europe/Berlin`, `UTC`), and local wall-clock
//! times turned into instants, with one rule for times a DST change skips or repeats.
//!
//! Owns the zone-name parser (with "did you mean" suggestions) and [`resolve_local`]. It does
//! not know about cron or deadlines.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Timelike as _, Utc};
use chrono_tz::{TZ_VARIANTS, Tz};

/// Parses an IANA zone name, exactly as spelled in the tz database (`Europe/Berlin`, `UTC`).
/// The error is a sentence fit for a diagnostic and suggests close names.
pub fn parse_timezone(text: &str) -> Result<Tz, String> {
    if let Ok(tz) = text.parse::<Tz>() {
        return Ok(tz);
    }
    let close = suggestions(text);
    let hint = crate::suggest::did_you_mean(&close);
    Err(format!("unknown time zone `{text}`: give an IANA name such as `Europe/Berlin` or `UTC`{hint}"))
}

/// Up to three zone names close to `text`: the same name in other letter case, the same city
/// (`berlin` → `Europe/Berlin`), or at most two typing mistakes away.
fn suggestions(text: &str) -> Vec<&'static str> {
    let wanted = text.to_ascii_lowercase();
    let city = wanted.rsplit('/').next().unwrap_or_default().to_string();
    let same_city = |lower: &str| !city.is_empty() && lower.rsplit('/').next() == Some(city.as_str());
    crate::suggest::close(text, TZ_VARIANTS.iter().map(|tz| tz.name()), same_city)
}

/// The instant of local wall-clock time `local` in `tz`.
///
/// A time that occurs twice (the hour repeated when clocks go back) is its *earlier*
/// occurrence; a time that does not occur (skipped when clocks go forward) is the first
/// instant after the gap: `02:30` on the last Sunday of March in `Europe/Berlin` is `03:00`
/// CEST. These are the rules croner applies to a fixed-time cron job, so deadlines and cron
/// schedules agree.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    if let LocalResult::Single(t) | LocalResult::Ambiguous(t, _) = tz.from_local_datetime(&local) {
        return t.with_timezone(&Utc);
    }
    // In a gap. Gaps are at most a few hours (a day in a handful of historic zone changes) and
    // end on a whole minute: try each following minute, a little over a day ahead.
    let mut probe = local.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(local);
    for _ in 0..(26 * 60) {
        probe += TimeDelta::minutes(1);
        if let LocalResult::Single(t) | LocalResult::Ambiguous(t, _) = tz.from_local_datetime(&probe) {
            return t.with_timezone(&Utc);
        }
    }
    // Unreachable for real zones; read the wall time as UTC rather than fail.
    Utc.from_utc_datetime(&local)
}

/// The machine's local zone as an IANA name: `TZ` when it holds one (`Europe/Berlin`,
/// `:Europe/Berlin`), else the zone `/etc/localtime` links to; `None` when neither says (a
/// POSIX rule such as `CET-1CEST` in `TZ`, a copied `/etc/localtime`).
pub fn local_zone() -> Option<Tz> {
    match std::env::var("TZ") {
        Ok(tz) if !tz.is_empty() => zone_named(&tz),
        _ => std::fs::read_link("/etc/localtime").ok().and_then(|target| zone_named(&target.to_string_lossy())),
    }
}

/// The zone of a `TZ` value or a zoneinfo path (`/usr/share/zoneinfo/Europe/Berlin`).
fn zone_named(text: &str) -> Option<Tz> {
    let text = text.strip_prefix(':').unwrap_or(text);
    let name = text.rsplit_once("zoneinfo/").map_or(text, |(_, name)| name);
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, min, 0).unwrap()
    }

    #[test]
    fn parses_iana_names_and_suggests_close_ones() {
        assert_eq!(parse_timezone("Europe/Berlin"), Ok(Tz::Europe__Berlin));
        assert_eq!(parse_timezone("UTC"), Ok(Tz::UTC));
        let e = parse_timezone("Europe/Berln").unwrap_err();
        assert_eq!(
            e,
            "unknown time zone `Europe/Berln`: give an IANA name such as `Europe/Berlin` or `UTC` (did you mean `Europe/Berlin`?)"
        );
        assert!(parse_timezone("europe/berlin").unwrap_err().contains("did you mean `Europe/Berlin`"));
        assert!(parse_timezone("Berlin").unwrap_err().contains("`Europe/Berlin`"));
        assert!(parse_timezone("CEST").unwrap_err().starts_with("unknown time zone `CEST`"));
        assert!(!parse_timezone("Nowhere/Qqqqqqqqq").unwrap_err().contains("did you mean"));
    }

    #[test]
    fn the_local_zone_is_read_from_tz_or_a_zoneinfo_link() {
        assert_eq!(zone_named("Europe/Berlin"), Some(Tz::Europe__Berlin));
        assert_eq!(zone_named(":Europe/Berlin"), Some(Tz::Europe__Berlin));
        assert_eq!(zone_named("/usr/share/zoneinfo/America/New_York"), Some(Tz::America__New_York));
        assert_eq!(zone_named("../usr/share/zoneinfo/Etc/UTC"), Some(Tz::Etc__UTC));
        assert_eq!(zone_named("CET-1CEST"), None);
    }

    #[test]
    fn local_times_in_dst_gaps_and_folds() {
        let berlin = Tz::Europe__Berlin;
        // Winter: UTC+1; summer: UTC+2.
        assert_eq!(resolve_local(berlin, local(2026, 1, 5, 6, 0)).to_rfc3339(), "2026-01-05T05:00:00+00:00");
        assert_eq!(resolve_local(berlin, local(2026, 7, 6, 6, 0)).to_rfc3339(), "2026-07-06T04:00:00+00:00");
        // 2026-03-29: 02:00 → 03:00. 02:30 does not exist: the first instant after the gap.
        assert_eq!(resolve_local(berlin, local(2026, 3, 29, 2, 30)).to_rfc3339(), "2026-03-29T01:00:00+00:00");
        // 2026-10-25: 03:00 → 02:00. 02:30 happens twice: the earlier (CEST) one.
        assert_eq!(resolve_local(berlin, local(2026, 10, 25, 2, 30)).to_rfc3339(), "2026-10-25T00:30:00+00:00");
    }
}
