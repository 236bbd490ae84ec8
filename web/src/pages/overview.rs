//! Overview: the cluster at a glance, from the metrics the agent collects
//! under their usual names (node_exporter, cAdvisor, etcd, Vigil's own):
//! nodes, the busiest pods, etcd health, firing alerts and ingest rates.

use crate::alerts_api::{fetch_alerts, Alert};
use crate::api::ApiError;
use crate::chart::{ChartSeries, TimeSeriesChart};
use crate::loader::{error_box, use_loader, use_tick};
use crate::route::Location;
use crate::series::{query_instant, query_range, series_name, LabelSet};
use crate::time_controls::refresh_ms;
use crate::units::Unit;
use std::collections::BTreeMap;
use std::rc::Rc;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub loc: Location,
    pub navigate: Callback<Location>,
}

pub const NODE_CPU: &str =
    r#"100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[2m])))"#;
pub const NODE_MEMORY: &str =
    "100 * (1 - max by (instance) (node_memory_MemAvailable_bytes) / max by (instance) (node_memory_MemTotal_bytes))";
pub const NODE_DISK: &str = r#"100 * max by (instance) (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs"})"#;
pub const NODE_LOAD: &str = "max by (instance) (node_load1)";
const POD_CPU: &str = r#"topk(10, sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{container!=""}[2m])))"#;
const POD_MEMORY: &str =
    r#"sum by (namespace, pod) (container_memory_working_set_bytes{container!=""})"#;
const POD_RESTARTS: &str =
    r#"sum by (namespace, pod) (changes(container_start_time_seconds{container!=""}[1h]))"#;
const ETCD_LEADER: &str = "max by (instance) (etcd_server_has_leader)";
const ETCD_CHANGES: &str =
    "max by (instance) (increase(etcd_server_leader_changes_seen_total[1h]))";
const ETCD_FSYNC: &str = "histogram_quantile(0.99, sum by (instance, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[5m])))";
const ETCD_DB: &str = "max by (instance) (etcd_mvcc_db_total_size_in_bytes)";
const INGEST: &str = "sum(rate(vigil_head_samples_appended_total[2m]))";

/// An instant query's answer keyed by the listed labels' values.
async fn by_labels(
    q: &str,
    keys: &[&str],
    now: f64,
) -> Result<BTreeMap<Vec<String>, f64>, ApiError> {
    let series = query_instant(q, now).await?.series().map_err(ApiError)?;
    Ok(series
        .into_iter()
        .filter_map(|s| {
            let key = keys
                .iter()
                .map(|k| s.labels.get(*k).cloned().unwrap_or_default())
                .collect();
            s.points.last().map(|p| (key, p.1))
        })
        .collect())
}

#[derive(Clone, PartialEq)]
struct NodeRow {
    instance: String,
    cpu: Option<f64>,
    memory: Option<f64>,
    disk: Option<f64>,
    load: Option<f64>,
}

async fn load_nodes(now: f64) -> Result<Vec<NodeRow>, ApiError> {
    let k = ["instance"];
    let cpu = by_labels(NODE_CPU, &k, now).await?;
    let mem = by_labels(NODE_MEMORY, &k, now).await?;
    let disk = by_labels(NODE_DISK, &k, now).await?;
    let load = by_labels(NODE_LOAD, &k, now).await?;
    let mut names: Vec<&Vec<String>> = cpu.keys().chain(mem.keys()).chain(load.keys()).collect();
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .map(|n| NodeRow {
            instance: n[0].clone(),
            cpu: cpu.get(n).copied(),
            memory: mem.get(n).copied(),
            disk: disk.get(n).copied(),
            load: load.get(n).copied(),
        })
        .collect())
}

#[derive(Clone, PartialEq)]
struct PodRow {
    namespace: String,
    pod: String,
    cpu: f64,
    memory: Option<f64>,
    restarts: Option<f64>,
}

async fn load_pods(now: f64) -> Result<Vec<PodRow>, ApiError> {
    let k = ["namespace", "pod"];
    let cpu = by_labels(POD_CPU, &k, now).await?;
    let mem = by_labels(POD_MEMORY, &k, now).await?;
    let restarts = by_labels(POD_RESTARTS, &k, now).await?;
    let mut rows: Vec<PodRow> = cpu
        .iter()
        .map(|(key, v)| PodRow {
            namespace: key[0].clone(),
            pod: key[1].clone(),
            cpu: *v,
            memory: mem.get(key).copied(),
            restarts: restarts.get(key).copied(),
        })
        .collect();
    rows.sort_by(|a, b| b.cpu.total_cmp(&a.cpu));
    Ok(rows)
}

#[derive(Clone, PartialEq)]
struct EtcdRow {
    instance: String,
    leader: Option<f64>,
    changes: Option<f64>,
    fsync: Option<f64>,
    db: Option<f64>,
}

