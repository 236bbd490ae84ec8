//! `/api/vigil/dashboards`: the list, one dashboard, saving, deleting, and
//! converting a Grafana dashboard.

use crate::api::{enc, error_from_body, get_json, request, ApiError};
use dashboards::model::Summary;
use dashboards::Dashboard;
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BrokenFile {
    pub file: String,
    pub error: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Listing {
    pub dashboards: Vec<Summary>,
    #[serde(default)]
    pub errors: Vec<BrokenFile>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Loaded {
    pub dashboard: Dashboard,
    pub builtin: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Imported {
    pub dashboard: Dashboard,
    pub unsupported: Vec<String>,
}

pub async fn list() -> Result<Listing, ApiError> {
    get_json("/api/vigil/dashboards").await
}

pub async fn get(uid: &str) -> Result<Loaded, ApiError> {
    get_json(&format!("/api/vigil/dashboards/{}", enc(uid))).await
}

pub async fn save(d: &Dashboard) -> Result<(), ApiError> {
    let body = serde_json::to_string(d).map_err(|e| ApiError(e.to_string()))?;
    save_text(&d.uid, &body).await
}

/// Saves a document as typed (the JSON editor): the server validates it.
pub async fn save_text(uid: &str, body: &str) -> Result<(), ApiError> {
    let url = format!("/api/vigil/dashboards/{}", enc(uid));
    let (status, text) = request("PUT", &url, Some(body)).await?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(error_from_body(status, &text))
    }
}

pub async fn delete(uid: &str) -> Result<(), ApiError> {
    let url = format!("/api/vigil/dashboards/{}", enc(uid));
    let (status, text) = request("DELETE", &url, None).await?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(error_from_body(status, &text))
    }
}

pub async fn import_grafana(json: &str) -> Result<Imported, ApiError> {
    let (status, text) = request("POST", "/api/vigil/dashboards/import", Some(json)).await?;
    if !(200..300).contains(&status) {
        return Err(error_from_body(status, &text));
    }
    serde_json::from_str(&text).map_err(|e| ApiError(format!("unexpected import answer: {e}")))
}
