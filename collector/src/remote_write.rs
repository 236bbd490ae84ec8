//! What the agent sends by remote_write: series whose labels are shared
//! with the scrape's series cache. The format itself (encoder and
//! decoder) lives in `vigil_wire::remote_write`.

use crate::labels::Labels;
use std::sync::Arc;
use vigil_wire::remote_write::SeriesToSend;
pub use vigil_wire::remote_write::{encode_body, WireSample};

/// A series and its samples, in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteSeries {
    /// Shared with the scrape's series cache: sending a sample copies no
    /// label.
    pub labels: Arc<Labels>,
    pub samples: Vec<WireSample>,
}

impl SeriesToSend for WriteSeries {
    fn label_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        // `Labels` keeps its pairs sorted by name, as the protocol asks.
        self.labels.iter()
    }
    fn samples(&self) -> &[WireSample] {
        &self.samples
    }
}
