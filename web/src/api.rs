//! HTTP calls to the server and the Prometheus API envelope
//! (`{"status":"success","data":..}` / `{"status":"error","error":..}`).

use serde::de::DeserializeOwned;
use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// What went wrong with a call, worded for the person looking at the page:
/// the server's own error text when it sent one.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError(pub String);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

/// Percent-encodes one query-string value.
pub fn enc(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

fn js_err(v: JsValue) -> ApiError {
    ApiError(
        v.as_string()
            .or_else(|| {
                v.dyn_ref::<js_sys::Error>()
                    .map(|e| String::from(e.message()))
            })
            .unwrap_or_else(|| format!("{v:?}")),
    )
}

/// Sends a request and returns the status and body text.
pub async fn request(
    method: &str,
    url: &str,
    body: Option<&str>,
) -> Result<(u16, String), ApiError> {
    let window = web_sys::window().ok_or_else(|| ApiError("no window".into()))?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(b) = body {
        init.set_body(&JsValue::from_str(b));
        let headers = web_sys::Headers::new().map_err(js_err)?;
        headers
            .set("Content-Type", "application/json")
            .map_err(js_err)?;
        init.set_headers(&headers);
    }
    let req = web_sys::Request::new_with_str_and_init(url, &init).map_err(js_err)?;
    let resp = JsFuture::from(window.fetch_with_request(&req))
        .await
        .map_err(|e| ApiError(format!("cannot reach the server: {}", js_err(e))))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(js_err)?;
    let text = JsFuture::from(resp.text().map_err(js_err)?)
        .await
        .map_err(js_err)?;
    Ok((resp.status(), text.as_string().unwrap_or_default()))
}

/// GETs a plain JSON document (no Prometheus envelope).
pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, ApiError> {
    let (status, text) = request("GET", url, None).await?;
    if !(200..300).contains(&status) {
        return Err(error_from_body(status, &text));
    }
    serde_json::from_str(&text).map_err(|e| ApiError(format!("unexpected answer from {url}: {e}")))
}

/// GETs a Prometheus-API document and unwraps its `data`.
pub async fn prom_get<T: DeserializeOwned>(url: &str) -> Result<T, ApiError> {
    let (status, text) = request("GET", url, None).await?;
    unwrap_envelope(status, &text, url)
}

fn unwrap_envelope<T: DeserializeOwned>(status: u16, text: &str, url: &str) -> Result<T, ApiError> {
    match serde_json::from_str::<Envelope<T>>(text) {
        Ok(env) if env.status == "success" => env
            .data
            .ok_or_else(|| ApiError(format!("{url}: success without data"))),
        Ok(env) => Err(ApiError(match (env.error_type, env.error) {
            (Some(t), Some(e)) => format!("{t}: {e}"),
            (None, Some(e)) => e,
            _ => format!("HTTP {status}"),
        })),
        Err(_) => Err(error_from_body(status, text)),
    }
}

/// The server's error text from a non-envelope body (Alertmanager-style
/// APIs answer errors as plain text or `{"message":..}`).
pub fn error_from_body(status: u16, text: &str) -> ApiError {
    #[derive(Deserialize)]
    struct Msg {
        message: Option<String>,
        error: Option<String>,
    }
    if let Ok(m) = serde_json::from_str::<Msg>(text) {
        if let Some(s) = m.error.or(m.message) {
            return ApiError(s);
        }
    }
    let t = text.trim();
    if t.is_empty() {
        ApiError(format!("HTTP {status}"))
    } else {
        ApiError(format!("HTTP {status}: {t}"))
    }
}
