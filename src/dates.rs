//! Dates as articles write them, and how they become instants.
//!
//! Parsing is a fixed list of formats (RFC 3339, RFC 2822, ISO-like dates with `-`, `/` or
//! `.`, Chinese `年月日`, English month names), never a guess: the same text always gives the
//! same instant, so ids, ETags and outputs stay stable. Nothing here reads a clock; callers
//! pass `first_seen` and `now`.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A date as written in an article, before a time zone is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawDate {
    /// A full instant with an explicit offset.
    Instant(DateTime<FixedOffset>),
    /// A wall-clock date and time with no zone: read in the configured time zone.
    Local(NaiveDateTime),
    /// A day with no time.
    Day(NaiveDate),
}

const DATETIME_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
];

const DATETIME_ZONE_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%.f %:z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f %z",
    "%Y-%m-%d %H:%M%:z",
    "%Y-%m-%d %H:%M %z",
];

const DAY_FORMATS: &[&str] = &[
    "%Y-%m-%d",
    "%b %d, %Y",
    "%B %d, %Y",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d %Y",
    "%B %d %Y",
];

/// Parses a date the way articles write it. Trailing words after the date ("2015-12-24
/// Source: Xinhua") are ignored; `None` when no known format matches.
pub fn parse_date(text: &str) -> Option<RawDate> {
    let text = crate::text::collapse_whitespace(text);
    if text.is_empty() {
        return None;
    }
    // Try the whole text, then drop trailing words one at a time.
    let words: Vec<&str> = text.split(' ').collect();
    for keep in (1..=words.len()).rev().take(5) {
        if let Some(d) = parse_exact(&words[..keep].join(" ")) {
            return Some(d);
        }
    }
    None
}

fn parse_exact(s: &str) -> Option<RawDate> {
    // The common case (`Date:2015-12-24`) without trying a dozen formats first; other
    // formats cannot read these ten characters differently.
    if let Some(d) = iso_day(s) {
        return Some(RawDate::Day(d));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(RawDate::Instant(d));
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Some(RawDate::Instant(d));
    }
    let s = normalize(s);
    let (s, utc) = strip_utc_suffix(&s);
    for f in DATETIME_ZONE_FORMATS {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Some(RawDate::Instant(d));
        }
    }
    for f in DATETIME_FORMATS {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(if utc {
                RawDate::Instant(d.and_utc().fixed_offset())
            } else {
                RawDate::Local(d)
            });
        }
    }
    if utc {
        return None;
    }
    for f in DAY_FORMATS {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return Some(RawDate::Day(d));
        }
    }
    None
}

/// Exactly `YYYY-MM-DD`.
fn iso_day(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)
}

