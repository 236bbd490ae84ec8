//! Logs: a LogQL query with label pickers, the log volume over time, the
//! matching lines with their labels and time, the lines around one line
//! (its context), and live tail over Loki's WebSocket endpoint.

use crate::api::{enc, prom_get, ApiError};
use crate::chart::{ChartSeries, TimeSeriesChart};
use crate::loader::{error_box, use_loader, use_tick};
use crate::panels::{loki_range, stream_lines, LogLine, Stream};
use crate::route::Location;
use crate::series::LabelSet;
use crate::time_controls::{refresh_ms, TimeControls};
use crate::timerange::TimeRange;
use crate::units::Unit;
use serde::Deserialize;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub loc: Location,
    pub navigate: Callback<Location>,
}

const LIMIT: usize = 200;

/// Adds `name="value"` to the query's first stream selector (or starts
/// one), replacing a matcher of the same label.
pub fn add_matcher(query: &str, name: &str, value: &str) -> String {
    let esc = value.replace('\\', "\\\\").replace('"', "\\\"");
    let m = format!("{name}=\"{esc}\"");
    let q = query.trim();
    let (Some(open), Some(close)) = (q.find('{'), q.find('}')) else {
        return format!(
            "{{{m}}}{}",
            if q.is_empty() {
                String::new()
            } else {
                format!(" {q}")
            }
        );
    };
    if close < open {
        return format!("{{{m}}}");
    }
    let inner = &q[open + 1..close];
    let mut parts: Vec<String> = inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let label = p.split(['=', '!', '~']).next().unwrap_or("").trim();
            label != name
        })
        .map(String::from)
        .collect();
    parts.push(m);
    format!("{}{{{}}}{}", &q[..open], parts.join(", "), &q[close + 1..])
}

/// The selector that picks exactly one stream: `{a="x", b="y"}`.
pub fn stream_selector(labels: &LabelSet) -> String {
    let ms: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", ms.join(", "))
}

/// The volume query for a log query: lines per step, by level when the
/// streams carry one.
pub fn volume_query(q: &str, step: f64) -> String {
    format!(
        "sum(count_over_time({q} [{}s]))",
        step.round().max(1.0) as u64
    )
}

fn labels_html(labels: &LabelSet) -> Html {
    html! { <>{ for labels.iter().map(|(k, v)| html! { <span class="label-chip">{ format!("{k}={v}") }</span> }) }</> }
}

#[derive(Clone, PartialEq)]
struct Context {
    /// The line the context is for, by time and text.
    at: (u64, String),
    before: Vec<LogLine>,
    after: Vec<LogLine>,
}

async fn context_of(line: &LogLine) -> Result<Context, ApiError> {
    let sel = stream_selector(&line.labels);
    // A metric answer cannot happen for a bare selector; treat it as none.
    let before: Vec<LogLine> = loki_range(&sel, line.ts - 3600.0, line.ts, 60.0, 6)
        .await?
        .unwrap_or_default();
    // Forward: the oldest lines after this one.
    let url = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}&limit=6&direction=forward",
        enc(&sel),
        (line.ts * 1e9) as i64,
        ((line.ts + 3600.0) * 1e9) as i64
    );
    #[derive(Deserialize)]
    struct D {
        result: Vec<Stream>,
    }
    let d: D = prom_get(&url).await?;
    let mut after = stream_lines(d.result);
    after.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    let same = |l: &LogLine| (l.ts - line.ts).abs() < 1e-6 && l.line == line.line;
    let mut before: Vec<LogLine> = before.into_iter().filter(|l| !same(l)).collect();
    before.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    let after = after.into_iter().filter(|l| !same(l)).take(5).collect();
    let skip = before.len().saturating_sub(5);
    Ok(Context {
        at: (line.ts.to_bits(), line.line.clone()),
        before: before.into_iter().skip(skip).collect(),
        after,
    })
}

#[derive(Deserialize)]
struct TailMessage {
    #[serde(default)]
    streams: Vec<Stream>,
}

/// A live-tail connection: the socket and the callbacks it keeps alive.
struct Tail {
    ws: web_sys::WebSocket,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_close: Closure<dyn FnMut(web_sys::Event)>,
}

