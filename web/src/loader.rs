//! Loading data for a view: one hook that re-fetches when its inputs change,
//! keeps the last answer on screen while the next one loads (no layout
//! jump), and drops answers that arrive after a newer request was made.

use crate::api::ApiError;
use std::future::Future;
use yew::prelude::*;

#[derive(Clone, PartialEq)]
pub struct Loaded<T> {
    /// The newest answer; `None` before the first one arrives.
    pub value: Option<Result<T, ApiError>>,
    pub loading: bool,
}

#[hook]
pub fn use_loader<T, D, F, Fut>(deps: D, load: F) -> Loaded<T>
where
    T: Clone + PartialEq + 'static,
    D: PartialEq + Clone + 'static,
    F: Fn(D) -> Fut + 'static,
    Fut: Future<Output = Result<T, ApiError>> + 'static,
{
    let state = use_state(|| Loaded {
        value: None,
        loading: true,
    });
    let generation = use_mut_ref(|| 0u64);
    {
        let state = state.clone();
        use_effect_with(deps, move |deps| {
            *generation.borrow_mut() += 1;
            let mine = *generation.borrow();
            state.set(Loaded {
                value: state.value.clone(),
                loading: true,
            });
            let fut = load(deps.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let result = fut.await;
                if *generation.borrow() == mine {
                    state.set(Loaded {
                        value: Some(result),
                        loading: false,
                    });
                }
            });
        });
    }
    (*state).clone()
}

/// A counter that ticks every `every_ms` (never when `None`): put it in a
/// loader's inputs to auto-refresh.
#[hook]
pub fn use_tick(every_ms: Option<u32>) -> u32 {
    let tick = use_state(|| 0u32);
    // A handle's value is the one it was rendered with; count outside it.
    let count = use_mut_ref(|| 0u32);
    {
        let tick = tick.clone();
        use_effect_with(every_ms, move |ms| {
            let interval = ms.map(|ms| {
                gloo_timers::callback::Interval::new(ms, move || {
                    let mut c = count.borrow_mut();
                    *c = c.wrapping_add(1);
                    tick.set(*c);
                })
            });
            move || drop(interval)
        });
    }
    *tick
}

/// The body shown for a failed load: the server's own words.
pub fn error_box(e: &ApiError) -> Html {
    html! { <div class="error-box" role="alert">{ e.to_string() }</div> }
}
