//! Decoders for the write protocols: each turns untrusted bytes into
//! [`tsdb::SeriesSamples`] (metrics) or pushed log streams (Loki), or an
//! error naming what is wrong and where.

pub mod budget;
pub mod import_text;
pub mod loki_push;
pub mod remote_write;
