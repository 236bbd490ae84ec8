//! Alerting: Prometheus rule files (checked as `promtool check rules`
//! checks them), rule groups evaluated on their interval, recording
//! rules written back, the alert state machine with `ALERTS` and
//! `ALERTS_FOR_STATE`, and Go templates for labels and annotations.
//!
//! It owns rules and alert state; it never stores samples or runs
//! queries itself — the server hands it a [`group::Backend`] — and it
//! never panics on a rule file, a template or a query result.

// Outside tests, nothing from outside may be unwrapped: errors are values.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod clock;
pub mod dispatch;
pub mod duration;
pub mod group;
pub mod manager;
pub mod notifier;
pub mod rule_file;
pub mod template;

pub use dispatch::Dispatcher;
pub use group::{Alert, AlertState, Backend, EvalOptions, GroupState, Health, RuleState};
pub use manager::{RuleManager, RuleSource};
pub use notifier::{
    AlertRelabel, AlertmanagerSet, Discovered, Notifier, NotifierOptions, StaticAlertmanagers,
};
pub use rule_file::{Lang, RuleFileError, RuleGroup, RuleKind};
