//! Dashboards: the list (built-in and saved), one dashboard with its
//! variables, time range and panels, its editor (JSON and an add-panel
//! form), and the import of Grafana dashboard JSON.

use crate::dashboards_api as dapi;
use crate::form::value_of;
use crate::loader::{error_box, use_loader, use_tick};
use crate::panels::PanelView;
use crate::route::Location;
use crate::time_controls::{refresh_ms, TimeControls};
use crate::timerange::TimeRange;
use crate::units::Unit;
use crate::variables::{options, select, Resolved, ALL};
use dashboards::{Dashboard, Panel, PanelKind, Source, Target, Variable};
use std::rc::Rc;
use wasm_bindgen::JsCast;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub loc: Location,
    pub navigate: Callback<Location>,
}

/// A uid from a title: `Team A / API` → `team-a-api`.
pub fn slug(title: &str) -> String {
    dashboards::validate::uid_from(title).unwrap_or_else(|| "dashboard".into())
}

#[function_component(DashboardList)]
pub fn dashboard_list(props: &Props) -> Html {
    let changed = use_state(|| 0u32);
    let list = use_loader(*changed, |_| dapi::list());
    let title = use_node_ref();
    let error = use_state(|| None::<String>);
    let on_create = {
        let title = title.clone();
        let error = error.clone();
        let navigate = props.navigate.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let t = value_of(&title).trim().to_string();
            if t.is_empty() {
                error.set(Some("give the dashboard a title".into()));
                return;
            }
            let d = Dashboard {
                uid: slug(&t),
                title: t,
                time: "1h".into(),
                ..Default::default()
            };
            let error = error.clone();
            let navigate = navigate.clone();
            wasm_bindgen_futures::spawn_local(async move {
                match dapi::save(&d).await {
                    Ok(()) => {
                        navigate.emit(Location::new(&format!("/d/{}", d.uid)).with("edit", "1"))
                    }
                    Err(e) => error.set(Some(e.to_string())),
                }
            });
        })
    };
    let body = match &list.value {
        None => html! { <div class="placeholder">{ "loading…" }</div> },
        Some(Err(e)) => error_box(e),
        Some(Ok(l)) => html! {
            <>
                <table class="data" id="dashboard-list">
                    <thead><tr><th>{ "Dashboard" }</th><th>{ "Tags" }</th><th></th></tr></thead>
                    <tbody>{ for l.dashboards.iter().map(|d| html! {
                        <tr class="dashboard-row">
                            <td><a href={format!("#/d/{}", d.uid)}>{ d.title.clone() }</a></td>
                            <td>{ for d.tags.iter().map(|t| html! { <span class="label-chip">{ t.clone() }</span> }) }</td>
                            <td class="muted">{ if d.builtin { "built in" } else { "saved" } }</td>
                        </tr>
                    }) }</tbody>
                </table>
                if !l.errors.is_empty() {
                    <div class="error-box" role="alert">
                        { "Dashboard files that could not be read:" }
                        <ul>{ for l.errors.iter().map(|e| html! { <li>{ format!("{}: {}", e.file, e.error) }</li> }) }</ul>
                    </div>
                }
            </>
        },
    };
    html! {
        <section class="page dashboards">
            <h2>{ "Dashboards" }</h2>
            <form class="toolbar" onsubmit={on_create}>
                <input id="new-dashboard-title" ref={title} placeholder="New dashboard title" aria-label="new dashboard title" />
                <button type="submit" id="new-dashboard">{ "Create" }</button>
                <a href="#/import" id="import-link">{ "Import a Grafana dashboard" }</a>
            </form>
            if let Some(e) = &*error { <div class="error-box" role="alert">{ e.clone() }</div> }
            { body }
        </section>
    }
}

