//! Explore: a PromQL query over the chosen range as a graph or a table,
//! with the query's timings and the samples it loaded; errors are shown
//! with the server's words and a caret at their position.

use crate::api::ApiError;
use crate::chart::{ChartSeries, TimeSeriesChart};
use crate::loader::{error_box, use_loader, use_tick};
use crate::query_editor::QueryEditor;
use crate::route::Location;
use crate::series::{legend, query_instant, query_range, series_name, QueryData};
use crate::time_controls::{refresh_ms, TimeControls};
use crate::timerange::TimeRange;
use crate::units::Unit;
use std::rc::Rc;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub loc: Location,
    pub navigate: Callback<Location>,
}

/// `line:col` from a PromQL error such as `1:14: parse error: ...`.
pub fn error_position(msg: &str) -> Option<(usize, usize)> {
    let bytes = msg.as_bytes();
    for i in 0..bytes.len() {
        if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_digit()) {
            continue;
        }
        let rest = &msg[i..];
        let mut parts = rest.splitn(3, ':');
        let (Some(l), Some(c), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if let (Ok(l), Ok(c)) = (l.parse::<usize>(), c.parse::<usize>()) {
            if l >= 1 && c >= 1 {
                return Some((l, c));
            }
        }
    }
    None
}

fn query_error(query: &str, e: &ApiError) -> Html {
    let caret = error_position(&e.0).and_then(|(line, col)| {
        let text = query.lines().nth(line - 1)?;
        let caret = format!("{text}\n{}^", " ".repeat(col.saturating_sub(1)));
        Some(html! { <pre class="error-caret">{ caret }</pre> })
    });
    let logql = looks_like_logql(query).then(|| {
        let href = Location::new("/logs").with("q", query).to_hash();
        html! { <p>{ "This looks like LogQL: " }<a {href} id="open-in-logs">{ "run it in Logs" }</a></p> }
    });
    html! {
        <div class="error-box" role="alert" id="query-error">
            { e.to_string() }
            { caret.unwrap_or_default() }
            { logql.unwrap_or_default() }
        </div>
    }
}

/// A stream selector followed by a line filter or parser is LogQL, not PromQL.
pub fn looks_like_logql(q: &str) -> bool {
    let q = q.trim();
    let after_selector = q.find('}').map(|i| q[i + 1..].trim_start()).unwrap_or("");
    // A line filter takes a string; PromQL's `!=` takes a number.
    let filter = ["|=", "!=", "|~", "!~"].iter().any(|op| {
        after_selector
            .strip_prefix(op)
            .is_some_and(|r| r.trim_start().starts_with(['"', '`']))
    });
    let parser = [
        "| json",
        "| logfmt",
        "| line_format",
        "| pattern",
        "| regexp",
    ]
    .iter()
    .any(|p| after_selector.starts_with(p));
    filter
        || parser
        || q.contains("count_over_time({")
        || q.contains("rate({")
        || q.contains("bytes_over_time({")
}

#[derive(Clone, PartialEq)]
struct Answer {
    data: QueryData,
    start: f64,
    end: f64,
    step: f64,
    took_ms: f64,
}

