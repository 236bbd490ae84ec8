//! Wire formats shared by the agent, which sends them, and the server,
//! which receives them: the protobuf reader and writer primitives, snappy
//! block framing, the data model's naming rules, and the remote_write 1.0
//! and Loki push codecs (both directions each). OTLP and remote write 2.0
//! land here next (ROADMAP).
//!
//! Must never: depend on the store or the agent (encoders take any series
//! that lists its labels, decoders build the caller's sample type), or
//! allocate per field while decoding (decoders borrow from the request
//! body).

// Outside tests, nothing from outside may be unwrapped: errors are values.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod loki_push;
pub mod names;
pub mod protobuf;
pub mod remote_write;
pub mod snappy;