/// Resolves every variable in order (later ones may use earlier ones).
async fn resolve(
    vars: Vec<Variable>,
    loc: Location,
    start: f64,
    end: f64,
) -> Result<Vec<Resolved>, crate::api::ApiError> {
    let mut out: Vec<Resolved> = Vec::new();
    for v in &vars {
        let opts = options(v, &out, start, end).await?;
        let selected = select(v, &opts, &loc.get_all(&format!("var-{}", v.name)));
        out.push(Resolved {
            name: v.name.clone(),
            options: opts,
            selected,
        });
    }
    Ok(out)
}

fn selected_values(e: &Event) -> Vec<String> {
    let Some(sel) = e
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok())
    else {
        return Vec::new();
    };
    let opts = sel.selected_options();
    (0..opts.length())
        .filter_map(|i| opts.item(i))
        .filter_map(|o| o.dyn_into::<web_sys::HtmlOptionElement>().ok())
        .map(|o| o.value())
        .collect()
}

#[derive(Properties, PartialEq)]
struct EditorProps {
    dashboard: Rc<Dashboard>,
    builtin: bool,
    on_saved: Callback<String>,
}

#[function_component(Editor)]
fn editor(props: &EditorProps) -> Html {
    let json = use_node_ref();
    let uid = use_node_ref();
    let p_title = use_node_ref();
    let p_type = use_node_ref();
    let p_expr = use_node_ref();
    let p_legend = use_node_ref();
    let p_unit = use_node_ref();
    let p_width = use_node_ref();
    let error = use_state(|| None::<String>);
    let default_uid = if props.builtin {
        format!("{}-copy", props.dashboard.uid)
    } else {
        props.dashboard.uid.clone()
    };
    let text = serde_json::to_string_pretty(&*props.dashboard).unwrap_or_default();

    let save_json = {
        let (json, uid, error, on_saved) = (
            json.clone(),
            uid.clone(),
            error.clone(),
            props.on_saved.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let target = value_of(&uid).trim().to_string();
            let mut doc: serde_json::Value = match serde_json::from_str(&value_of(&json)) {
                Ok(v) => v,
                Err(e) => {
                    error.set(Some(format!("the JSON does not parse: {e}")));
                    return;
                }
            };
            if let Some(o) = doc.as_object_mut() {
                o.insert("uid".into(), target.clone().into());
            }
            let (error, on_saved) = (error.clone(), on_saved.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match dapi::save_text(&target, &doc.to_string()).await {
                    Ok(()) => {
                        error.set(None);
                        on_saved.emit(target);
                    }
                    Err(e) => error.set(Some(e.to_string())),
                }
            });
        })
    };
    let add_panel = {
        let d = props.dashboard.clone();
        let refs = (
            p_title.clone(),
            p_type.clone(),
            p_expr.clone(),
            p_legend.clone(),
            p_unit.clone(),
            p_width.clone(),
        );
        let (uid, error, on_saved) = (uid.clone(), error.clone(), props.on_saved.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (t, k, x, l, u, w) = &refs;
            let kind = PanelKind::from_id(&value_of(k)).unwrap_or_default();
            let panel = Panel {
                title: value_of(t),
                kind,
                width: value_of(w).parse().unwrap_or(6),
                height: 260,
                unit: value_of(u),
                targets: vec![Target {
                    expr: value_of(x),
                    legend: value_of(l),
                    source: if kind == PanelKind::Logs {
                        Source::Loki
                    } else {
                        Source::Prometheus
                    },
                }],
                ..Default::default()
            };
            let mut d = (*d).clone();
            d.uid = value_of(&uid).trim().to_string();
            d.panels.push(panel);
            let (error, on_saved) = (error.clone(), on_saved.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match dapi::save(&d).await {
                    Ok(()) => {
                        error.set(None);
                        on_saved.emit(d.uid.clone());
                    }
                    Err(e) => error.set(Some(e.to_string())),
                }
            });
        })
    };
    html! {
        <div class="editor" id="dashboard-editor">
            <form class="add-panel" onsubmit={add_panel}>
                <b>{ "Add a panel" }</b>
                <label>{ "Title" }<input id="panel-title" ref={p_title} required=true /></label>
                <label>{ "Type" }<select id="panel-type" ref={p_type}>
                    { for PanelKind::ALL.iter().map(|k| html! { <option value={k.id()}>{ k.id() }</option> }) }
                </select></label>
                <label class="grow">{ "Query (PromQL, or LogQL for logs)" }<input id="panel-expr" ref={p_expr} required=true /></label>
                <label>{ "Legend" }<input id="panel-legend" ref={p_legend} placeholder="{{pod}}" /></label>
                <label>{ "Unit" }<select id="panel-unit" ref={p_unit}>
                    { for Unit::ALL.iter().map(|u| html! { <option value={u.id()}>{ u.id() }</option> }) }
                </select></label>
                <label>{ "Width" }<select id="panel-width" ref={p_width}>
                    { for [3u8, 4, 6, 8, 12].iter().map(|w| html! { <option value={w.to_string()} selected={*w == 6}>{ format!("{w}/12") }</option> }) }
                </select></label>
                <button type="submit" id="panel-add">{ "Add and save" }</button>
            </form>
            <label class="json-label">{ "The dashboard as JSON (the file kept on the server)" }
                <textarea id="dashboard-json" ref={json} rows="18" spellcheck="false" value={text} /></label>
            <div class="toolbar">
                <label>{ "Save as uid " }<input id="dashboard-uid" ref={uid} value={default_uid} /></label>
                <button id="dashboard-save" onclick={save_json}>{ "Save JSON" }</button>
            </div>
            if let Some(e) = &*error { <div class="error-box" role="alert" id="editor-error">{ e.clone() }</div> }
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct ViewProps {
    pub uid: AttrValue,
    pub loc: Location,
    pub navigate: Callback<Location>,
}

/// What the variables are resolved from: their definitions, the URL's
/// selections, the time range and the refresh tick.
type VarDeps = (Option<Vec<Variable>>, Vec<(String, String)>, TimeRange, u32);

#[function_component(DashboardView)]
pub fn dashboard_view(props: &ViewProps) -> Html {
    let saved = use_state(|| 0u32);
    let loaded = use_loader((props.uid.to_string(), *saved), |(uid, _)| async move {
        dapi::get(&uid).await
    });
    let d = match &loaded.value {
        Some(Ok(l)) => Some(Rc::new(l.dashboard.clone())),
        _ => None,
    };
    let builtin = matches!(&loaded.value, Some(Ok(l)) if l.builtin);
    // The URL's range wins; else the dashboard's default; refresh likewise.
    let has_range = props.loc.get("range").is_some() || props.loc.get("from").is_some();
    let range = match (&d, has_range) {
        (Some(d), false) => TimeRange::from_params(Some(&d.time), None, None),
        _ => props.loc.time_range(),
    };
    let refresh = refresh_ms(&props.loc).or_else(|| {
        d.as_ref()
            .and_then(|d| crate::timerange::parse_duration(&d.refresh).map(|s| (s * 1000.0) as u32))
    });
    let tick = use_tick(refresh);
    let now_bucket = tick;
    let var_params: Vec<(String, String)> = props
        .loc
        .params
        .iter()
        .filter(|(k, _)| k.starts_with("var-"))
        .cloned()
        .collect();
    let vars = use_loader(
        (
            d.as_ref().map(|d| d.variables.clone()),
            var_params,
            range.clone(),
            now_bucket,
        ),
        {
            let loc = props.loc.clone();
            move |(vs, _, range, _): VarDeps| {
                let loc = loc.clone();
                async move {
                    let (start, end) = range.resolve(crate::time::now());
                    resolve(vs.unwrap_or_default(), loc, start, end).await
                }
            }
        },
    );
    let editing = props.loc.get("edit") == Some("1");

    let Some(d) = d else {
        return match &loaded.value {
            Some(Err(e)) => html! { <section class="page"><h2>{ "Dashboard" }</h2>{ error_box(e) }
            <p><a href="#/dashboards">{ "All dashboards" }</a></p></section> },
            _ => {
                html! { <section class="page"><div class="placeholder">{ "loading…" }</div></section> }
            }
        };
    };
    let now = crate::time::now();
    let (start, end) = range.resolve(now);
    let step = range.step(now, 500.0);

    let on_zoom = {
        let loc = props.loc.clone();
        let navigate = props.navigate.clone();
        Callback::from(move |(from, to): (f64, f64)| {
            navigate.emit(loc.clone().with_time_range(&TimeRange::Fixed { from, to }))
        })
    };
    let var_bar = match &vars.value {
        Some(Ok(rs)) => html! {
            <div class="variables" id="variables">{ for rs.iter().zip(d.variables.iter()).map(|(r, v)| {
                let onchange = {
                    let loc = props.loc.clone();
                    let navigate = props.navigate.clone();
                    let key = format!("var-{}", v.name);
                    Callback::from(move |e: Event| {
                        let mut vals = selected_values(&e);
                        // Picking a value next to All means that value.
                        if vals.len() > 1 {
                            vals.retain(|x| x != ALL);
                        }
                        navigate.emit(loc.clone().with_all(&key, &vals));
                    })
                };
                let label = if v.label.is_empty() { v.name.clone() } else { v.label.clone() };
                html! {
                    <label class="variable">{ label }
                        <select id={format!("var-{}", v.name)} multiple={v.multi} {onchange}
                            size={if v.multi { r.options.len().clamp(2, 5).to_string() } else { "1".into() }}>
                            if v.include_all { <option value={ALL} selected={r.selected.iter().any(|s| s == ALL)}>{ "All" }</option> }
                            { for r.options.iter().map(|o| html! {
                                <option value={o.clone()} selected={r.selected.contains(o)}>{ o.clone() }</option>
                            }) }
                        </select>
                    </label>
                }
            }) }</div>
        },
        Some(Err(e)) => error_box(e),
        None => html! {},
    };
    let panels = match &vars.value {
        Some(Ok(rs)) => {
            let rs = Rc::new(rs.clone());
            html! {
                <div class="panel-grid" id="panels">
                    if d.panels.is_empty() { <p class="empty">{ "No panels yet: edit the dashboard to add one." }</p> }
                    { for d.panels.iter().enumerate().map(|(i, p)| html! {
                        <PanelView panel={Rc::new(p.clone())} index={i} vars={rs.clone()} {start} {end} {step}
                            tick={tick} on_zoom={Some(on_zoom.clone())} />
                    }) }
                </div>
            }
        }
        _ => html! { <div class="placeholder">{ "loading variables…" }</div> },
    };
    let toggle_edit = {
        let loc = props.loc.clone();
        let navigate = props.navigate.clone();
        Callback::from(move |_: MouseEvent| {
            navigate.emit(loc.clone().with("edit", if editing { "" } else { "1" }))
        })
    };
    let on_saved = {
        let navigate = props.navigate.clone();
        let saved = saved.clone();
        let loc = props.loc.clone();
        let current = props.uid.to_string();
        Callback::from(move |uid: String| {
            saved.set(*saved + 1);
            if uid != current {
                navigate.emit(Location::new(&format!("/d/{uid}")).with("edit", "1"));
            } else {
                navigate.emit(loc.clone());
            }
        })
    };
    let on_delete = {
        let uid = props.uid.to_string();
        let navigate = props.navigate.clone();
        Callback::from(move |_: MouseEvent| {
            let uid = uid.clone();
            let navigate = navigate.clone();
            wasm_bindgen_futures::spawn_local(async move {
                if dapi::delete(&uid).await.is_ok() {
                    navigate.emit(Location::new("/dashboards"));
                }
            });
        })
    };
    html! {
        <section class="page dashboard" data-uid={d.uid.clone()}>
            <div class="dashboard-head">
                <h2 id="dashboard-title">{ d.title.clone() }
                    if builtin { <span class="badge">{ "built in" }</span> }</h2>
                <a href="#/dashboards">{ "All dashboards" }</a>
                <button id="dashboard-edit" onclick={toggle_edit} aria-pressed={editing.to_string()}>
                    { if editing { "Done" } else { "Edit" } }</button>
                if editing && !builtin { <button id="dashboard-delete" onclick={on_delete}>{ "Delete" }</button> }
            </div>
            if !d.description.is_empty() { <p class="muted">{ d.description.clone() }</p> }
            <div class="toolbar">
                { var_bar }
                <TimeControls loc={props.loc.clone()} navigate={props.navigate.clone()} />
            </div>
            if editing { <Editor dashboard={d.clone()} builtin={builtin} on_saved={on_saved} /> }
            { panels }
        </section>
    }
}

#[function_component(ImportPage)]
pub fn import_page(props: &Props) -> Html {
    let text = use_node_ref();
    let uid = use_node_ref();
    let title = use_node_ref();
    let result = use_state(|| None::<Result<dapi::Imported, String>>);
    let save_error = use_state(|| None::<String>);
    let on_convert = {
        let (text, result) = (text.clone(), result.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let body = value_of(&text);
            let result = result.clone();
            wasm_bindgen_futures::spawn_local(async move {
                result.set(Some(
                    dapi::import_grafana(&body).await.map_err(|e| e.to_string()),
                ));
            });
        })
    };
    let on_save = {
        let (result, uid, title, save_error) = (
            result.clone(),
            uid.clone(),
            title.clone(),
            save_error.clone(),
        );
        let navigate = props.navigate.clone();
        Callback::from(move |_: MouseEvent| {
            let Some(Ok(i)) = &*result else { return };
            let mut d = i.dashboard.clone();
            d.uid = value_of(&uid).trim().to_string();
            d.title = value_of(&title).trim().to_string();
            let (save_error, navigate) = (save_error.clone(), navigate.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match dapi::save(&d).await {
                    Ok(()) => navigate.emit(Location::new(&format!("/d/{}", d.uid))),
                    Err(e) => save_error.set(Some(e.to_string())),
                }
            });
        })
    };
    let outcome = match &*result {
        None => html! {},
        Some(Err(e)) => {
            html! { <div class="error-box" role="alert" id="import-error">{ e.clone() }</div> }
        }
        Some(Ok(i)) => html! {
            <div id="import-result">
                <p>{ format!("{} panels and {} variables converted.", i.dashboard.panels.len(), i.dashboard.variables.len()) }</p>
                if i.unsupported.is_empty() {
                    <p class="ok-text" id="import-unsupported-none">{ "Everything in it is supported." }</p>
                } else {
                    <div class="warn-box">
                        { "Not imported:" }
                        <ul id="import-unsupported">{ for i.unsupported.iter().map(|u| html! { <li>{ u.clone() }</li> }) }</ul>
                    </div>
                }
                <div class="toolbar">
                    <label>{ "Title " }<input id="import-title" ref={title} value={i.dashboard.title.clone()} /></label>
                    <label>{ "uid " }<input id="import-uid" ref={uid} value={i.dashboard.uid.clone()} /></label>
                    <button id="import-save" onclick={on_save}>{ "Save dashboard" }</button>
                </div>
                if let Some(e) = &*save_error { <div class="error-box" role="alert">{ e.clone() }</div> }
            </div>
        },
    };
    html! {
        <section class="page import">
            <h2>{ "Import a Grafana dashboard" }</h2>
            <p class="muted">{ "Paste a dashboard's JSON (Share → Export, or a file from grafana.com). Time series, graph, stat, gauge, bar gauge, table, heatmap and logs panels with Prometheus or Loki queries are converted, with their variables; anything else is listed." }</p>
            <form onsubmit={on_convert}>
                <textarea id="import-json" ref={text} rows="14" spellcheck="false" aria-label="Grafana dashboard JSON" />
                <div class="toolbar"><button type="submit" id="import-convert">{ "Convert" }</button></div>
            </form>
            { outcome }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Team A / API"), "team-a-api");
        assert_eq!(slug("  "), "dashboard");
    }
}
