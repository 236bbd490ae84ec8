//! Alertmanager's time intervals: named sets of recurring periods (times
//! of day, weekdays, days of the month, months, years, in a time zone)
//! that routes name in `mute_time_intervals` (no notifications while
//! inside) and `active_time_intervals` (notifications only while inside).

use jiff::tz::TimeZone;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeIntervalSet {
    pub name: String,
    #[serde(default)]
    pub time_intervals: Vec<RawTimeInterval>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeInterval {
    #[serde(default)]
    times: Vec<RawTimeRange>,
    #[serde(default)]
    weekdays: Vec<String>,
    #[serde(default)]
    days_of_month: Vec<String>,
    #[serde(default)]
    months: Vec<String>,
    #[serde(default)]
    years: Vec<String>,
    #[serde(default)]
    location: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeRange {
    start_time: String,
    end_time: String,
}

/// One period: every listed field must hold (an empty field always does).
#[derive(Debug, Clone)]
pub struct TimeInterval {
    /// Minutes since midnight, start inclusive, end exclusive.
    times: Vec<(u16, u16)>,
    /// Days counted from Sunday = 0, inclusive ranges.
    weekdays: Vec<(u8, u8)>,
    /// Days of the month, negative from the end (-1 = the last day).
    days_of_month: Vec<(i8, i8)>,
    months: Vec<(u8, u8)>,
    years: Vec<(i32, i32)>,
    location: TimeZone,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// `a` or `a:b`, each side parsed by `one`.
fn range<T: Copy>(s: &str, one: impl Fn(&str) -> Result<T, String>) -> Result<(T, T), String> {
    match s.split_once(':') {
        Some((a, b)) => Ok((one(a.trim())?, one(b.trim())?)),
        None => {
            let v = one(s.trim())?;
            Ok((v, v))
        }
    }
}

fn ordered<T: PartialOrd + std::fmt::Debug>(
    (a, b): (T, T),
    field: &str,
    s: &str,
) -> Result<(T, T), String> {
    if a > b {
        return Err(format!("{field}: {s:?}: the start is after the end"));
    }
    Ok((a, b))
}

fn named(s: &str, names: &[&str], first: u8) -> Option<u8> {
    let lower = s.to_ascii_lowercase();
    names
        .iter()
        .position(|n| *n == lower)
        .and_then(|i| u8::try_from(i).ok())
        .map(|i| i + first)
}

/// `HH:MM` as minutes since midnight, 00:00 to 24:00.
fn clock(s: &str) -> Result<u16, String> {
    let bad = || format!("{s:?} is not a time of day (HH:MM, 00:00 to 24:00)");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl TimeInterval {
    fn parse(raw: RawTimeInterval) -> Result<TimeInterval, String> {
        let mut times = Vec::new();
        for t in &raw.times {
            let (a, b) = (clock(&t.start_time)?, clock(&t.end_time)?);
            if a >= b {
                return Err(format!(
                    "times: start_time {:?} must be before end_time {:?}",
                    t.start_time, t.end_time
                ));
            }
            times.push((a, b));
        }
        let mut weekdays = Vec::new();
        for s in &raw.weekdays {
            let day = |d: &str| {
                named(d, &WEEKDAYS, 0).ok_or_else(|| format!("weekdays: {d:?} is not a day name"))
            };
            weekdays.push(ordered(range(s, day)?, "weekdays", s)?);
        }
        let mut days_of_month = Vec::new();
        for s in &raw.days_of_month {
            let day = |d: &str| match d.parse::<i8>() {
                Ok(n) if n != 0 && (-31..=31).contains(&n) => Ok(n),
                _ => Err(format!(
                    "days_of_month: {d:?} is not a day (1 to 31, or -31 to -1 from the end)"
                )),
            };
            let (a, b) = range(s, day)?;
            // Same-sign ranges must run forward; 1:-1 (first to last) is fine.
            if (a > 0) == (b > 0) {
                ordered((a, b), "days_of_month", s)?;
            } else if a < 0 {
                return Err(format!(
                    "days_of_month: {s:?}: a range cannot start from the end and stop at a day"
                ));
            }
            days_of_month.push((a, b));
        }
        let mut months = Vec::new();
        for s in &raw.months {
            let month = |m: &str| {
                named(m, &MONTHS, 1)
                    .or_else(|| m.parse::<u8>().ok().filter(|n| (1..=12).contains(n)))
                    .ok_or_else(|| format!("months: {m:?} is not a month (name or 1 to 12)"))
            };
            months.push(ordered(range(s, month)?, "months", s)?);
        }
        let mut years = Vec::new();
        for s in &raw.years {
            let year = |y: &str| {
                y.parse::<i32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("years: {y:?} is not a year"))
            };
            years.push(ordered(range(s, year)?, "years", s)?);
        }
        let location = match raw.location.as_deref() {
            None | Some("UTC") | Some("") => TimeZone::UTC,
            Some("Local") => TimeZone::system(),
            Some(name) => TimeZone::get(name)
                .map_err(|e| format!("location: {name:?} is not a known time zone: {e}"))?,
        };
        Ok(TimeInterval {
            times,
            weekdays,
            days_of_month,
            months,
            years,
            location,
        })
    }

    /// Whether the instant `ms` (Unix milliseconds) falls inside.
    pub fn contains(&self, ms: i64) -> bool {
        let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
            return false;
        };
        let t = ts.to_zoned(self.location.clone());
        let minute = t.hour() as u16 * 60 + t.minute() as u16;
        let weekday = t.weekday().to_sunday_zero_offset() as u8;
        let (day, last) = (t.day(), t.days_in_month());
        let month = t.month() as u8;
        let year = i32::from(t.year());
        let in_any = |ok: bool, empty: bool| empty || ok;
        in_any(
            self.times.iter().any(|&(a, b)| a <= minute && minute < b),
            self.times.is_empty(),
        ) && in_any(
            self.weekdays
                .iter()
                .any(|&(a, b)| a <= weekday && weekday <= b),
            self.weekdays.is_empty(),
        ) && in_any(
            self.days_of_month.iter().any(|&(a, b)| {
                let abs = |d: i8| if d < 0 { last + 1 + d } else { d };
                abs(a) <= day && day <= abs(b)
            }),
            self.days_of_month.is_empty(),
        ) && in_any(
            self.months.iter().any(|&(a, b)| a <= month && month <= b),
            self.months.is_empty(),
        ) && in_any(
            self.years.iter().any(|&(a, b)| a <= year && year <= b),
            self.years.is_empty(),
        )
    }
}

/// A named set: inside when any of its periods holds.
#[derive(Debug, Clone)]
pub struct TimeIntervalSet {
    pub name: String,
    pub intervals: Vec<TimeInterval>,
}

impl TimeIntervalSet {
    pub(crate) fn parse(raw: RawTimeIntervalSet, what: &str) -> Result<TimeIntervalSet, String> {
        if raw.name.is_empty() {
            return Err(format!("{what}: a time interval needs a name"));
        }
        let mut intervals = Vec::new();
        for (i, t) in raw.time_intervals.into_iter().enumerate() {
            intervals.push(
                TimeInterval::parse(t)
                    .map_err(|e| format!("{what} {:?}: time_intervals[{i}]: {e}", raw.name))?,
            );
        }
        Ok(TimeIntervalSet {
            name: raw.name,
            intervals,
        })
    }

    pub fn contains(&self, ms: i64) -> bool {
        self.intervals.iter().any(|t| t.contains(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(yaml: &str) -> Result<TimeIntervalSet, String> {
        let raw: RawTimeIntervalSet = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        TimeIntervalSet::parse(raw, "time_intervals")
    }

    fn ms(rfc3339: &str) -> i64 {
        rfc3339
            .parse::<jiff::Timestamp>()
            .expect("timestamp")
            .as_millisecond()
    }

    #[test]
    fn business_hours_on_weekdays() {
        let s = set("name: office\ntime_intervals:\n  - times: [{start_time: '09:00', end_time: '17:00'}]\n    weekdays: ['monday:friday']\n")
            .expect("parses");
        // 2026-12-04 is a Friday.
        assert!(s.contains(ms("2026-12-04T09:00:00Z")));
        assert!(s.contains(ms("2026-12-04T16:59:59Z")));
        assert!(
            !s.contains(ms("2026-12-04T17:00:00Z")),
            "the end is exclusive"
        );
        assert!(!s.contains(ms("2026-12-05T10:00:00Z")), "Saturday");
    }

    #[test]
    fn days_from_the_end_months_years_and_zones() {
        let s = set("name: eom\ntime_intervals:\n  - days_of_month: ['-3:-1']\n    months: ['february', '11:12']\n    years: ['2026:2027']\n").expect("parses");
        assert!(s.contains(ms("2026-12-29T00:00:00Z")));
        assert!(!s.contains(ms("2026-12-28T23:59:00Z")));
        assert!(s.contains(ms("2027-02-26T12:00:00Z")), "28-day February");
        assert!(!s.contains(ms("2026-10-31T12:00:00Z")), "October is out");
        assert!(!s.contains(ms("2028-12-31T12:00:00Z")), "2028 is out");
        let berlin = set("name: b\ntime_intervals:\n  - times: [{start_time: '00:00', end_time: '01:00'}]\n    location: Europe/Berlin\n").expect("parses");
        // Midnight in Berlin in winter is 23:00 UTC.
        assert!(berlin.contains(ms("2026-12-03T23:30:00Z")));
        assert!(!berlin.contains(ms("2026-12-04T00:30:00Z")));
    }

    #[test]
    fn errors_name_the_field_and_value() {
        let e = set("name: x\ntime_intervals:\n  - weekdays: ['friday:monday']\n").unwrap_err();
        assert!(
            e.contains("weekdays") && e.contains("start is after the end"),
            "{e}"
        );
        let e = set(
            "name: x\ntime_intervals:\n  - times: [{start_time: '25:00', end_time: '26:00'}]\n",
        )
        .unwrap_err();
        assert!(e.contains("\"25:00\" is not a time of day"), "{e}");
        let e = set("name: x\ntime_intervals:\n  - days_of_month: ['0']\n").unwrap_err();
        assert!(e.contains("days_of_month"), "{e}");
        let e = set("name: x\ntime_intervals:\n  - location: Mars/Olympus\n").unwrap_err();
        assert!(e.contains("Mars/Olympus"), "{e}");
        let e = set("name: x\ntime_intervals:\n  - months: ['smarch']\n").unwrap_err();
        assert!(e.contains("time_intervals[0]: months: \"smarch\""), "{e}");
    }
}
