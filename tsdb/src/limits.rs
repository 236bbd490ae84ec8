//! Explicit, configurable limits on what one write may carry.

/// Limits applied to every series handed to the head. Zero means unlimited.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_labels_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    pub max_series_per_write: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_labels_per_series: 64,
            max_label_name_length: 256,
            max_label_value_length: 4096,
            max_series_per_write: 100_000,
        }
    }
}
