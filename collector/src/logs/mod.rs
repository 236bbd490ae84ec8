//! Container logs on a node: reading the files the kubelet and the
//! container runtime write, into entries with their original time, stream
//! and labels, ready to ship to a Loki-compatible push API.
//!
//! This is the reading side only (formats, file layout); it never decides
//! what to keep or drop.

pub mod cri;
pub mod journal;
pub mod multiline;
pub mod pod_labels;
pub mod pod_path;
pub mod push;
pub mod reader;
pub mod tail;
