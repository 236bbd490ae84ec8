//! The dashboard's files, built by build.rs and embedded in the binary,
//! served gzip-compressed to browsers that accept it (all do). Each file
//! is compressed once, on its first request.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use std::io::Write;
use std::sync::OnceLock;

const INDEX_HTML: &str = include_str!(concat!(env!("OUT_DIR"), "/dist/index.html"));
const APP_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/dist/app.js"));
const APP_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dist/app_bg.wasm"));

struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    gzipped: OnceLock<Vec<u8>>,
}

static INDEX: Asset = Asset {
    body: INDEX_HTML.as_bytes(),
    content_type: "text/html; charset=utf-8",
    gzipped: OnceLock::new(),
};
static JS: Asset = Asset {
    body: APP_JS.as_bytes(),
    content_type: "text/javascript; charset=utf-8",
    gzipped: OnceLock::new(),
};
static WASM: Asset = Asset {
    body: APP_WASM,
    content_type: "application/wasm",
    gzipped: OnceLock::new(),
};

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

/// Whether `Accept-Encoding` allows gzip (and does not refuse it with q=0).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or("").trim();
            let refused = it.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

fn serve(asset: &'static Asset, headers: &HeaderMap) -> Response {
    let content_type = HeaderValue::from_static(asset.content_type);
    // The files change with every build under the same names.
    let cache = HeaderValue::from_static("no-cache");
    let vary = HeaderValue::from_static("Accept-Encoding");
    if accepts_gzip(headers) {
        // A failed compression leaves it empty: serve the original then.
        let gz: &'static [u8] = asset
            .gzipped
            .get_or_init(|| gzip(asset.body).unwrap_or_default());
        if !gz.is_empty() {
            return (
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
                    (header::CACHE_CONTROL, cache),
                    (header::VARY, vary),
                ],
                gz,
            )
                .into_response();
        }
    }
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
            (header::VARY, vary),
        ],
        asset.body,
    )
        .into_response()
}

pub async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers)
}

pub async fn app_js(headers: HeaderMap) -> Response {
    serve(&JS, &headers)
}

pub async fn app_wasm(headers: HeaderMap) -> Response {
    serve(&WASM, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&h("gzip, deflate, br")));
        assert!(accepts_gzip(&h("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(&h("*")));
        assert!(!accepts_gzip(&h("gzip;q=0")));
        assert!(!accepts_gzip(&h("br")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn compressed_assets_decompress_to_the_originals() {
        use std::io::Read;
        for a in [&INDEX, &JS, &WASM] {
            let gz = gzip(a.body).unwrap();
            assert!(gz.len() < a.body.len());
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, a.body);
        }
    }
}
