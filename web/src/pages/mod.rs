//! One module per page of the dashboard.

pub mod alerts;
pub mod dashboards;
pub mod explore;
pub mod logs;
pub mod overview;
pub mod status;