async fn load_etcd(now: f64) -> Result<Vec<EtcdRow>, ApiError> {
    let k = ["instance"];
    let leader = by_labels(ETCD_LEADER, &k, now).await?;
    let changes = by_labels(ETCD_CHANGES, &k, now).await?;
    let fsync = by_labels(ETCD_FSYNC, &k, now).await?;
    let db = by_labels(ETCD_DB, &k, now).await?;
    Ok(leader
        .iter()
        .map(|(key, v)| EtcdRow {
            instance: key[0].clone(),
            leader: Some(*v),
            changes: changes.get(key).copied(),
            fsync: fsync.get(key).copied(),
            db: db.get(key).copied(),
        })
        .collect())
}

fn cell(v: Option<f64>, unit: Unit) -> Html {
    match v {
        Some(v) => html! { <td class="num">{ unit.format(v) }</td> },
        None => html! { <td class="num muted">{ "–" }</td> },
    }
}

/// A percentage with a bar behind it, coloured by how full it is.
fn usage(v: Option<f64>) -> Html {
    match v.filter(|v| v.is_finite()) {
        Some(v) => {
            let level = if v >= 90.0 {
                "crit"
            } else if v >= 75.0 {
                "warn"
            } else {
                "ok"
            };
            html! {
                <td class="num usage">
                    <span class={classes!("bar", level)} style={format!("width:{:.0}%", v.clamp(0.0, 100.0))}></span>
                    <span class="usage-value">{ Unit::Percent.format(v) }</span>
                </td>
            }
        }
        None => html! { <td class="num muted">{ "–" }</td> },
    }
}

fn explore_link(q: &str, text: Html) -> Html {
    let href = Location::new("/explore").with("q", q).to_hash();
    html! { <a {href}>{ text }</a> }
}

fn section<T: Clone + PartialEq>(
    loaded: &crate::loader::Loaded<T>,
    empty: &str,
    is_empty: impl Fn(&T) -> bool,
    render: impl Fn(&T) -> Html,
) -> Html {
    match &loaded.value {
        None => html! { <div class="placeholder">{ "loading…" }</div> },
        Some(Err(e)) => error_box(e),
        Some(Ok(v)) if is_empty(v) => html! { <p class="empty">{ empty.to_string() }</p> },
        Some(Ok(v)) => render(v),
    }
}

