//! Targets and Status: scrape targets and their health per agent; build
//! info, store statistics and cardinality by metric and label.

use crate::api::{get_json, prom_get};
use crate::loader::{error_box, use_loader, use_tick};
use crate::route::Location;
use crate::time_controls::refresh_ms;
use crate::units::Unit;
use serde::Deserialize;
use std::collections::BTreeMap;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub loc: Location,
    pub navigate: Callback<Location>,
}

/// Mirrors the server's `/api/vigil/status` JSON.
#[derive(Clone, PartialEq, Deserialize)]
pub struct StoreStatus {
    pub version: String,
    pub git_commit: String,
    pub data_dir: String,
    pub started_at: String,
    pub head_series: u64,
    pub samples_appended_total: u64,
    pub samples_rejected_total: u64,
    pub bytes_on_disk: u64,
}

#[derive(Clone, PartialEq, Deserialize)]
struct NameValue {
    name: String,
    value: u64,
}

#[derive(Clone, PartialEq, Deserialize)]
struct TsdbStatus {
    #[serde(rename = "seriesCountByMetricName")]
    by_metric: Vec<NameValue>,
    #[serde(rename = "labelValueCountByLabelName")]
    by_label: Vec<NameValue>,
}

#[derive(Clone, PartialEq, Deserialize)]
struct Target {
    labels: BTreeMap<String, String>,
    #[serde(rename = "scrapePool")]
    pool: String,
    #[serde(rename = "scrapeUrl")]
    url: String,
    health: String,
    #[serde(rename = "lastError", default)]
    last_error: String,
    #[serde(rename = "lastScrape", default)]
    last_scrape: String,
    #[serde(rename = "lastScrapeDuration", default)]
    duration: f64,
    /// Which agent scrapes it (Vigil's addition to Prometheus's shape).
    #[serde(default)]
    agent: String,
}

#[derive(Clone, PartialEq, Deserialize)]
struct TargetList {
    #[serde(rename = "activeTargets", default)]
    active: Vec<Target>,
}

fn counts_table(id: &str, title: &str, rows: &[NameValue]) -> Html {
    html! {
        <table class="data" id={id.to_string()}>
            <thead><tr><th>{ title.to_string() }</th><th>{ "Count" }</th></tr></thead>
            <tbody>{ for rows.iter().map(|r| html! {
                <tr><td class="mono">{ r.name.clone() }</td><td class="num">{ r.value }</td></tr>
            }) }</tbody>
        </table>
    }
}

#[function_component(Targets)]
pub fn targets(props: &Props) -> Html {
    let tick = use_tick(refresh_ms(&props.loc).or(Some(15_000)));
    let targets = use_loader(tick, |_| {
        prom_get::<TargetList>("/api/v1/targets?state=active")
    });
    let body = match &targets.value {
        None => html! { <div class="placeholder">{ "loading…" }</div> },
        Some(Err(e)) => error_box(e),
        Some(Ok(t)) if t.active.is_empty() => {
            html! { <p class="empty">{ "No agent has reported targets yet." }</p> }
        }
        Some(Ok(t)) => {
            // One section per agent, then per scrape pool.
            let mut by_pool: BTreeMap<(&str, &str), Vec<&Target>> = BTreeMap::new();
            for x in &t.active {
                by_pool
                    .entry((x.agent.as_str(), x.pool.as_str()))
                    .or_default()
                    .push(x);
            }
            html! { <div id="targets">{ for by_pool.into_iter().map(|((agent, pool), ts)| {
                let up = ts.iter().filter(|t| t.health == "up").count();
                let agent = if agent.is_empty() { "agent" } else { agent };
                html! {
                    <details class="target-pool" open=true>
                        <summary><span class="muted">{ format!("{agent} · ") }</span><b>{ pool.to_string() }</b>{ format!(" ({up}/{} up)", ts.len()) }</summary>
                        <table class="data">
                            <thead><tr><th>{ "Endpoint" }</th><th>{ "State" }</th><th>{ "Labels" }</th><th>{ "Last scrape" }</th><th>{ "Duration" }</th><th>{ "Error" }</th></tr></thead>
                            <tbody>{ for ts.iter().map(|t| html! {
                                <tr class="target-row">
                                    <td class="mono">{ t.url.clone() }</td>
                                    <td class={if t.health == "up" { "ok-text" } else { "crit-text" }}>{ t.health.clone() }</td>
                                    <td>{ for t.labels.iter().map(|(k, v)| html! { <span class="label-chip">{ format!("{k}={v}") }</span> }) }</td>
                                    <td>{ t.last_scrape.clone() }</td>
                                    <td class="num">{ Unit::Seconds.format(t.duration) }</td>
                                    <td class="error-text">{ t.last_error.clone() }</td>
                                </tr>
                            }) }</tbody>
                        </table>
                    </details>
                }
            }) }</div> }
        }
    };
    html! { <section class="page targets"><h2>{ "Targets" }</h2>{ body }</section> }
}

