//! A dashboard as stored (one JSON file per dashboard, kept in git by its
//! users) and as the browser draws it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    /// `[a-z0-9_-]{1,64}`: the file name and the URL (`#/d/<uid>`).
    pub uid: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Default time range, as the picker writes it (`1h`, `24h`).
    #[serde(default = "default_range")]
    pub time: String,
    /// Default auto-refresh (`30s`), empty for none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refresh: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    #[serde(default)]
    pub panels: Vec<Panel>,
}

fn default_range() -> String {
    "1h".into()
}

/// A template variable, used in queries as `$name` or `${name}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    #[serde(default)]
    pub kind: VariableKind,
    /// `label_values(metric, label)`, `label_values(label)` or
    /// `query_result(expr)` for a query variable; comma-separated values
    /// for a custom one.
    pub query: String,
    /// Keeps only values matching this regex (its first group if it has one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub regex: String,
    #[serde(default)]
    pub multi: bool,
    #[serde(default)]
    pub include_all: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariableKind {
    #[default]
    Query,
    Custom,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    pub title: String,
    #[serde(rename = "type")]
    pub kind: PanelKind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Columns of a 12-column grid.
    #[serde(default = "default_width")]
    pub width: u8,
    /// CSS pixels.
    #[serde(default = "default_height")]
    pub height: u16,
    /// `none`, `bytes`, `bytes_per_second`, `seconds`, `percent`,
    /// `percent_unit`, `per_second`.
    #[serde(default = "default_unit")]
    pub unit: String,
    /// Time series: stack the series as areas.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stack: bool,
    /// Gauge and bar: the scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Ascending; a value at or above a step takes its colour.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
    #[serde(default)]
    pub targets: Vec<Target>,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn default_width() -> u8 {
    6
}
fn default_height() -> u16 {
    260
}
fn default_unit() -> String {
    "none".into()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PanelKind {
    #[default]
    Timeseries,
    Stat,
    Gauge,
    Bar,
    Table,
    Heatmap,
    Logs,
}

impl PanelKind {
    pub const ALL: [PanelKind; 7] = [
        PanelKind::Timeseries,
        PanelKind::Stat,
        PanelKind::Gauge,
        PanelKind::Bar,
        PanelKind::Table,
        PanelKind::Heatmap,
        PanelKind::Logs,
    ];

    pub fn id(self) -> &'static str {
        match self {
            PanelKind::Timeseries => "timeseries",
            PanelKind::Stat => "stat",
            PanelKind::Gauge => "gauge",
            PanelKind::Bar => "bar",
            PanelKind::Table => "table",
            PanelKind::Heatmap => "heatmap",
            PanelKind::Logs => "logs",
        }
    }

    pub fn from_id(s: &str) -> Option<PanelKind> {
        PanelKind::ALL.into_iter().find(|k| k.id() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub value: f64,
    /// `green`, `yellow`, `orange`, `red`, `blue`, `purple` or `#rrggbb`.
    pub color: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub expr: String,
    /// A label template such as `{{pod}}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub legend: String,
    #[serde(default)]
    pub source: Source,
}

/// Which query language a target speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Prometheus,
    Loki,
}

/// A dashboard's entry in the list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub uid: String,
    pub title: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Shipped in the binary (read-only; save a copy to change it).
    #[serde(default)]
    pub builtin: bool,
}

impl Dashboard {
    pub fn summary(&self, builtin: bool) -> Summary {
        Summary {
            uid: self.uid.clone(),
            title: self.title.clone(),
            tags: self.tags.clone(),
            builtin,
        }
    }
}