/// Rewrites `2015年12月24日 10时30分`, `2015/12/24` and `2015.12.24` to `2015-12-24 10:30`.
fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_date = true;
    for c in s.chars() {
        match c {
            '年' | '月' => out.push('-'),
            '日' | '号' => {
                out.push(' ');
                in_date = false;
            }
            '时' | '點' | '点' | '時' => out.push(':'),
            '分' | '秒' => {}
            '/' | '.' if in_date => out.push('-'),
            ' ' | 'T' => {
                in_date = false;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    let out = crate::text::collapse_whitespace(&out);
    out.trim_end_matches(':').to_string()
}

fn strip_utc_suffix(s: &str) -> (&str, bool) {
    for suffix in [" UTC", " GMT", " UT", "Z"] {
        if let Some(rest) = s.strip_suffix(suffix) {
            if rest.contains(':') {
                return (rest, true);
            }
        }
    }
    (s, false)
}

/// Turns a raw date into an instant in `tz`.
///
/// A date-only value whose `first_seen` falls on that day (in `tz`) takes `first_seen`'s time
/// of day, so an article dated today sorts by when it appeared; any other day starts at
/// midnight. Local times in a DST gap move forward an hour; in a fold the earlier is taken.
pub fn resolve(raw: RawDate, tz: Tz, first_seen: DateTime<Utc>) -> DateTime<FixedOffset> {
    match raw {
        RawDate::Instant(d) => d,
        RawDate::Local(naive) => local_to_fixed(tz, naive),
        RawDate::Day(day) => {
            let seen = first_seen.with_timezone(&tz);
            if seen.date_naive() == day {
                seen.fixed_offset()
            } else {
                local_to_fixed(tz, day.and_time(NaiveTime::MIN))
            }
        }
    }
}

fn local_to_fixed(tz: Tz, naive: NaiveDateTime) -> DateTime<FixedOffset> {
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|d| d.fixed_offset())
        // A zone where neither exists does not exist in the tz database; fall back to UTC.
        .unwrap_or_else(|| naive.and_utc().fixed_offset())
}

/// Feed validators call dates before 1990 or more than a day ahead "implausible"; readers pin
/// future-dated entries on top.
pub fn is_plausible(date: DateTime<FixedOffset>, now: DateTime<Utc>) -> bool {
    date.year() >= 1990 && date.with_timezone(&Utc) <= now + chrono::Duration::days(1)
}

/// Drops sub-second precision: HTTP dates have one-second resolution, and so do stored times.
pub fn truncate_secs(d: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(d.timestamp(), 0).single().unwrap_or(d)
}

/// RFC 2822 with a numeric zone (`+0000`, never `UTC`) and English names, as RSS needs.
pub fn rfc2822(d: DateTime<FixedOffset>) -> String {
    d.to_rfc2822()
}

/// RFC 3339 with seconds and an explicit offset (`Z` for UTC), as Atom and JSON Feed need.
pub fn rfc3339(d: DateTime<FixedOffset>) -> String {
    d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> RawDate {
        RawDate::Day(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    fn local(s: &str) -> RawDate {
        RawDate::Local(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap())
    }

    #[track_caller]
    fn check(input: &str, expected: Option<RawDate>) {
        assert_eq!(parse_date(input), expected, "input: {input:?}");
    }

    #[test]
    fn day_formats() {
        check("2015-12-24", Some(day(2015, 12, 24)));
        check("2015/12/24", Some(day(2015, 12, 24)));
        check("2015.12.24", Some(day(2015, 12, 24)));
        check("2015年12月24日", Some(day(2015, 12, 24)));
        check("2015/1/5", Some(day(2015, 1, 5)));
        check("Dec 24, 2015", Some(day(2015, 12, 24)));
        check("December 24, 2015", Some(day(2015, 12, 24)));
        check("24 Dec 2015", Some(day(2015, 12, 24)));
        check(" 2015-12-24  Source: Xinhua ", Some(day(2015, 12, 24)));
        // The fast path for YYYY-MM-DD agrees with the formats, and leaves the rest to them.
        check("2016-02-29", Some(day(2016, 2, 29)));
        check("2015-02-29", None);
        check("2015-13-01", None);
        check("2015-1-05", Some(day(2015, 1, 5)));
        check("2015-12-2x", None);
    }

    #[test]
    fn times_without_zone_are_local() {
        check("2015-12-24 10:30:00", Some(local("2015-12-24 10:30:00")));
        check("2015-12-24 10:30", Some(local("2015-12-24 10:30:00")));
        check("2015/12/24 10:30:05", Some(local("2015-12-24 10:30:05")));
        check("2015年12月24日 10:30", Some(local("2015-12-24 10:30:00")));
        check(
            "2015年12月24日 10时30分",
            Some(local("2015-12-24 10:30:00")),
        );
        check("2015-12-24T10:30:00", Some(local("2015-12-24 10:30:00")));
    }

    #[test]
    fn zoned_times_are_instants() {
        let want = DateTime::parse_from_rfc3339("2015-12-24T10:30:00+08:00").unwrap();
        check("2015-12-24T10:30:00+08:00", Some(RawDate::Instant(want)));
        check("2015-12-24 10:30:00 +0800", Some(RawDate::Instant(want)));
        check(
            "Thu, 24 Dec 2015 10:30:00 +0800",
            Some(RawDate::Instant(want)),
        );
        let utc = DateTime::parse_from_rfc3339("2015-12-24T10:30:00Z").unwrap();
        check("2015-12-24 10:30:00 UTC", Some(RawDate::Instant(utc)));
    }

    #[test]
    fn garbage_and_impossible_dates_fail() {
        check("", None);
        check("yesterday", None);
        check("2015-02-30", None);
        check("2015-13-01", None);
        check("24/12/2015", None);
    }

    #[test]
    fn date_only_takes_first_seen_time_on_that_day() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let seen = DateTime::parse_from_rfc3339("2015-12-24T02:00:00Z")
            .unwrap()
            .to_utc();
        // 02:00Z is 10:00 in Shanghai, on the 24th.
        assert_eq!(
            rfc3339(resolve(day(2015, 12, 24), tz, seen)),
            "2015-12-24T10:00:00+08:00"
        );
        assert_eq!(
            rfc3339(resolve(day(2015, 12, 20), tz, seen)),
            "2015-12-20T00:00:00+08:00"
        );
        let utc: Tz = "UTC".parse().unwrap();
        assert_eq!(
            rfc3339(resolve(day(2015, 12, 20), utc, seen)),
            "2015-12-20T00:00:00Z"
        );
    }

    #[test]
    fn dst_gap_moves_forward() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let seen = Utc::now();
        let d = resolve(local("2021-03-28 02:30:00"), tz, seen);
        assert_eq!(rfc3339(d), "2021-03-28T03:30:00+02:00");
    }

    #[test]
    fn rss_dates_use_numeric_zones() {
        let d = DateTime::parse_from_rfc3339("2015-12-24T00:00:00Z").unwrap();
        assert_eq!(rfc2822(d), "Thu, 24 Dec 2015 00:00:00 +0000");
    }

    #[test]
    fn plausibility() {
        let now = Utc::now();
        assert!(!is_plausible(
            DateTime::parse_from_rfc3339("1970-01-01T00:00:00Z").unwrap(),
            now
        ));
        assert!(!is_plausible(
            (now + chrono::Duration::days(2)).fixed_offset(),
            now
        ));
        assert!(is_plausible(
            (now + chrono::Duration::hours(3)).fixed_offset(),
            now
        ));
    }
}
