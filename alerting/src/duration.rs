//! Durations in rule files and the notifier's config: Prometheus's, parsed
//! and printed by the one implementation in `vigil_config::duration`; errors as
//! Prometheus's message text.

use std::time::Duration;

/// Parses `s`; the error is Prometheus's message.
pub fn parse(s: &str) -> Result<Duration, String> {
    // Rule files and alertmanager.yml say what Prometheus says, whatever
    // the fault.
    vigil_config::duration::parse(s).map_err(|_| format!("not a valid duration string: {s:?}"))
}

/// `d` as Prometheus prints it (`1h30m`, `0s`).
pub fn format(d: Duration) -> String {
    vigil_config::duration::format(d)
}
