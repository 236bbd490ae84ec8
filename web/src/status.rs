//! The `/api/vigil/status` document and how the page fetches it.

use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

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

pub async fn fetch_status() -> Result<StoreStatus, String> {
    let window = web_sys::window().ok_or("no window")?;
    let resp = JsFuture::from(window.fetch_with_str("/api/vigil/status"))
        .await
        .map_err(js_err)?;
    let resp: web_sys::Response = resp.dyn_into().map_err(js_err)?;
    if !resp.ok() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let text = JsFuture::from(resp.text().map_err(js_err)?)
        .await
        .map_err(js_err)?;
    let text = text.as_string().ok_or("response body is not text")?;
    serde_json::from_str(&text).map_err(|e| format!("bad status JSON: {e}"))
}

fn js_err(v: wasm_bindgen::JsValue) -> String {
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}
