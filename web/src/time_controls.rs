//! The time range picker (relative or absolute) and the auto-refresh
//! choice, both written to the URL.

use crate::route::Location;
use crate::timerange::{parse_duration, TimeRange, RELATIVE};
use wasm_bindgen::JsCast;
use yew::prelude::*;

pub const REFRESH: [&str; 6] = ["off", "5s", "10s", "30s", "1m", "5m"];

/// The refresh period the URL asks for, in ms.
pub fn refresh_ms(loc: &Location) -> Option<u32> {
    loc.get("refresh")
        .and_then(parse_duration)
        .map(|s| (s * 1000.0) as u32)
        .filter(|ms| *ms >= 1000)
}

#[derive(Properties, PartialEq)]
pub struct Props {
    pub loc: Location,
    pub navigate: Callback<Location>,
}

fn select_value(e: &Event) -> String {
    e.target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok())
        .map(|s| s.value())
        .unwrap_or_default()
}

#[function_component(TimeControls)]
pub fn time_controls(props: &Props) -> Html {
    let range = props.loc.time_range();
    let custom = use_state(|| false);
    let from_ref = use_node_ref();
    let to_ref = use_node_ref();

    let on_range = {
        let loc = props.loc.clone();
        let navigate = props.navigate.clone();
        let custom = custom.clone();
        Callback::from(move |e: Event| {
            let v = select_value(&e);
            if v == "custom" {
                custom.set(true);
                return;
            }
            custom.set(false);
            let r = TimeRange::from_params(Some(&v), None, None);
            navigate.emit(loc.clone().with_time_range(&r));
        })
    };
    let on_refresh = {
        let loc = props.loc.clone();
        let navigate = props.navigate.clone();
        Callback::from(move |e: Event| {
            let v = select_value(&e);
            navigate.emit(
                loc.clone()
                    .with("refresh", if v == "off" { "" } else { &v }),
            );
        })
    };
    let on_apply = {
        let loc = props.loc.clone();
        let navigate = props.navigate.clone();
        let (from_ref, to_ref) = (from_ref.clone(), to_ref.clone());
        let custom = custom.clone();
        Callback::from(move |_: MouseEvent| {
            let read = |r: &NodeRef| {
                r.cast::<web_sys::HtmlInputElement>()
                    .and_then(|i| crate::time::from_input(&i.value()))
            };
            if let (Some(from), Some(to)) = (read(&from_ref), read(&to_ref)) {
                if to > from {
                    custom.set(false);
                    navigate.emit(loc.clone().with_time_range(&TimeRange::Fixed { from, to }));
                }
            }
        })
    };

    let selected = match &range {
        TimeRange::Last { text, .. } if !*custom => text.clone(),
        _ => "custom".into(),
    };
    let mut options: Vec<String> = RELATIVE.iter().map(|(t, _)| t.to_string()).collect();
    if !options.contains(&selected) && selected != "custom" {
        options.insert(0, selected.clone());
    }
    let refresh = props.loc.get("refresh").unwrap_or("off").to_string();
    let (start, end) = range.resolve(crate::time::now());
    html! {
        <div class="time-controls">
            <label>{ "Range " }
                <select id="time-range" onchange={on_range} aria-label="time range">
                    { for options.iter().map(|o| html! {
                        <option value={o.clone()} selected={*o == selected}>{ format!("Last {o}") }</option>
                    }) }
                    <option value="custom" selected={selected == "custom"}>
                        { if let TimeRange::Fixed { .. } = range { range.label() } else { "Absolute…".into() } }
                    </option>
                </select>
            </label>
            if *custom || matches!(range, TimeRange::Fixed { .. }) {
                <span class="absolute-range">
                    <input type="datetime-local" id="time-from" ref={from_ref}
                        value={crate::time::to_input(start)} aria-label="from" />
                    { " to " }
                    <input type="datetime-local" id="time-to" ref={to_ref}
                        value={crate::time::to_input(end)} aria-label="to" />
                    <button onclick={on_apply}>{ "Apply" }</button>
                </span>
            }
            <label>{ " Refresh " }
                <select id="refresh" onchange={on_refresh} aria-label="auto refresh">
                    { for REFRESH.iter().map(|r| html! {
                        <option value={*r} selected={refresh == *r}>{ *r }</option>
                    }) }
                </select>
            </label>
        </div>
    }
}
