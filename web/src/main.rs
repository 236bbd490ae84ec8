//! Vigil's dashboard, compiled to wasm32 and embedded in the `vigil` binary.
//!
//! It owns what the browser shows; it talks to the server only over HTTP
//! (`/api/vigil/*`, the Prometheus, Loki and Alertmanager-compatible APIs)
//! and must never assume anything about the server's internals. The view's
//! whole state lives in the URL hash, so a link reproduces it.

mod alerts_api;
mod api;
mod chart;
mod completion;
mod dashboards_api;
mod form;
mod heatmap;
mod loader;
mod pages;
mod palette;
mod panels;
mod query_editor;
mod route;
mod series;
mod theme;
mod time;
mod time_controls;
mod timerange;
mod units;
mod variables;

use route::Location;
use theme::Theme;
use yew::prelude::*;

fn current_hash() -> String {
    web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .unwrap_or_default()
}

/// The pages in the navigation bar: (path, title).
const NAV: [(&str, &str); 7] = [
    ("/", "Overview"),
    ("/dashboards", "Dashboards"),
    ("/explore", "Explore"),
    ("/logs", "Logs"),
    ("/alerts", "Alerts"),
    ("/targets", "Targets"),
    ("/status", "Status"),
];

#[function_component(App)]
fn app() -> Html {
    let loc = use_state(|| Location::parse(&current_hash()));
    let theme = use_state(Theme::load);

    {
        let loc = loc.clone();
        use_effect_with((), move |_| {
            let listener = web_sys::window().map(|w| {
                gloo_events::EventListener::new(&w, "hashchange", move |_| {
                    loc.set(Location::parse(&current_hash()))
                })
            });
            move || drop(listener)
        });
    }
    use_effect_with(*theme, |t| t.apply(false));

    let navigate = Callback::from(|l: Location| {
        if let Some(w) = web_sys::window() {
            let _ = w.location().set_hash(&l.to_hash());
        }
    });
    let toggle_theme = {
        let theme = theme.clone();
        Callback::from(move |_: MouseEvent| {
            let t = theme.other();
            t.apply(true);
            theme.set(t);
        })
    };

    let l = (*loc).clone();
    let page = match l.path.as_str() {
        "/" | "/overview" => {
            html! { <pages::overview::Overview loc={l.clone()} navigate={navigate.clone()} /> }
        }
        "/explore" => {
            html! { <pages::explore::Explore loc={l.clone()} navigate={navigate.clone()} /> }
        }
        "/logs" => html! { <pages::logs::Logs loc={l.clone()} navigate={navigate.clone()} /> },
        "/alerts" => {
            html! { <pages::alerts::Alerts loc={l.clone()} navigate={navigate.clone()} /> }
        }
        "/targets" => {
            html! { <pages::status::Targets loc={l.clone()} navigate={navigate.clone()} /> }
        }
        "/status" => {
            html! { <pages::status::Status loc={l.clone()} navigate={navigate.clone()} /> }
        }
        "/dashboards" => {
            html! { <pages::dashboards::DashboardList loc={l.clone()} navigate={navigate.clone()} /> }
        }
        "/import" => {
            html! { <pages::dashboards::ImportPage loc={l.clone()} navigate={navigate.clone()} /> }
        }
        p if p.starts_with("/d/") => html! {
            <pages::dashboards::DashboardView uid={p["/d/".len()..].to_string()} loc={l.clone()} navigate={navigate.clone()} />
        },
        other => html! {
            <section class="page"><h2>{ "Not found" }</h2>
                <p class="empty">{ format!("There is no page {other:?}. ") }<a href="#/">{ "Go to the overview" }</a></p></section>
        },
    };
    let current = match l.path.as_str() {
        "/overview" => "/",
        p if p.starts_with("/d/") || p == "/import" => "/dashboards",
        p => p,
    };
    html! {
        <ContextProvider<Theme> context={*theme}>
            <header class="topbar">
                <a class="brand" href="#/">{ "Vigil" }</a>
                <nav aria-label="pages">
                    { for NAV.iter().map(|(path, title)| html! {
                        <a href={format!("#{path}")} id={format!("nav-{}", title.to_lowercase())}
                            class={classes!((current == *path).then_some("active"))}
                            aria-current={(current == *path).then_some("page")}>{ *title }</a>
                    }) }
                </nav>
                <button class="theme-toggle" id="theme-toggle" onclick={toggle_theme}
                    aria-label="switch light/dark theme">
                    { if *theme == Theme::Dark { "☀ Light" } else { "☾ Dark" } }
                </button>
            </header>
            <main>{ page }</main>
        </ContextProvider<Theme>>
    }
}

fn main() {
    yew::Renderer::<App>::new().render();
}
