//! Transforms between the agent's sources and its sinks (see
//! [`crate::pipeline`]): each reshapes batches in place. The log
//! processing stages (Promtail's `pipeline_stages`) land here as more of
//! them.

pub mod external_labels;
