//! What the agent pushes to Loki's API: streams of the agent's own label
//! sets. The format itself (encoder and decoder) lives in
//! `vigil_wire::loki_push`.

use crate::labels::Labels;
use vigil_wire::loki_push::StreamToSend;
pub use vigil_wire::loki_push::{encode_push_body, PushEntry};

/// A stream (one label set) and its entries, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushStream {
    pub labels: Labels,
    pub entries: Vec<PushEntry>,
}

impl StreamToSend for PushStream {
    fn label_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.labels.iter()
    }
    fn entries(&self) -> &[PushEntry] {
        &self.entries
    }
}
