//! A dashboard panel: runs its queries (PromQL or LogQL, variables
//! substituted) and draws them as a time series, stat, gauge, bar, table,
//! heatmap or log list. A failed query shows the server's error in the
//! panel; an empty answer says so.

use crate::api::{enc, prom_get, ApiError};
use crate::chart::{ChartSeries, Threshold as ChartThreshold, TimeSeriesChart};
use crate::heatmap::Heatmap;
use crate::loader::{error_box, use_loader};
use crate::palette;
use crate::series::{legend, query_instant, query_range, series_name, LabelSet, Series};
use crate::units::Unit;
use crate::variables::{interpolate, Interval, Resolved};
use dashboards::{Panel, PanelKind, Source};
use serde::Deserialize;
use std::rc::Rc;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub panel: Rc<Panel>,
    pub index: usize,
    pub vars: Rc<Vec<Resolved>>,
    pub start: f64,
    pub end: f64,
    pub step: f64,
    /// Changes on every refresh.
    pub tick: u32,
    #[prop_or_default]
    pub on_zoom: Option<Callback<(f64, f64)>>,
}

/// One log line as a panel shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    pub ts: f64,
    pub line: String,
    pub labels: LabelSet,
}

#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Series(Vec<(Series, String)>),
    Logs(Vec<LogLine>),
}

#[derive(Deserialize)]
struct LokiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

/// A Loki stream as the query and tail APIs send it.
#[derive(Deserialize)]
pub struct Stream {
    stream: LabelSet,
    values: Vec<(String, String)>,
}

/// Streams as log lines (nanosecond timestamps to seconds), unsorted.
pub fn stream_lines(streams: Vec<Stream>) -> Vec<LogLine> {
    streams
        .into_iter()
        .flat_map(|s| {
            let labels = s.stream;
            s.values.into_iter().map(move |(ts, line)| LogLine {
                ts: ts.parse::<f64>().unwrap_or(0.0) / 1e9,
                line,
                labels: labels.clone(),
            })
        })
        .collect()
}

/// `/loki/api/v1/query_range`: streams become log lines (newest first),
/// a metric query becomes series.
pub async fn loki_range(
    q: &str,
    start: f64,
    end: f64,
    step: f64,
    limit: usize,
) -> Result<Result<Vec<LogLine>, Vec<Series>>, ApiError> {
    let url = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}&step={step}&limit={limit}&direction=backward",
        enc(q),
        (start * 1e9) as i64,
        (end * 1e9) as i64
    );
    let d: LokiData = prom_get(&url).await?;
    if d.result_type == "streams" {
        let streams: Vec<Stream> = serde_json::from_value(d.result)
            .map_err(|e| ApiError(format!("unexpected streams answer: {e}")))?;
        let mut lines = stream_lines(streams);
        lines.sort_by(|a, b| b.ts.total_cmp(&a.ts));
        lines.truncate(limit);
        Ok(Ok(lines))
    } else {
        let data = crate::series::QueryData {
            result_type: d.result_type,
            result: d.result,
            stats: None,
        };
        Ok(Err(data.series().map_err(ApiError)?))
    }
}

async fn run(
    panel: Rc<Panel>,
    vars: Rc<Vec<Resolved>>,
    start: f64,
    end: f64,
    step: f64,
) -> Result<Answer, ApiError> {
    let interval = Interval {
        step,
        range: end - start,
    };
    let instant = matches!(
        panel.kind,
        PanelKind::Stat | PanelKind::Gauge | PanelKind::Bar | PanelKind::Table
    );
    let mut out = Vec::new();
    let mut logs = Vec::new();
    for t in &panel.targets {
        let q = interpolate(&t.expr, &vars, interval);
        match t.source {
            Source::Loki => match loki_range(&q, start, end, step, 500).await? {
                Ok(lines) => logs.extend(lines),
                Err(series) => out.extend(series.into_iter().map(|s| (s, t.legend.clone()))),
            },
            Source::Prometheus => {
                let d = if instant {
                    query_instant(&q, end).await?
                } else {
                    query_range(&q, start, end, step).await?
                };
                out.extend(
                    d.series()
                        .map_err(ApiError)?
                        .into_iter()
                        .map(|s| (s, t.legend.clone())),
                );
            }
        }
    }
    if panel.kind == PanelKind::Logs {
        logs.sort_by(|a, b| b.ts.total_cmp(&a.ts));
        Ok(Answer::Logs(logs))
    } else {
        Ok(Answer::Series(out))
    }
}

