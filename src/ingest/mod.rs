//! Decoders for the write protocols: each turns untrusted bytes into
//! [`tsdb::SeriesSamples`] or an error naming what is wrong and where.

pub mod import_text;
pub mod protobuf;
pub mod remote_write;
