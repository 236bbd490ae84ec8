//! Wire formats shared by the agent, which sends them, and the server,
//! which receives them: the protobuf reader and writer primitives both
//! sides build their messages with, and snappy block framing. The
//! remote_write and Loki push codecs (now split between
//! `collector/src/remote_write.rs`, `collector/src/logs/push.rs` and
//! `src/ingest/`) move here next, then OTLP and remote write 2.0 (ROADMAP).
//!
//! Must never: depend on the store or the agent, or allocate per field
//! while decoding (decoders borrow from the request body).

// Outside tests, nothing from outside may be unwrapped: errors are values.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod protobuf;
pub mod snappy;
