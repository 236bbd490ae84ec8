use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("log index {path}: {source}")]
    Index {
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("{path}: corrupt {what}: {detail}")]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("log store is closed")]
    Closed,
    #[error("ingestion backlog: indexing is behind the pushes; retry later")]
    Backlog,
}

impl LogStoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogStoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn index(path: impl Into<PathBuf>, source: tantivy::TantivyError) -> Self {
        LogStoreError::Index {
            path: path.into(),
            source,
        }
    }
}
