//! Explicit, configurable limits on what one write may carry.

/// Limits applied to every series handed to the head. Zero means unlimited.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_labels_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    pub max_series_per_write: usize,
    /// Series the head may hold; new ones past it are refused (Mimir's
    /// `max_global_series_per_user`).
    pub max_global_series: usize,
    /// Series one metric name may have in the head (Mimir's
    /// `max_global_series_per_metric`).
    pub max_global_series_per_metric: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_labels_per_series: 64,
            max_label_name_length: 256,
            max_label_value_length: 4096,
            max_series_per_write: 100_000,
            max_global_series: 0,
            max_global_series_per_metric: 0,
        }
    }
}