impl Drop for Tail {
    fn drop(&mut self) {
        // The close event comes later, after the closures are gone.
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

fn open_tail(
    query: &str,
    on_lines: Callback<Vec<LogLine>>,
    on_end: Callback<String>,
) -> Result<Tail, String> {
    let loc = web_sys::window().ok_or("no window")?.location();
    let proto = if loc.protocol().unwrap_or_default() == "https:" {
        "wss"
    } else {
        "ws"
    };
    let host = loc.host().map_err(|_| "no host")?;
    let url = format!(
        "{proto}://{host}/loki/api/v1/tail?query={}&limit=50",
        enc(query)
    );
    let ws = web_sys::WebSocket::new(&url).map_err(|e| format!("{e:?}"))?;
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            let Some(text) = e.data().as_string() else {
                return;
            };
            match serde_json::from_str::<TailMessage>(&text) {
                Ok(m) => {
                    let lines = stream_lines(m.streams);
                    on_lines.emit(lines);
                }
                Err(e) => web_sys::console::error_1(&format!("tail: {e}").into()),
            }
        });
    let on_close = Closure::<dyn FnMut(web_sys::Event)>::new(move |_e: web_sys::Event| {
        on_end.emit("live tail stopped: the connection closed (is the query a log query?)".into());
    });
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    Ok(Tail {
        ws,
        _on_message: on_message,
        _on_close: on_close,
    })
}

