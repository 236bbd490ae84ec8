//! Vigil's dashboard documents: what a dashboard is (`model.rs`), what makes
//! one valid (`validate.rs`), how a Grafana dashboard becomes one
//! (`grafana.rs`), and the dashboards shipped in the binary (`builtin.rs`).
//!
//! It is shared by the server (which stores dashboards) and the browser
//! app (which draws them), so it must never touch files, the network or
//! the clock, and must compile for wasm32.

// Outside tests, nothing from outside may be unwrapped: errors are values.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod builtin;
pub mod grafana;
pub mod model;
pub mod validate;

pub use model::{Dashboard, Panel, PanelKind, Source, Target, Threshold, Variable, VariableKind};
pub use validate::{validate, Invalid};