#[function_component(Status)]
pub fn status(props: &Props) -> Html {
    let tick = use_tick(refresh_ms(&props.loc).or(Some(5_000)));
    let store = use_loader(tick, |_| get_json::<StoreStatus>("/api/vigil/status"));
    let tsdb = use_loader(tick, |_| {
        prom_get::<TsdbStatus>("/api/v1/status/tsdb?limit=15")
    });
    let flags = use_loader((), |_| {
        prom_get::<BTreeMap<String, String>>("/api/v1/status/flags")
    });
    let store_html = match &store.value {
        None => html! { <div class="placeholder">{ "loading…" }</div> },
        Some(Err(e)) => error_box(e),
        Some(Ok(s)) => html! {
            <>
                <section class="cards">
                    { card("head-series", "Head series", s.head_series.to_string()) }
                    { card("samples-ingested", "Samples ingested", s.samples_appended_total.to_string()) }
                    { card("samples-rejected", "Samples rejected", s.samples_rejected_total.to_string()) }
                    { card("bytes-on-disk", "Bytes on disk", Unit::Bytes.format(s.bytes_on_disk as f64)) }
                </section>
                <table class="data" id="build-info">
                    <tbody>
                        <tr><th>{ "Version" }</th><td>{ s.version.clone() }</td></tr>
                        <tr><th>{ "Commit" }</th><td class="mono">{ s.git_commit.clone() }</td></tr>
                        <tr><th>{ "Data directory" }</th><td class="mono">{ s.data_dir.clone() }</td></tr>
                        <tr><th>{ "Started" }</th><td>{ s.started_at.clone() }</td></tr>
                    </tbody>
                </table>
            </>
        },
    };
    let tsdb_html = match &tsdb.value {
        None => html! { <div class="placeholder">{ "loading…" }</div> },
        Some(Err(e)) => error_box(e),
        Some(Ok(t)) => html! {
            <div class="columns">
                <div><h4>{ "Series by metric" }</h4>{ counts_table("cardinality-metrics", "Metric", &t.by_metric) }</div>
                <div><h4>{ "Values by label" }</h4>{ counts_table("cardinality-labels", "Label", &t.by_label) }</div>
            </div>
        },
    };
    html! {
        <section class="page status">
            <h2>{ "Status" }</h2>
            { store_html }
            <h3>{ "Cardinality" }</h3>
            { tsdb_html }
            <h3>{ "Configuration" }</h3>
            { match &flags.value {
                None => html! { <div class="placeholder">{ "loading…" }</div> },
                Some(Err(e)) => error_box(e),
                Some(Ok(f)) => html! {
                    <table class="data" id="configuration">
                        <thead><tr><th>{ "Setting (Prometheus flag name)" }</th><th>{ "Value" }</th></tr></thead>
                        <tbody>{ for f.iter().map(|(k, v)| html! {
                            <tr><td class="mono">{ k.clone() }</td><td class="mono">{ v.clone() }</td></tr>
                        }) }</tbody>
                    </table>
                },
            } }
        </section>
    }
}

fn card(id: &'static str, title: &'static str, value: String) -> Html {
    html! {
        <div class="card" id={id}>
            <div class="card-title">{ title }</div>
            <div class="card-value">{ value }</div>
        </div>
    }
}
