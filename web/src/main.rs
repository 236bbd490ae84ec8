//! Vigil's dashboard, compiled to wasm32 and embedded in the `vigil` binary.
//!
//! It owns what the browser shows; it talks to the server only over HTTP
//! (`/api/vigil/*` and the Prometheus-compatible APIs) and must never assume
//! anything about the server's internals.

mod chart;
mod status;

use status::{fetch_status, StoreStatus};
use yew::prelude::*;

/// How often the page polls the server for fresh store statistics.
const POLL_INTERVAL_MS: u32 = 2_000;
/// How many polls of history the ingest chart keeps.
const HISTORY_LEN: usize = 90;

#[derive(Clone, PartialEq, Default)]
struct History {
    /// (seconds since page load, samples ingested per second)
    ingest_rate: Vec<(f64, f64)>,
    last: Option<(f64, u64)>,
    /// Wall-clock seconds of the first poll; the chart's x axis counts from it.
    start: Option<f64>,
}

impl History {
    fn push(&mut self, wall_s: f64, samples_total: u64) {
        let now_s = wall_s - *self.start.get_or_insert(wall_s);
        if let Some((t0, s0)) = self.last {
            let dt = now_s - t0;
            if dt > 0.0 {
                let rate = samples_total.saturating_sub(s0) as f64 / dt;
                self.ingest_rate.push((now_s, rate));
                if self.ingest_rate.len() > HISTORY_LEN {
                    self.ingest_rate.remove(0);
                }
            }
        }
        self.last = Some((now_s, samples_total));
    }
}

#[function_component(App)]
fn app() -> Html {
    let status = use_state(|| None::<Result<StoreStatus, String>>);
    let history = use_state(History::default);
    let canvas = use_node_ref();

    {
        let status = status.clone();
        let history = history.clone();
        use_effect_with((), move |_| {
            let poll = move || {
                let status = status.clone();
                let history = history.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = fetch_status().await;
                    if let Ok(s) = &result {
                        let mut h = (*history).clone();
                        h.push(js_sys::Date::now() / 1000.0, s.samples_appended_total);
                        history.set(h);
                    }
                    status.set(Some(result));
                });
            };
            poll();
            let interval = gloo_timers::callback::Interval::new(POLL_INTERVAL_MS, poll);
            move || drop(interval)
        });
    }

    {
        let canvas = canvas.clone();
        use_effect_with((*history).clone(), move |h| {
            if let Some(el) = canvas.cast::<web_sys::HtmlCanvasElement>() {
                chart::draw_ingest_rate(el, &h.ingest_rate);
            }
        });
    }

    let body = match &*status {
        None => html! { <p id="status">{ "loading store status…" }</p> },
        Some(Err(e)) => {
            html! { <p id="status" class="error">{ format!("cannot reach the server: {e}") }</p> }
        }
        Some(Ok(s)) => html! {
            <>
                <p id="status">{ "connected" }</p>
                <section class="cards">
                    { card("head-series", "Head series", s.head_series.to_string()) }
                    { card("samples-ingested", "Samples ingested", s.samples_appended_total.to_string()) }
                    { card("samples-rejected", "Samples rejected", s.samples_rejected_total.to_string()) }
                    { card("bytes-on-disk", "Bytes on disk", human_bytes(s.bytes_on_disk)) }
                </section>
                <footer id="build-info">
                    { format!("vigil {} · commit {} · data dir {} · up since {}", s.version, s.git_commit, s.data_dir, s.started_at) }
                </footer>
            </>
        },
    };

    html! {
        <main>
            <h1>{ "Vigil" }</h1>
            { body }
            <h2>{ "Ingest rate (samples/s)" }</h2>
            <canvas id="ingest-chart" ref={canvas} width="720" height="280"></canvas>
        </main>
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

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn main() {
    yew::Renderer::<App>::new().render();
}
