//! Clock and calendar in the browser's local time zone (as Grafana shows it).

/// Now, in unix seconds.
pub fn now() -> f64 {
    js_sys::Date::now() / 1000.0
}

fn date(ts: f64) -> js_sys::Date {
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ts * 1000.0))
}

/// `2026-12-04 20:15:03`
pub fn format_datetime(ts: f64) -> String {
    let d = date(ts);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds()
    )
}

/// An axis tick: `20:15`, with the date when the range spans days, and
/// seconds when it spans minutes.
pub fn format_tick(ts: f64, span_seconds: f64) -> String {
    let d = date(ts);
    if span_seconds > 2.0 * 86400.0 {
        format!(
            "{:02}-{:02} {:02}:{:02}",
            d.get_month() + 1,
            d.get_date(),
            d.get_hours(),
            d.get_minutes()
        )
    } else if span_seconds <= 600.0 {
        format!(
            "{:02}:{:02}:{:02}",
            d.get_hours(),
            d.get_minutes(),
            d.get_seconds()
        )
    } else {
        format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
    }
}

/// The value for an `<input type="datetime-local">`: `2026-12-04T20:15`.
pub fn to_input(ts: f64) -> String {
    let d = date(ts);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes()
    )
}

/// Reads an `<input type="datetime-local">` value as local time.
pub fn from_input(s: &str) -> Option<f64> {
    let ms = js_sys::Date::parse(s);
    (!ms.is_nan()).then_some(ms / 1000.0)
}

/// Seconds to add to UTC for local time, now.
pub fn tz_offset() -> f64 {
    -js_sys::Date::new_0().get_timezone_offset() * 60.0
}

/// Axis ticks on round local times (every 1, 2, 5, 10, 15, 30 s or min,
/// 1, 2, 3, 6, 12 h, 1, 2, 7 d), at most `max` of them.
pub fn time_ticks(from: f64, to: f64, max: usize, offset: f64) -> Vec<f64> {
    const STEPS: [f64; 21] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        10800.0, 21600.0, 43200.0, 86400.0, 172800.0, 604800.0, 2592000.0,
    ];
    let span = to - from;
    if span <= 0.0 || max == 0 {
        return Vec::new();
    }
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= max as f64)
        .unwrap_or(span);
    let mut t = ((from + offset) / step).ceil() * step - offset;
    let mut out = Vec::new();
    while t <= to && out.len() <= max {
        out.push(t);
        t += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fall_on_round_times() {
        // 10:03:20 to 11:03:20 UTC, at most 8 ticks: every 10 min from 10:10.
        let from = 36200.0;
        let t = time_ticks(from, from + 3600.0, 8, 0.0);
        assert_eq!(t.first(), Some(&36600.0));
        assert!(t.windows(2).all(|w| w[1] - w[0] == 600.0));
        assert_eq!(t.len(), 6);
        // Local time one hour ahead of UTC shifts the hour ticks.
        let t = time_ticks(0.0, 86400.0, 5, 3600.0);
        assert!(t.iter().all(|x| (x + 3600.0) % 21600.0 == 0.0), "{t:?}");
        assert!(time_ticks(5.0, 5.0, 5, 0.0).is_empty());
    }
}
