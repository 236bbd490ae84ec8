//! The dashboard's files, built by build.rs and embedded in the binary.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!(concat!(env!("OUT_DIR"), "/dist/index.html"));
const APP_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/dist/app.js"));
const APP_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dist/app_bg.wasm"));

pub async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
        .into_response()
}

pub async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

pub async fn app_wasm() -> Response {
    ([(header::CONTENT_TYPE, "application/wasm")], APP_WASM).into_response()
}
