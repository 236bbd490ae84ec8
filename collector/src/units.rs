//! Durations and byte sizes in the agent's config: the shared
//! implementation in the `vigil-config` crate, under the names the
//! collector's modules use.

pub use vigil_config::units::*;
