//! Facts fixed at build time.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("VIGIL_GIT_COMMIT");
