//! RFC 3339 times as Kubernetes and container runtimes write them
//! (`2026-12-03T10:49:20.123456789Z`, or with a `+01:00` offset), to
//! nanoseconds since the epoch, without a date library.

/// Nanoseconds since the Unix epoch of `s`; `None` if it is not RFC 3339.
pub fn parse_nanos(s: &str) -> Option<i64> {
    let (date, time) = s.split_once(['T', 't'])?;
    let mut d = date.splitn(3, '-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    // RFC 3339 years have four digits (and bounding them keeps the day
    // arithmetic far from overflow).
    if !(0..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let zone_at = time.find(['Z', 'z', '+', '-'])?;
    let (clock, zone) = time.split_at(zone_at);
    let mut c = clock.splitn(3, ':');
    let (hh, mm): (i64, i64) = (c.next()?.parse().ok()?, c.next()?.parse().ok()?);
    let sec_text = c.next()?;
    let (whole, frac) = sec_text.split_once('.').unwrap_or((sec_text, ""));
    let ss: i64 = whole.parse().ok()?;
    if hh > 23 || mm > 59 || ss > 60 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Up to nanoseconds; finer digits are dropped.
    let mut nanos: i64 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    let offset_s = match zone {
        "Z" | "z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o.get(1..)?.split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    let days = vigil_config::civil::days_from_civil(y, m as u32, day as u32);
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset_s;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_fractions_and_offsets() {
        assert_eq!(parse_nanos("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_nanos("2000-03-01T00:00:00Z"),
            Some(951_868_800_000_000_000)
        );
        assert_eq!(parse_nanos("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_nanos("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(
            parse_nanos("2026-12-03T10:49:20.123456789Z"),
            Some(1_796_294_960_123_456_789)
        );
        assert_eq!(
            parse_nanos("2026-12-03T10:49:20.1234567891Z"),
            Some(1_796_294_960_123_456_789)
        );
        for bad in [
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-12-03T10:49:20",
            "2026-12-03T25:00:00Z",
            "",
        ] {
            assert_eq!(parse_nanos(bad), None, "{bad}");
        }
    }
}
