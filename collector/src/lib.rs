//! The collector: what Vigil's agent does on a node. It owns reading
//! metrics from targets (the exposition parser, scrape configuration,
//! relabeling, the scrape loop), reading container logs (`logs/`), and
//! shipping to a server (remote_write, Loki push). Its parts plug into one
//! interface (`pipeline.rs`): `sources/` send batches through
//! `transforms/` to `sinks/`, and `agent.rs` only wires them. It never
//! stores or queries data itself: everything it gathers leaves through a
//! sink.

// Outside tests, nothing from outside may be unwrapped: errors are values.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod agent;
pub mod containers;
pub mod disk_queue;
pub mod exposition;
pub mod fetch;
pub mod file_sd;
pub mod kubernetes_sd;
pub mod labels;
pub mod logs;
pub mod node;
pub mod pipeline;
pub mod relabel;
pub mod remote_write;
pub mod report;
pub mod rfc3339;
pub mod scrape;
pub mod scrape_config;
pub mod ship;
pub mod sinks;
pub mod sources;
pub mod target;
pub mod target_status;
pub mod tls;
pub mod transforms;
pub mod units;
