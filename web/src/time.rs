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