/// The colour a value takes from ascending thresholds (green below all).
pub fn threshold_color(thresholds: &[dashboards::Threshold], v: f64) -> (u8, u8, u8) {
    thresholds
        .iter()
        .rev()
        .find(|t| v >= t.value)
        .map_or(palette::named("green"), |t| palette::named(&t.color))
}

fn last_value(s: &Series) -> f64 {
    s.points.last().map_or(f64::NAN, |p| p.1)
}

fn name_of(s: &Series, template: &str, vars: &[Resolved]) -> String {
    let l = legend(template, &s.labels);
    interpolate(
        &l,
        vars,
        Interval {
            step: 1.0,
            range: 1.0,
        },
    )
}

/// A gauge: an arc from min to max, filled to the value.
fn gauge(v: f64, min: f64, max: f64, unit: Unit, color: (u8, u8, u8), title: &str) -> Html {
    let f = if max > min {
        ((v - min) / (max - min)).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let f = if f.is_nan() { 0.0 } else { f };
    // Half circle from 180° to 0°, radius 40 around (50, 50).
    let angle = std::f64::consts::PI * (1.0 - f);
    let (x, y) = (50.0 + 40.0 * angle.cos(), 50.0 - 40.0 * angle.sin());
    let track = "M 10 50 A 40 40 0 0 1 90 50";
    let fill = format!("M 10 50 A 40 40 0 0 1 {x:.2} {y:.2}");
    html! {
        <div class="gauge" title={title.to_string()}>
            <svg viewBox="0 0 100 60" role="img" aria-label={format!("{title}: {}", unit.format(v))}>
                <path d={track} class="gauge-track" fill="none" stroke-width="10" />
                if f > 0.0 {
                    <path d={fill} fill="none" stroke={palette::css(color)} stroke-width="10" />
                }
                <text x="50" y="48" text-anchor="middle" class="gauge-value">{ unit.format(v) }</text>
            </svg>
        </div>
    }
}

#[function_component(PanelView)]
pub fn panel_view(props: &Props) -> Html {
    let p = props.panel.clone();
    let answer = use_loader(
        (
            p.clone(),
            props.vars.clone(),
            props.start.to_bits(),
            props.end.to_bits(),
            props.step.to_bits(),
            props.tick,
        ),
        |(p, vars, s, e, st, _)| {
            run(
                p,
                vars,
                f64::from_bits(s),
                f64::from_bits(e),
                f64::from_bits(st),
            )
        },
    );
    let unit = Unit::from_id(&p.unit);
    let vars = props.vars.clone();
    let body_height = p.height.saturating_sub(36).max(40);
    let body = match &answer.value {
        None => {
            html! { <div class="placeholder" style={format!("height:{body_height}px")}>{ "loading…" }</div> }
        }
        Some(Err(e)) => error_box(e),
        Some(Ok(Answer::Logs(lines))) if lines.is_empty() => {
            html! { <p class="empty">{ "No log lines in this time range." }</p> }
        }
        Some(Ok(Answer::Series(s))) if s.is_empty() => {
            html! { <p class="empty">{ "No data." }</p> }
        }
        Some(Ok(Answer::Logs(lines))) => html! {
            <div class="log-lines" style={format!("max-height:{body_height}px")}>
                { for lines.iter().map(|l| html! {
                    <div class="log-line">
                        <span class="log-time">{ crate::time::format_datetime(l.ts) }</span>
                        <span class="log-text">{ l.line.clone() }</span>
                    </div>
                }) }
            </div>
        },
        Some(Ok(Answer::Series(series))) => match p.kind {
            PanelKind::Timeseries => {
                let chart: Vec<ChartSeries> = series
                    .iter()
                    .map(|(s, tpl)| ChartSeries {
                        key: series_name(&s.labels),
                        name: name_of(s, tpl, &vars),
                        points: s.points.clone(),
                    })
                    .collect();
                let thresholds: Vec<ChartThreshold> = p
                    .thresholds
                    .iter()
                    .map(|t| ChartThreshold {
                        value: t.value,
                        color: palette::named(&t.color),
                    })
                    .collect();
                html! {
                    <TimeSeriesChart id={format!("panel-{}-chart", props.index)} series={Rc::new(chart)}
                        start={props.start} end={props.end} step={props.step} {unit} stacked={p.stack}
                        height={u32::from(body_height).saturating_sub(40).max(80)}
                        thresholds={Rc::new(thresholds)} on_zoom={props.on_zoom.clone()} />
                }
            }
            PanelKind::Heatmap => {
                let buckets: Vec<Series> = series.iter().map(|(s, _)| s.clone()).collect();
                html! { <Heatmap id={format!("panel-{}-heatmap", props.index)} series={Rc::new(buckets)}
                start={props.start} end={props.end} {unit} height={u32::from(body_height)} /> }
            }
            PanelKind::Stat => html! {
                <div class="stats">{ for series.iter().map(|(s, tpl)| {
                    let v = last_value(s);
                    let c = threshold_color(&p.thresholds, v);
                    html! {
                        <div class="stat">
                            <div class="stat-value" style={format!("color:{}", palette::css(c))}>{ unit.format(v) }</div>
                            if series.len() > 1 { <div class="stat-name">{ name_of(s, tpl, &vars) }</div> }
                        </div>
                    }
                }) }</div>
            },
            PanelKind::Gauge => {
                let max_default = match unit {
                    Unit::Percent => 100.0,
                    Unit::Ratio => 1.0,
                    _ => {
                        series
                            .iter()
                            .map(|(s, _)| last_value(s))
                            .fold(0.0, f64::max)
                            * 1.2
                    }
                };
                html! {
                    <div class="stats">{ for series.iter().map(|(s, tpl)| {
                        let v = last_value(s);
                        gauge(v, p.min.unwrap_or(0.0), p.max.unwrap_or(max_default), unit,
                            threshold_color(&p.thresholds, v), &name_of(s, tpl, &vars))
                    }) }</div>
                }
            }
            PanelKind::Bar => {
                let max = p.max.unwrap_or_else(|| {
                    series
                        .iter()
                        .map(|(s, _)| last_value(s))
                        .filter(|v| v.is_finite())
                        .fold(0.0, f64::max)
                });
                let min = p.min.unwrap_or(0.0);
                html! {
                    <div class="bars">{ for series.iter().map(|(s, tpl)| {
                        let v = last_value(s);
                        let f = if max > min { ((v - min) / (max - min)).clamp(0.0, 1.0) } else { 0.0 };
                        let c = threshold_color(&p.thresholds, v);
                        html! {
                            <div class="bar-row">
                                <span class="bar-name">{ name_of(s, tpl, &vars) }</span>
                                <span class="bar-track"><span class="bar-fill"
                                    style={format!("width:{:.1}%;background:{}", f * 100.0, palette::css(c))}></span></span>
                                <span class="bar-value">{ unit.format(v) }</span>
                            </div>
                        }
                    }) }</div>
                }
            }
            PanelKind::Table | PanelKind::Logs => html! {
                <div class="table-wrap" style={format!("max-height:{body_height}px")}>
                    <table class="data">
                        <thead><tr><th>{ "Series" }</th><th>{ "Value" }</th></tr></thead>
                        <tbody>{ for series.iter().map(|(s, tpl)| html! {
                            <tr><td class="mono">{ name_of(s, tpl, &vars) }</td>
                                <td class="num">{ unit.format(last_value(s)) }</td></tr>
                        }) }</tbody>
                    </table>
                </div>
            },
        },
    };
    let interval = Interval {
        step: props.step,
        range: props.end - props.start,
    };
    let title = interpolate(&p.title, &vars, interval);
    // Open the panel's first query where it can be explored further, with
    // the variables filled in.
    let explore = p.targets.first().map(|t| {
        let q = interpolate(&t.expr, &vars, interval);
        let (path, param) = match t.source {
            Source::Prometheus => ("/explore", "q"),
            Source::Loki => ("/logs", "q"),
        };
        crate::route::Location::new(path)
            .with(param, &q)
            .with_time_range(&crate::timerange::TimeRange::Fixed {
                from: props.start.floor(),
                to: props.end.ceil(),
            })
            .to_hash()
    });
    html! {
        <div class={classes!("panel", format!("panel-{}", p.kind.id()))} id={format!("panel-{}", props.index)}
            style={format!("grid-column: span {}; min-height:{}px", p.width, p.height)}>
            <div class="panel-title" title={p.description.clone()}>
                { title }
                if answer.loading { <span class="spinner">{ " …" }</span> }
                if let Some(href) = explore {
                    <a class="panel-explore" {href} title="open the query in Explore or Logs">{ "explore" }</a>
                }
            </div>
            { body }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_pick_the_highest_step_reached() {
        let t = vec![
            dashboards::Threshold {
                value: 50.0,
                color: "orange".into(),
            },
            dashboards::Threshold {
                value: 90.0,
                color: "red".into(),
            },
        ];
        assert_eq!(threshold_color(&t, 10.0), palette::named("green"));
        assert_eq!(threshold_color(&t, 50.0), palette::named("orange"));
        assert_eq!(threshold_color(&t, 95.0), palette::named("red"));
        assert_eq!(threshold_color(&[], 95.0), palette::named("green"));
    }
}
