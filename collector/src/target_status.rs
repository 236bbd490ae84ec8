//! What the agent knows about each target it scrapes or dropped, for
//! Prometheus's targets page: the agent keeps it up to date, the report
//! to the server (`report.rs`) carries it.

use crate::labels::Labels;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A target's health as Prometheus's targets API words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// What the targets page shows for one target.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    pub job: String,
    pub scrape_url: String,
    /// The labels its series get.
    pub labels: Labels,
    /// Labels before relabeling.
    pub discovered: Labels,
    pub health: Health,
    pub last_error: String,
    /// Unix milliseconds of the last scrape's start; 0 before the first.
    pub last_scrape_ms: i64,
    pub last_duration: Duration,
    pub interval: Duration,
    pub timeout: Duration,
}

/// A target relabeling dropped, for the targets page.
#[derive(Debug, Clone)]
pub struct DroppedTarget {
    pub job: String,
    pub discovered: Labels,
    /// Why, when it was invalid rather than dropped by a rule.
    pub error: Option<String>,
}

/// Every active target's health, by (job, target key).
pub type StatusMap = Arc<Mutex<BTreeMap<(String, String), TargetStatus>>>;
/// Per job, the targets relabeling dropped or found invalid.
pub type DroppedMap = Arc<Mutex<BTreeMap<String, Vec<DroppedTarget>>>>;

pub fn dropped_list(d: &DroppedMap) -> Vec<DroppedTarget> {
    d.lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .flatten()
        .cloned()
        .collect()
}
