//! Where the agent's batches go: each sink wraps one endpoint's send
//! queue ([`crate::ship::Shipper`]) and takes one kind of event.

pub mod loki_push;
pub mod remote_write;
