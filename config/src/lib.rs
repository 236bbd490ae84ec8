//! Configuration vocabulary shared by the server and the agent: durations
//! (Prometheus's syntax), byte sizes, calendar dates, HTTP client
//! settings (TLS, basic auth, authorization), service discovery settings
//! and relabeling rules as written, and the serde helpers that read them
//! into config structs. What acts on them (clients, discoveries, the
//! relabeling engine) lives with the agent or the server.
//!
//! Must never: do I/O, or depend on any other crate of the workspace.

// Outside tests, nothing from outside may be unwrapped: errors are values.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod civil;
pub mod duration;
pub mod http_client;
pub mod relabel;
pub mod service_discovery;
pub mod units;
