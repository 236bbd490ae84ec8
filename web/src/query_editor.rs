//! The PromQL query box: a textarea with completion of metric names,
//! functions, label names and label values from the server.

use crate::api::{enc, prom_get};
use crate::completion::{candidates, word_at, Context, FUNCTIONS};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub id: AttrValue,
    /// The query as the URL has it; the box resets to it when it changes.
    pub value: AttrValue,
    pub on_run: Callback<String>,
    #[prop_or_default]
    pub placeholder: AttrValue,
}

#[derive(Default)]
struct Pools {
    metrics: Vec<String>,
    labels: Vec<String>,
    values: HashMap<String, Vec<String>>,
    asked: std::collections::HashSet<String>,
}

#[derive(Clone, PartialEq)]
struct Open {
    items: Vec<String>,
    selected: usize,
    start: usize,
    cursor: usize,
}

fn textarea(e: &impl AsRef<web_sys::Event>) -> Option<web_sys::HtmlTextAreaElement> {
    use wasm_bindgen::JsCast;
    e.as_ref().target()?.dyn_into().ok()
}

#[function_component(QueryEditor)]
pub fn query_editor(props: &Props) -> Html {
    let text = use_state(|| props.value.to_string());
    let open = use_state(|| None::<Open>);
    let pools: Rc<RefCell<Pools>> = use_mut_ref(Pools::default);
    let refreshed = use_state(|| 0u32);
    let area = use_node_ref();

    {
        let text = text.clone();
        use_effect_with(props.value.clone(), move |v| text.set(v.to_string()));
    }
    {
        let pools = pools.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                if let Ok(m) = prom_get::<Vec<String>>("/api/v1/label/__name__/values").await {
                    pools.borrow_mut().metrics = m;
                }
                if let Ok(l) = prom_get::<Vec<String>>("/api/v1/labels").await {
                    pools.borrow_mut().labels = l;
                }
            });
        });
    }

    // Recomputes the dropdown for the text and cursor.
    let suggest = {
        let pools = pools.clone();
        let open = open.clone();
        let refreshed = refreshed.clone();
        Rc::new(move |value: &str, cursor: usize| {
            let Some(w) = word_at(value, cursor) else {
                open.set(None);
                return;
            };
            let p = pools.borrow();
            let items = match &w.context {
                Context::Name => candidates(
                    &w.prefix,
                    p.metrics
                        .iter()
                        .map(String::as_str)
                        .chain(FUNCTIONS.iter().copied()),
                    12,
                ),
                Context::LabelName => {
                    candidates(&w.prefix, p.labels.iter().map(String::as_str), 12)
                }
                Context::LabelValue(label) => match p.values.get(label) {
                    Some(v) => candidates(&w.prefix, v.iter().map(String::as_str), 12),
                    None => {
                        if !p.asked.contains(label) {
                            drop(p);
                            pools.borrow_mut().asked.insert(label.clone());
                            let pools = pools.clone();
                            let label = label.clone();
                            let refreshed = refreshed.clone();
                            wasm_bindgen_futures::spawn_local(async move {
                                let url = format!("/api/v1/label/{}/values", enc(&label));
                                if let Ok(v) = prom_get::<Vec<String>>(&url).await {
                                    pools.borrow_mut().values.insert(label, v);
                                    refreshed.set(*refreshed + 1);
                                }
                            });
                        }
                        Vec::new()
                    }
                },
            };
            open.set((!items.is_empty()).then_some(Open {
                items,
                selected: 0,
                start: w.start,
                cursor,
            }));
        })
    };

    // Label values arrived: offer them for the word being typed.
    {
        let suggest = suggest.clone();
        let area = area.clone();
        use_effect_with(*refreshed, move |n| {
            if *n > 0 {
                if let Some(a) = area.cast::<web_sys::HtmlTextAreaElement>() {
                    let cursor = a.selection_start().ok().flatten().unwrap_or(0) as usize;
                    suggest(&a.value(), cursor);
                }
            }
        });
    }

    let accept = {
        let text = text.clone();
        let open = open.clone();
        let area = area.clone();
        Rc::new(move |o: &Open, item: &str| {
            let chars: Vec<char> = text.chars().collect();
            let before: String = chars[..o.start.min(chars.len())].iter().collect();
            let after: String = chars[o.cursor.min(chars.len())..].iter().collect();
            let new = format!("{before}{item}{after}");
            let pos = (before.chars().count() + item.chars().count()) as u32;
            if let Some(a) = area.cast::<web_sys::HtmlTextAreaElement>() {
                a.set_value(&new);
                let _ = a.set_selection_range(pos, pos);
                let _ = a.focus();
            }
            text.set(new);
            open.set(None);
        })
    };

    let oninput = {
        let text = text.clone();
        let suggest = suggest.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(a) = textarea(&e) {
                let cursor = a.selection_start().ok().flatten().unwrap_or(0) as usize;
                let v = a.value();
                suggest(&v, cursor);
                text.set(v);
            }
        })
    };
    let onkeydown = {
        let open = open.clone();
        let accept = accept.clone();
        let on_run = props.on_run.clone();
        let text = text.clone();
        Callback::from(move |e: KeyboardEvent| {
            if let Some(o) = (*open).clone() {
                match e.key().as_str() {
                    "ArrowDown" | "ArrowUp" => {
                        e.prevent_default();
                        let n = o.items.len();
                        let selected = if e.key() == "ArrowDown" {
                            (o.selected + 1) % n
                        } else {
                            (o.selected + n - 1) % n
                        };
                        open.set(Some(Open { selected, ..o }));
                        return;
                    }
                    "Tab" | "Enter" => {
                        e.prevent_default();
                        let item = o.items[o.selected].clone();
                        accept(&o, &item);
                        return;
                    }
                    "Escape" => {
                        open.set(None);
                        return;
                    }
                    _ => {}
                }
            }
            if e.key() == "Enter" && !e.shift_key() {
                e.prevent_default();
                open.set(None);
                let v = textarea(&e)
                    .map(|a| a.value())
                    .unwrap_or_else(|| (*text).clone());
                on_run.emit(v);
            }
        })
    };
    let onblur = {
        let open = open.clone();
        // Let a click on a suggestion land first.
        Callback::from(move |_: FocusEvent| {
            let open = open.clone();
            gloo_timers::callback::Timeout::new(150, move || open.set(None)).forget();
        })
    };
    let run = {
        let on_run = props.on_run.clone();
        let text = text.clone();
        Callback::from(move |_: MouseEvent| on_run.emit((*text).clone()))
    };

    let dropdown = match &*open {
        Some(o) => html! {
            <ul class="completions" id={format!("{}-completions", props.id)} role="listbox">
                { for o.items.iter().enumerate().map(|(i, item)| {
                    let onmousedown = {
                        let accept = accept.clone();
                        let o = o.clone();
                        let item = item.clone();
                        Callback::from(move |e: MouseEvent| { e.prevent_default(); accept(&o, &item) })
                    };
                    let kind = if FUNCTIONS.contains(&item.as_str()) { "fn" } else { "" };
                    html! {
                        <li class={classes!((i == o.selected).then_some("selected"))} role="option"
                            aria-selected={(i == o.selected).to_string()} {onmousedown}>
                            { item.clone() }<span class="kind">{ kind }</span>
                        </li>
                    }
                }) }
            </ul>
        },
        None => html! {},
    };
    let rows = text.lines().count().clamp(1, 8).to_string();
    html! {
        <div class="query-editor">
            <textarea id={props.id.clone()} ref={area} value={(*text).clone()} {rows}
                spellcheck="false" placeholder={props.placeholder.clone()}
                aria-label="query" {oninput} {onkeydown} {onblur} />
            <button class="run" onclick={run}>{ "Run" }</button>
            { dropdown }
        </div>
    }
}