#[function_component(Explore)]
pub fn explore(props: &Props) -> Html {
    let query = props.loc.get("q").unwrap_or("").to_string();
    let tab = props.loc.get("tab").unwrap_or("graph").to_string();
    let legend_tpl = props.loc.get("legend").unwrap_or("").to_string();
    let unit = Unit::from_id(props.loc.get("unit").unwrap_or("none"));
    let stacked = props.loc.get("stack") == Some("1");
    let range = props.loc.time_range();
    let tick = use_tick(refresh_ms(&props.loc));

    let answer = use_loader(
        (query.clone(), range.clone(), tab.clone(), tick),
        |(q, range, tab, _): (String, TimeRange, String, u32)| async move {
            if q.trim().is_empty() {
                return Ok(None);
            }
            let now = crate::time::now();
            let (start, end) = range.resolve(now);
            let step = range.step(now, 1000.0);
            let t0 = crate::time::now();
            let data = if tab == "table" {
                query_instant(&q, end).await?
            } else {
                query_range(&q, start, end, step).await?
            };
            Ok(Some(Answer {
                data,
                start,
                end,
                step,
                took_ms: (crate::time::now() - t0) * 1000.0,
            }))
        },
    );

    let on_run = {
        let loc = props.loc.clone();
        let navigate = props.navigate.clone();
        Callback::from(move |q: String| navigate.emit(loc.clone().with("q", q.trim())))
    };
    let tab_link = |name: &str, label: &str| {
        let loc = props.loc.clone();
        let navigate = props.navigate.clone();
        let n = name.to_string();
        let onclick =
            Callback::from(move |_: MouseEvent| navigate.emit(loc.clone().with("tab", &n)));
        html! {
            <button role="tab" id={format!("tab-{name}")} aria-selected={(tab == name).to_string()}
                class={classes!("tab", (tab == name).then_some("active"))} {onclick}>{ label.to_string() }</button>
        }
    };
    let on_zoom = {
        let loc = props.loc.clone();
        let navigate = props.navigate.clone();
        Callback::from(move |(from, to): (f64, f64)| {
            navigate.emit(loc.clone().with_time_range(&TimeRange::Fixed { from, to }))
        })
    };
    let on_unit = {
        let loc = props.loc.clone();
        let navigate = props.navigate.clone();
        Callback::from(move |e: Event| {
            use wasm_bindgen::JsCast;
            if let Some(s) = e
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok())
            {
                navigate.emit(loc.clone().with("unit", &s.value()));
            }
        })
    };
    let on_stack = {
        let loc = props.loc.clone();
        let navigate = props.navigate.clone();
        Callback::from(move |_: MouseEvent| {
            navigate.emit(loc.clone().with("stack", if stacked { "" } else { "1" }))
        })
    };

    let body = match &answer.value {
        None => html! { <div class="placeholder" style="height:300px">{ "loading…" }</div> },
        Some(Ok(None)) => html! {
            <p class="empty">{ "Type a PromQL expression, e.g. " }<code>{ "rate(node_cpu_seconds_total[5m])" }</code>
                { ", and press Enter." }</p>
        },
        Some(Err(e)) => query_error(&query, e),
        Some(Ok(Some(a))) => match a.data.series() {
            Err(e) => error_box(&ApiError(e)),
            Ok(series) => {
                let stats = a.data.stats.as_ref().map(|s| {
                    format!(
                        "Load time: {:.0} ms · Evaluation: {} · Samples loaded: {} · Result series: {}",
                        a.took_ms,
                        Unit::Seconds.format(s.timings.eval_total_time),
                        s.samples.total_queryable_samples,
                        series.len()
                    )
                });
                let stats = html! { <p class="query-stats" id="query-stats">{ stats.unwrap_or_default() }</p> };
                if tab == "table" {
                    html! {
                        <>
                            { stats }
                            <table class="data" id="result-table">
                                <thead><tr><th>{ "Series" }</th><th>{ "Value" }</th></tr></thead>
                                <tbody>
                                    if series.is_empty() { <tr><td colspan="2" class="empty">{ "Empty result" }</td></tr> }
                                    { for series.iter().map(|s| html! {
                                        <tr>
                                            <td class="mono">{ series_name(&s.labels) }</td>
                                            <td class="num">{ s.points.last().map(|p| unit.format(p.1)).unwrap_or_default() }</td>
                                        </tr>
                                    }) }
                                </tbody>
                            </table>
                        </>
                    }
                } else {
                    let chart: Vec<ChartSeries> = series
                        .iter()
                        .map(|s| ChartSeries {
                            key: series_name(&s.labels),
                            name: legend(&legend_tpl, &s.labels),
                            points: s.points.clone(),
                        })
                        .collect();
                    html! {
                        <>
                            { stats }
                            <TimeSeriesChart id="explore-chart" series={Rc::new(chart)} start={a.start}
                                end={a.end} step={a.step} {unit} {stacked} height={320}
                                on_zoom={Some(on_zoom)} />
                        </>
                    }
                }
            }
        },
    };

    html! {
        <section class="page explore">
            <h2>{ "Explore" }</h2>
            <QueryEditor id="query" value={query.clone()} on_run={on_run}
                placeholder="PromQL expression (Enter runs, Shift+Enter adds a line)" />
            <div class="toolbar">
                <div role="tablist">{ tab_link("graph", "Graph") }{ tab_link("table", "Table") }</div>
                <TimeControls loc={props.loc.clone()} navigate={props.navigate.clone()} />
                <label>{ "Unit " }
                    <select id="unit" onchange={on_unit}>
                        { for Unit::ALL.iter().map(|u| html! {
                            <option value={u.id()} selected={*u == unit}>{ u.id() }</option>
                        }) }
                    </select>
                </label>
                <button class={classes!("toggle", stacked.then_some("active"))} onclick={on_stack}
                    aria-pressed={stacked.to_string()}>{ "Stacked" }</button>
                if answer.loading { <span class="spinner" aria-live="polite">{ "loading…" }</span> }
            </div>
            { body }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_logql_apart() {
        assert!(looks_like_logql("{app=\"x\"} |= \"error\""));
        assert!(looks_like_logql("sum(rate({app=\"x\"}[5m]))"));
        assert!(looks_like_logql("{app=\"x\"} | json"));
        assert!(!looks_like_logql("up{job=\"x\"} != 0"));
        assert!(!looks_like_logql("rate(http_requests_total[5m])"));
    }

    #[test]
    fn finds_error_positions() {
        assert_eq!(
            error_position("bad_data: 1:14: parse error: unexpected"),
            Some((1, 14))
        );
        assert_eq!(
            error_position("invalid parameter \"query\": 2:3: parse error"),
            Some((2, 3))
        );
        assert_eq!(error_position("bad_data: unknown function"), None);
        assert_eq!(error_position("took 12:5"), None);
    }
}