fn alert_labels(labels: &LabelSet) -> String {
    labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[function_component(Overview)]
pub fn overview(props: &Props) -> Html {
    // The overview follows "now": refresh every 30 s unless the URL says otherwise.
    let tick = use_tick(refresh_ms(&props.loc).or(Some(30_000)));
    let nodes = use_loader(tick, |_| load_nodes(crate::time::now()));
    let pods = use_loader(tick, |_| load_pods(crate::time::now()));
    let etcd = use_loader(tick, |_| load_etcd(crate::time::now()));
    let alerts = use_loader(tick, |_| fetch_alerts());
    let ingest = use_loader(tick, |_| async {
        let now = crate::time::now();
        let (start, end, step) = (now - 3600.0, now, 15.0);
        let d = query_range(INGEST, start, end, step).await?;
        let s = d.series().map_err(ApiError)?;
        Ok((s, start, end, step))
    });

    let firing: Vec<Alert> = match &alerts.value {
        Some(Ok(a)) => a.iter().filter(|a| a.state == "firing").cloned().collect(),
        _ => Vec::new(),
    };
    let node_count = match &nodes.value {
        Some(Ok(n)) => n.len().to_string(),
        _ => "–".into(),
    };
    let ingest_now = match &ingest.value {
        Some(Ok((s, ..))) => s
            .first()
            .and_then(|s| s.points.last())
            .map(|p| Unit::PerSecond.format(p.1))
            .unwrap_or_else(|| "–".into()),
        _ => "–".into(),
    };

    html! {
        <section class="page overview">
            <h2>{ "Overview" }</h2>
            <div class="cards">
                <a class="card" id="card-nodes" href="#/d/node">
                    <div class="card-title">{ "Nodes" }</div>
                    <div class="card-value">{ node_count }</div>
                </a>
                <a class={classes!("card", (!firing.is_empty()).then_some("card-alert"))} id="card-firing" href="#/alerts">
                    <div class="card-title">{ "Firing alerts" }</div>
                    <div class="card-value">{ if alerts.value.is_some() { firing.len().to_string() } else { "–".into() } }</div>
                </a>
                { explore_card("card-ingest", "Samples ingested/s", ingest_now, INGEST) }
            </div>

            <h3>{ "Nodes" }</h3>
            { section(&nodes, "No node metrics yet: is the agent running?", |n: &Vec<NodeRow>| n.is_empty(), |rows| html! {
                <table class="data" id="nodes-table">
                    <thead><tr><th>{ "Node" }</th><th>{ "CPU" }</th><th>{ "Memory" }</th><th>{ "Disk (fullest)" }</th><th>{ "Load 1m" }</th></tr></thead>
                    <tbody>{ for rows.iter().map(|r| {
                        let q = format!("{{instance=\"{}\", job=~\".+\"}}", r.instance);
                        let cpu = Location::new("/d/node").with("var-instance", &r.instance).to_hash();
                        html! {
                            <tr class="node-row">
                                <td><a href={cpu} class="node-name">{ r.instance.clone() }</a>
                                    { " " }{ explore_link(&q, html! { <small>{ "all series" }</small> }) }</td>
                                { usage(r.cpu) }{ usage(r.memory) }{ usage(r.disk) }{ cell(r.load, Unit::None) }
                            </tr>
                        }
                    }) }</tbody>
                </table>
            }) }

            <div class="columns">
                <div>
                    <h3>{ "Busiest pods" }</h3>
                    { section(&pods, "No pod metrics (cAdvisor-style container_* series) yet.", |p: &Vec<PodRow>| p.is_empty(), |rows| html! {
                        <table class="data" id="pods-table">
                            <thead><tr><th>{ "Pod" }</th><th>{ "CPU (cores)" }</th><th>{ "Memory" }</th><th>{ "Restarts 1h" }</th></tr></thead>
                            <tbody>{ for rows.iter().map(|r| {
                                let href = Location::new("/d/pods")
                                    .with("var-namespace", &r.namespace)
                                    .with("var-pod", &r.pod)
                                    .to_hash();
                                html! {
                                    <tr>
                                        <td><a {href} class="pod-link">{ format!("{}/{}", r.namespace, r.pod) }</a></td>
                                        { cell(Some(r.cpu), Unit::None) }{ cell(r.memory, Unit::Bytes) }
                                        <td class={classes!("num", r.restarts.is_some_and(|n| n > 0.0).then_some("warn-text"))}>
                                            { r.restarts.map(|n| format!("{n:.0}")).unwrap_or_else(|| "–".into()) }</td>
                                    </tr>
                                }
                            }) }</tbody>
                        </table>
                    }) }
                </div>
                <div>
                    <h3>{ "etcd" }</h3>
                    { section(&etcd, "No etcd metrics.", |e: &Vec<EtcdRow>| e.is_empty(), |rows| html! {
                        <table class="data" id="etcd-table">
                            <thead><tr><th>{ "Member" }</th><th>{ "Leader" }</th><th>{ "Leader changes 1h" }</th><th>{ "WAL fsync p99" }</th><th>{ "DB size" }</th></tr></thead>
                            <tbody>{ for rows.iter().map(|r| html! {
                                <tr>
                                    <td><a href={Location::new("/d/etcd").with("var-instance", &r.instance).to_hash()}>{ r.instance.clone() }</a></td>
                                    <td class={if r.leader == Some(1.0) { "ok-text" } else { "crit-text" }}>
                                        { if r.leader == Some(1.0) { "yes" } else { "NO LEADER" } }</td>
                                    { cell(r.changes, Unit::None) }{ cell(r.fsync, Unit::Seconds) }{ cell(r.db, Unit::Bytes) }
                                </tr>
                            }) }</tbody>
                        </table>
                    }) }
                </div>
            </div>

            <h3>{ "Firing alerts" }</h3>
            { section(&alerts, "Nothing is firing.", |_| firing.is_empty(), |_| html! {
                <ul class="alert-list" id="firing-alerts">{ for firing.iter().map(|a| html! {
                    <li class={classes!("alert-item", a.severity_class())}>
                        <a href="#/alerts"><b>{ a.name() }</b></a>{ " " }
                        <span class="mono">{ alert_labels(&a.labels) }</span>
                        <span class="muted">{ format!(" since {}", a.active_at.as_deref().unwrap_or("?")) }</span>
                        if let Some(s) = a.annotations.get("summary") { <div>{ s.clone() }</div> }
                    </li>
                }) }</ul>
            }) }

            <h3>{ "Ingest rate (samples/s, last hour)" }</h3>
            { section(&ingest, "No ingest yet.", |_| false, |(s, start, end, step)| {
                let series: Vec<ChartSeries> = s.iter().map(|s| ChartSeries {
                    key: series_name(&s.labels), name: "samples/s".into(), points: s.points.clone(),
                }).collect();
                html! { <TimeSeriesChart id="ingest-chart" series={Rc::new(series)} start={*start} end={*end}
                    step={*step} unit={Unit::PerSecond} height={200} /> }
            }) }
        </section>
    }
}

fn explore_card(id: &'static str, title: &'static str, value: String, q: &str) -> Html {
    let href = Location::new("/explore").with("q", q).to_hash();
    html! {
        <a class="card" {id} {href}>
            <div class="card-title">{ title }</div>
            <div class="card-value">{ value }</div>
        </a>
    }
}
