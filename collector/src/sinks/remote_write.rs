//! The remote_write sink: metric batches onto one endpoint's sharded send
//! queue, where that endpoint's `write_relabel_configs` apply.

use super::SendQueue;
use crate::pipeline::{EventKind, Events, Sink, SinkError, SinkStats};
use std::time::Instant;

pub struct RemoteWriteSink(pub SendQueue);

impl Sink for RemoteWriteSink {
    fn name(&self) -> &str {
        &self.0.shipper.url
    }

    fn takes(&self, kind: EventKind) -> bool {
        kind == EventKind::Metrics
    }

    /// Never fails: as in Prometheus, samples the queue cannot keep are
    /// dropped and counted (`vigil_agent_samples_dropped_backlog_total`)
    /// rather than holding up the scrapes.
    fn send(&self, events: &Events) -> Result<(), SinkError> {
        if let Events::Metrics(series) = events {
            self.0.shipper.push(series);
        }
        Ok(())
    }

    fn stats(&self) -> SinkStats {
        self.0.stats()
    }

    fn close(&self) {
        self.0.close()
    }

    fn drain(&self, until: Instant) {
        self.0.drain(until)
    }
}