#[function_component(Logs)]
pub fn logs(props: &Props) -> Html {
    let query = props.loc.get("q").unwrap_or("").to_string();
    let range = props.loc.time_range();
    let tick = use_tick(refresh_ms(&props.loc));
    let input = use_node_ref();
    let picked_label = use_state(|| None::<String>);
    let context = use_state(|| None::<Result<Context, ApiError>>);
    let live = use_state(|| false);
    let live_lines = use_state(Vec::<LogLine>::new);
    let live_error = use_state(|| None::<String>);
    let tail = use_mut_ref(|| None::<Tail>);

    let labels = use_loader((), |_| prom_get::<Vec<String>>("/loki/api/v1/labels"));
    let values = use_loader((*picked_label).clone(), |l: Option<String>| async move {
        match l {
            Some(l) => {
                prom_get::<Vec<String>>(&format!("/loki/api/v1/label/{}/values", enc(&l))).await
            }
            None => Ok(Vec::new()),
        }
    });
    let results = use_loader(
        (query.clone(), range.clone(), tick),
        |(q, range, _): (String, TimeRange, u32)| async move {
            if q.trim().is_empty() {
                return Ok(None);
            }
            let now = crate::time::now();
            let (start, end) = range.resolve(now);
            let step = range.step(now, 60.0).max(1.0);
            let lines = loki_range(&q, start, end, step, LIMIT).await?;
            let volume = match &lines {
                Ok(_) => {
                    match loki_range(&volume_query(&q, step), start, end, step, LIMIT).await? {
                        Err(series) => series,
                        Ok(_) => Vec::new(),
                    }
                }
                Err(_) => Vec::new(),
            };
            Ok(Some((lines, volume, start, end, step)))
        },
    );

    {
        // Live tail follows the query; leaving the page closes it.
        let tail = tail.clone();
        let live_lines = live_lines.clone();
        let live_error = live_error.clone();
        let live_on = *live;
        use_effect_with((query.clone(), live_on), move |(q, on)| {
            *tail.borrow_mut() = None;
            if *on && !q.trim().is_empty() {
                live_lines.set(Vec::new());
                let buffer = std::rc::Rc::new(std::cell::RefCell::new(Vec::<LogLine>::new()));
                let on_lines = {
                    let live_lines = live_lines.clone();
                    Callback::from(move |mut new: Vec<LogLine>| {
                        let mut b = buffer.borrow_mut();
                        new.sort_by(|a, b| b.ts.total_cmp(&a.ts));
                        new.extend(b.drain(..));
                        new.truncate(500);
                        *b = new.clone();
                        live_lines.set(new);
                    })
                };
                let on_end = {
                    let live_error = live_error.clone();
                    Callback::from(move |m: String| live_error.set(Some(m)))
                };
                match open_tail(q, on_lines, on_end) {
                    Ok(t) => {
                        live_error.set(None);
                        *tail.borrow_mut() = Some(t);
                    }
                    Err(e) => live_error.set(Some(e)),
                }
            }
            move || {
                *tail.borrow_mut() = None;
            }
        });
    }

    let run = {
        let loc = props.loc.clone();
        let navigate = props.navigate.clone();
        let input = input.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let q = input
                .cast::<web_sys::HtmlInputElement>()
                .map(|i| i.value())
                .unwrap_or_default();
            navigate.emit(loc.clone().with("q", q.trim()));
        })
    };
    let pick_label = {
        let picked_label = picked_label.clone();
        Callback::from(move |l: String| picked_label.set(Some(l)))
    };
    let pick_value = {
        let loc = props.loc.clone();
        let navigate = props.navigate.clone();
        let picked = (*picked_label).clone();
        let q = query.clone();
        Callback::from(move |v: String| {
            if let Some(l) = &picked {
                navigate.emit(loc.clone().with("q", &add_matcher(&q, l, &v)));
            }
        })
    };
    let toggle_live = {
        let live = live.clone();
        Callback::from(move |_: MouseEvent| live.set(!*live))
    };
    let on_zoom = {
        let loc = props.loc.clone();
        let navigate = props.navigate.clone();
        Callback::from(move |(from, to): (f64, f64)| {
            navigate.emit(loc.clone().with_time_range(&TimeRange::Fixed { from, to }))
        })
    };

    let line_html = |l: &LogLine, with_context: bool| {
        let show = {
            let context = context.clone();
            let l = l.clone();
            Callback::from(move |_: MouseEvent| {
                let context = context.clone();
                let l = l.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    context.set(Some(context_of(&l).await));
                });
            })
        };
        let ctx = match &*context {
            Some(Ok(c)) if with_context && c.at == (l.ts.to_bits(), l.line.clone()) => html! {
                <div class="log-context" id="log-context">
                    { for c.before.iter().map(|x| html! { <div class="log-line context"><span class="log-time">{ crate::time::format_datetime(x.ts) }</span>{ x.line.clone() }</div> }) }
                    <div class="log-line context-here">{ "▶ this line" }</div>
                    { for c.after.iter().map(|x| html! { <div class="log-line context"><span class="log-time">{ crate::time::format_datetime(x.ts) }</span>{ x.line.clone() }</div> }) }
                </div>
            },
            Some(Err(e)) if with_context => error_box(e),
            _ => html! {},
        };
        html! {
            <li class="log-entry">
                <div class="log-line">
                    <span class="log-time">{ crate::time::format_datetime(l.ts) }</span>
                    <span class="log-text">{ l.line.clone() }</span>
                    if with_context { <button class="small context-button" onclick={show}>{ "context" }</button> }
                </div>
                <div class="log-labels">{ labels_html(&l.labels) }</div>
                { ctx }
            </li>
        }
    };

    let pickers = html! {
        <div class="label-pickers" id="label-pickers">
            <span class="muted">{ "Labels: " }</span>
            { match &labels.value {
                Some(Ok(ls)) => html! { <>{ for ls.iter().map(|l| {
                    let onclick = { let pick = pick_label.clone(); let l = l.clone(); Callback::from(move |_: MouseEvent| pick.emit(l.clone())) };
                    let active = picked_label.as_deref() == Some(l.as_str());
                    html! { <button class={classes!("small", "label-name", active.then_some("active"))} {onclick}>{ l.clone() }</button> }
                }) }</> },
                Some(Err(e)) => error_box(e),
                None => html! {},
            } }
            if picked_label.is_some() {
                <div class="label-values" id="label-values">
                    { match &values.value {
                        Some(Ok(vs)) => html! { <>{ for vs.iter().map(|v| {
                            let onclick = { let pick = pick_value.clone(); let v = v.clone(); Callback::from(move |_: MouseEvent| pick.emit(v.clone())) };
                            html! { <button class="small label-value" {onclick}>{ v.clone() }</button> }
                        }) }</> },
                        Some(Err(e)) => error_box(e),
                        None => html! {},
                    } }
                </div>
            }
        </div>
    };

    let body = if *live {
        html! {
            <>
                if let Some(e) = &*live_error { <div class="error-box" role="alert">{ e.clone() }</div> }
                <p class="muted" id="live-status">{ format!("Live: {} lines", live_lines.len()) }</p>
                <ul class="log-results" id="live-lines">{ for live_lines.iter().map(|l| line_html(l, false)) }</ul>
            </>
        }
    } else {
        match &results.value {
            None => html! { <div class="placeholder" style="height:200px">{ "loading…" }</div> },
            Some(Ok(None)) => {
                html! { <p class="empty">{ "Pick labels or type a LogQL query, e.g. " }<code>{ "{namespace=\"default\"} |= \"error\"" }</code></p> }
            }
            Some(Err(e)) => {
                html! { <div class="error-box" role="alert" id="logs-error">{ e.to_string() }</div> }
            }
            Some(Ok(Some((Err(series), _, start, end, step)))) => {
                // A metric query: draw it.
                let s: Vec<ChartSeries> = series
                    .iter()
                    .map(|s| ChartSeries {
                        key: crate::series::series_name(&s.labels),
                        name: crate::series::series_name(&s.labels),
                        points: s.points.clone(),
                    })
                    .collect();
                html! { <TimeSeriesChart id="logs-metric-chart" series={Rc::new(s)} start={*start} end={*end} step={*step} on_zoom={Some(on_zoom.clone())} /> }
            }
            Some(Ok(Some((Ok(lines), volume, start, end, step)))) => {
                let v: Vec<ChartSeries> = volume
                    .iter()
                    .map(|s| ChartSeries {
                        key: "volume".into(),
                        name: "lines".into(),
                        points: s.points.clone(),
                    })
                    .collect();
                html! {
                    <>
                        <TimeSeriesChart id="log-volume" series={Rc::new(v)} start={*start} end={*end} step={*step}
                            unit={Unit::None} bars={true} height={140} on_zoom={Some(on_zoom.clone())} />
                        <p class="muted" id="logs-count">{ if lines.len() >= LIMIT { format!("newest {LIMIT} lines") } else { format!("{} lines", lines.len()) } }</p>
                        if lines.is_empty() { <p class="empty">{ "No lines match in this time range." }</p> }
                        <ul class="log-results" id="log-results">{ for lines.iter().map(|l| line_html(l, true)) }</ul>
                    </>
                }
            }
        }
    };

    html! {
        <section class="page logs">
            <h2>{ "Logs" }</h2>
            <form class="query-editor" onsubmit={run}>
                <input id="logql" ref={input} value={query.clone()} spellcheck="false" aria-label="LogQL query"
                    placeholder={"{namespace=\"default\"} |= \"error\""} />
                <button type="submit" class="run">{ "Run" }</button>
            </form>
            { pickers }
            <div class="toolbar">
                <TimeControls loc={props.loc.clone()} navigate={props.navigate.clone()} />
                <button id="live-toggle" class={classes!("toggle", live.then_some("active"))} onclick={toggle_live}
                    aria-pressed={live.to_string()}>{ if *live { "Stop live tail" } else { "Live tail" } }</button>
                if results.loading && !*live { <span class="spinner">{ "loading…" }</span> }
            </div>
            { body }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_matchers_to_the_selector() {
        assert_eq!(add_matcher("", "app", "api"), "{app=\"api\"}");
        assert_eq!(
            add_matcher("{ns=\"a\"} |= \"x\"", "app", "api"),
            "{ns=\"a\", app=\"api\"} |= \"x\""
        );
        assert_eq!(
            add_matcher("{app=\"old\", ns=\"a\"}", "app", "new"),
            "{ns=\"a\", app=\"new\"}"
        );
        assert_eq!(
            add_matcher("|= \"x\"", "a", "q\"uote"),
            "{a=\"q\\\"uote\"} |= \"x\""
        );
    }

    #[test]
    fn selectors_and_volume() {
        let mut l = LabelSet::new();
        l.insert("app".into(), "a\"b".into());
        l.insert("ns".into(), "x".into());
        assert_eq!(stream_selector(&l), "{app=\"a\\\"b\", ns=\"x\"}");
        assert_eq!(
            volume_query("{a=\"b\"} |= \"e\"", 60.4),
            "sum(count_over_time({a=\"b\"} |= \"e\" [60s]))"
        );
    }
}
