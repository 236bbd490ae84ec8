//! The write protocols on the store's side: the text import decoder, the
//! hand-over of decoded remote_write series to the head, and the decode
//! budget every write body is inflated under. The wire formats themselves
//! (remote_write, Loki push) are decoded by `vigil_wire`.

pub mod budget;
pub mod import_text;
pub mod remote_write;
