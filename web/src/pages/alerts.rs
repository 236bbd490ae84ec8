//! Alerts: pending and firing alerts with their labels and annotations,
//! silences (create from an alert, list, expire) and the rules with their
//! state and health.

use crate::alerts_api::{
    create_silence, expire_silence, fetch_alerts, fetch_rules, fetch_silences, format_matchers,
    parse_matchers, rfc3339, Alert, Matcher, NewSilence, Silence,
};
use crate::api::ApiError;
use crate::form::value_of;
use crate::loader::{error_box, use_loader, use_tick};
use crate::route::Location;
use crate::time_controls::refresh_ms;
use crate::units::Unit;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub loc: Location,
    pub navigate: Callback<Location>,
}

const DURATIONS: [(&str, f64); 5] = [
    ("1h", 3600.0),
    ("2h", 7200.0),
    ("12h", 43200.0),
    ("1d", 86400.0),
    ("7d", 604800.0),
];

fn labels_html(labels: &crate::series::LabelSet) -> Html {
    html! {
        <span class="labels">{ for labels.iter().map(|(k, v)| html! {
            <span class="label-chip">{ format!("{k}={v}") }</span>
        }) }</span>
    }
}

#[derive(Properties, PartialEq)]
struct FormProps {
    matchers: String,
    on_done: Callback<String>,
}

#[function_component(SilenceForm)]
fn silence_form(props: &FormProps) -> Html {
    let matchers = use_node_ref();
    let duration = use_node_ref();
    let author = use_node_ref();
    let comment = use_node_ref();
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let onsubmit = {
        let (matchers, duration, author, comment) = (
            matchers.clone(),
            duration.clone(),
            author.clone(),
            comment.clone(),
        );
        let error = error.clone();
        let busy = busy.clone();
        let on_done = props.on_done.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let ms = match parse_matchers(&value_of(&matchers)) {
                Ok(m) => m,
                Err(e) => {
                    error.set(Some(format!("matchers: {e}")));
                    return;
                }
            };
            let d = value_of(&duration);
            let secs = DURATIONS
                .iter()
                .find(|(t, _)| *t == d)
                .map_or(7200.0, |x| x.1);
            let now = crate::time::now();
            let new = NewSilence {
                matchers: ms,
                starts_at: rfc3339(now),
                ends_at: rfc3339(now + secs),
                created_by: value_of(&author),
                comment: value_of(&comment),
            };
            let error = error.clone();
            let busy = busy.clone();
            let on_done = on_done.clone();
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                match create_silence(&new).await {
                    Ok(id) => {
                        error.set(None);
                        on_done.emit(id);
                    }
                    Err(e) => error.set(Some(e.to_string())),
                }
                busy.set(false);
            });
        })
    };
    html! {
        <form class="silence-form" id="silence-form" {onsubmit}>
            <label>{ "Matchers" }
                <input id="silence-matchers" ref={matchers} value={props.matchers.clone()} required=true
                    placeholder={r#"alertname="HighLoad", instance="node-1""#} /></label>
            <label>{ "Duration" }
                <select id="silence-duration" ref={duration}>
                    { for DURATIONS.iter().map(|(t, _)| html! { <option value={*t} selected={*t == "2h"}>{ *t }</option> }) }
                </select></label>
            <label>{ "Created by" }<input id="silence-author" ref={author} value="dashboard" required=true /></label>
            <label>{ "Comment" }<input id="silence-comment" ref={comment} placeholder="why" required=true /></label>
            <button type="submit" id="silence-create" disabled={*busy}>{ "Create silence" }</button>
            if let Some(e) = &*error { <div class="error-box" role="alert">{ e.clone() }</div> }
        </form>
    }
}

