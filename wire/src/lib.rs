//! Wire formats shared by the agent, which sends them, and the server,
//! which receives them: the protobuf reader and writer primitives, snappy
//! block framing, the data model's naming rules, and the remote_write 1.0
//! and Loki push codecs (both directions each). OTLP and remote write 2.0
//! land here next (ROADMAP).
//!
//! The codecs sit behind the default `codecs` feature: the store takes
//! only the naming rules.
//!
//! Must never: depend on the store or the agent (encoders take any series
//! that lists its labels, decoders build the caller's sample type), or
//! allocate per field while decoding remote_write, the ingest hot path
//! (it borrows from the request body; the Loki decoders own their strings,
//! which the log store keeps).

// Outside tests, nothing from outside may be unwrapped: errors are values.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

#[cfg(feature = "codecs")]
pub mod loki_push;
pub mod names;
#[cfg(feature = "codecs")]
pub mod protobuf;
#[cfg(feature = "codecs")]
pub mod remote_write;
#[cfg(feature = "codecs")]
pub mod snappy;
