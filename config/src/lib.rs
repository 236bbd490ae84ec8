//! Configuration vocabulary shared by the server and the agent: durations
//! (Prometheus's syntax), byte sizes, calendar dates and HTTP client
//! settings (TLS, basic auth, authorization), and the serde helpers that
//! read them into config structs. Relabeling and service discovery
//! settings are to move here from `collector/src/scrape_config.rs`
//! (ROADMAP, issue 28).
//!
//! Must never: do I/O, or depend on any other crate of the workspace.

// Outside tests, nothing from outside may be unwrapped: errors are values.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod civil;
pub mod duration;
pub mod http_client;
pub mod service_discovery;
pub mod units;