#[function_component(Alerts)]
pub fn alerts(props: &Props) -> Html {
    let changed = use_state(|| 0u32);
    let tick = use_tick(refresh_ms(&props.loc).or(Some(15_000)));
    let alerts = use_loader((tick, *changed), |_| fetch_alerts());
    let silences = use_loader((tick, *changed), |_| fetch_silences());
    let rules = use_loader(tick, |_| fetch_rules());
    let form = use_state(|| None::<String>);
    let expire_error = use_state(|| None::<ApiError>);

    let active_silences: Vec<Silence> = match &silences.value {
        Some(Ok(s)) => s
            .iter()
            .filter(|s| s.status.state == "active")
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let open_form = |matchers: String| {
        let form = form.clone();
        Callback::from(move |_: MouseEvent| form.set(Some(matchers.clone())))
    };
    let on_done = {
        let form = form.clone();
        let changed = changed.clone();
        Callback::from(move |_id: String| {
            form.set(None);
            changed.set(*changed + 1);
        })
    };

    let alert_list = match &alerts.value {
        None => html! { <div class="placeholder">{ "loading…" }</div> },
        Some(Err(e)) => error_box(e),
        Some(Ok(list)) if list.is_empty() => {
            html! { <p class="empty">{ "No pending or firing alerts." }</p> }
        }
        Some(Ok(list)) => {
            let mut list: Vec<&Alert> = list.iter().collect();
            list.sort_by_key(|a| (a.state != "firing", a.name()));
            html! {
                <ul class="alert-list" id="alert-list">{ for list.into_iter().map(|a| {
                    let silenced_by: Vec<&Silence> = active_silences.iter().filter(|s| s.silences(a)).collect();
                    let matchers: Vec<Matcher> = a.labels.iter().map(|(k, v)| Matcher {
                        name: k.clone(), value: v.clone(), is_regex: false, is_equal: true,
                    }).collect();
                    let value = a.value.parse::<f64>().map(|v| Unit::None.format(v)).unwrap_or_else(|_| a.value.clone());
                    html! {
                        <li class={classes!("alert-item", a.severity_class(), format!("state-{}", a.state))}
                            data-alertname={a.name()}>
                            <div class="alert-head">
                                <span class={classes!("badge", format!("badge-{}", a.state))}>{ a.state.clone() }</span>
                                if !silenced_by.is_empty() { <span class="badge badge-silenced">{ "silenced" }</span> }
                                <b>{ a.name() }</b>
                                <span class="muted">{ format!(" active since {} · value {value}", a.active_at.as_deref().unwrap_or("?")) }</span>
                                <button class="small silence-button" onclick={open_form(format_matchers(&matchers))}>{ "Silence…" }</button>
                            </div>
                            { labels_html(&a.labels) }
                            if !a.annotations.is_empty() {
                                <dl class="annotations">{ for a.annotations.iter().map(|(k, v)| html! {
                                    <><dt>{ k.clone() }</dt><dd>{ v.clone() }</dd></>
                                }) }</dl>
                            }
                        </li>
                    }
                }) }</ul>
            }
        }
    };

    let silence_list = match &silences.value {
        None => html! { <div class="placeholder">{ "loading…" }</div> },
        Some(Err(e)) => error_box(e),
        Some(Ok(list)) if list.is_empty() => html! { <p class="empty">{ "No silences." }</p> },
        Some(Ok(list)) => html! {
            <table class="data" id="silences-table">
                <thead><tr><th>{ "State" }</th><th>{ "Matchers" }</th><th>{ "Ends" }</th><th>{ "Created by" }</th><th>{ "Comment" }</th><th></th></tr></thead>
                <tbody>{ for list.iter().map(|s| {
                    let expire = {
                        let id = s.id.clone();
                        let changed = changed.clone();
                        let expire_error = expire_error.clone();
                        Callback::from(move |_: MouseEvent| {
                            let id = id.clone();
                            let changed = changed.clone();
                            let expire_error = expire_error.clone();
                            wasm_bindgen_futures::spawn_local(async move {
                                match expire_silence(&id).await {
                                    Ok(()) => { expire_error.set(None); changed.set(*changed + 1) }
                                    Err(e) => expire_error.set(Some(e)),
                                }
                            });
                        })
                    };
                    html! {
                        <tr class={format!("silence-{}", s.status.state)} data-id={s.id.clone()}>
                            <td><span class={classes!("badge", format!("badge-{}", s.status.state))}>{ s.status.state.clone() }</span></td>
                            <td class="mono">{ format_matchers(&s.matchers) }</td>
                            <td>{ s.ends_at.clone() }</td>
                            <td>{ s.created_by.clone() }</td>
                            <td>{ s.comment.clone() }</td>
                            <td>if s.status.state != "expired" { <button class="small expire-button" onclick={expire}>{ "Expire" }</button> }</td>
                        </tr>
                    }
                }) }</tbody>
            </table>
        },
    };

    let rule_list = match &rules.value {
        None => html! { <div class="placeholder">{ "loading…" }</div> },
        Some(Err(e)) => error_box(e),
        Some(Ok(groups)) if groups.is_empty() => {
            html! { <p class="empty">{ "No rules loaded (server config: rule_files)." }</p> }
        }
        Some(Ok(groups)) => html! {
            <div id="rule-groups">{ for groups.iter().map(|g| html! {
                <details class="rule-group" open=true>
                    <summary><b>{ g.name.clone() }</b>
                        <span class="muted">{ format!(" {} · every {}", g.file, Unit::Seconds.format(g.interval)) }</span></summary>
                    <table class="data">
                        <thead><tr><th>{ "Rule" }</th><th>{ "State" }</th><th>{ "Health" }</th><th>{ "Query" }</th><th>{ "Eval time" }</th></tr></thead>
                        <tbody>{ for g.rules.iter().map(|r| {
                            let q = Location::new("/explore").with("q", &r.query).to_hash();
                            html! {
                                <tr class="rule-row">
                                    <td>{ r.name.clone() }<div class="muted small">{ r.kind.clone() }</div></td>
                                    <td>if let Some(s) = &r.state { <span class={classes!("badge", format!("badge-{s}"))}>{ s.clone() }</span> }</td>
                                    <td class={if r.health == "ok" { "ok-text" } else if r.health == "err" { "crit-text" } else { "muted" }}>
                                        { r.health.clone() }
                                        if !r.last_error.is_empty() { <div class="error-text small">{ r.last_error.clone() }</div> }
                                    </td>
                                    <td class="mono"><a href={q}>{ r.query.clone() }</a></td>
                                    <td class="num">{ Unit::Seconds.format(r.evaluation_time) }</td>
                                </tr>
                            }
                        }) }</tbody>
                    </table>
                </details>
            }) }</div>
        },
    };

    let new_silence = {
        let form = form.clone();
        Callback::from(move |_: MouseEvent| form.set(Some(String::new())))
    };
    html! {
        <section class="page alerts">
            <h2>{ "Alerts" }</h2>
            { alert_list }
            <h3>{ "Silences " }<button class="small" id="new-silence" onclick={new_silence}>{ "New silence" }</button></h3>
            if let Some(m) = &*form { <SilenceForm matchers={m.clone()} on_done={on_done} /> }
            if let Some(e) = &*expire_error { { error_box(e) } }
            { silence_list }
            <h3>{ "Rules" }</h3>
            { rule_list }
        </section>
    }
}
