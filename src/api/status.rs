//! `/api/vigil/status`: build info and live store statistics for the dashboard.

use super::error::ApiError;
use crate::server::AppState;
use axum::extract::State;
use axum::Json;
use serde::Serialize;

#[derive(Serialize)]
pub struct StoreStatus {
    pub version: &'static str,
    pub git_commit: &'static str,
    pub data_dir: String,
    pub started_at: String,
    pub head_series: u64,
    pub head_chunks: u64,
    pub head_samples: u64,
    pub head_chunk_bytes: u64,
    pub samples_appended_total: u64,
    pub samples_rejected_total: u64,
    pub bytes_on_disk: u64,
    pub blocks: u64,
    pub block_samples: u64,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
}

pub async fn status(State(st): State<AppState>) -> Result<Json<StoreStatus>, ApiError> {
    let db = st.db()?;
    let (stats, chunks) = tokio::task::spawn_blocking(move || (db.stats(), db.head_chunk_stats()))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(StoreStatus {
        version: env!("CARGO_PKG_VERSION"),
        git_commit: crate::build_info::GIT_COMMIT,
        data_dir: st.data_dir.display().to_string(),
        started_at: st.started_at.to_rfc3339(),
        head_series: stats.head_series,
        head_chunks: chunks.chunks,
        head_samples: chunks.samples,
        head_chunk_bytes: chunks.bytes,
        samples_appended_total: stats.samples_appended,
        samples_rejected_total: stats.rejected_total(),
        bytes_on_disk: stats.bytes_on_disk(),
        blocks: stats.blocks,
        block_samples: stats.block_samples,
        min_time: stats.min_time,
        max_time: stats.max_time,
    }))
}

/// `POST /api/vigil/flush`: persists the whole head as blocks now, and
/// indexes and commits the log head (for backups, exports to Parquet tools
/// and size measurements).
pub async fn flush(State(st): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let db = st.db()?;
    let logs = st.logs();
    let r = tokio::task::spawn_blocking(move || {
        if let Some(logs) = logs {
            logs.flush()
                .map_err(|e| ApiError::Internal(format!("log store: {e}")))?;
        }
        db.flush_head().map_err(ApiError::from)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(serde_json::json!({
        "status": "success",
        "data": {"blocksCut": r.blocks_cut, "blocksCompacted": r.blocks_compacted},
    })))
}
