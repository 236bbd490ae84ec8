//! HTTP handlers: the Prometheus-compatible APIs and Vigil's own.

pub mod dashboards;
pub mod error;
pub mod export;
pub mod loki;
pub mod metadata;
pub mod params;
pub mod prom_status;
pub mod query;
pub mod query_json;
pub mod rules;
pub mod silences;
pub mod status;
pub mod targets;
pub mod write;
