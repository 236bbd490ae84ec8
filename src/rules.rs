//! The rule engine's view of the server: PromQL over the store, the
//! newest sample of a series (for `ALERTS_FOR_STATE`), and writes of rule
//! output into the store as live samples.

use alerting::Backend;
use promql::{Engine, QueryValue};
use std::sync::Arc;
use tsdb::{AppendMode, Db, LabelSet, Matcher, Querier, SeriesSamples, TimeRange};

pub struct DbBackend {
    pub db: Arc<Db>,
    pub engine: Engine,
    /// For log-based rules (LogQL).
    pub logs: Option<Arc<logstore::LogStore>>,
}

impl Backend for DbBackend {
    fn query(&self, expr: &str, t: i64) -> Result<Vec<(LabelSet, f64)>, String> {
        let (value, _) = self
            .engine
            .instant(&*self.db, expr, t)
            .map_err(|e| e.to_string())?;
        match value {
            QueryValue::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
            QueryValue::Scalar { v, .. } => Ok(vec![(LabelSet::default(), v)]),
            QueryValue::String { .. } => {
                Err("rule result is a string, not a vector or scalar".into())
            }
            QueryValue::Matrix(_) => {
                Err("rule result is a range vector, not a vector or scalar".into())
            }
        }
    }

    fn last_sample(
        &self,
        labels: &LabelSet,
        start: i64,
        end: i64,
    ) -> Result<Option<(i64, f64)>, String> {
        let matchers: Vec<Matcher> = labels
            .iter()
            .map(|l| Matcher::equal(l.name, l.value))
            .collect();
        let series = self
            .db
            .select(&matchers, TimeRange::new(start, end))
            .map_err(|e| e.to_string())?;
        let Some(s) = series.into_iter().find(|s| &s.labels == labels) else {
            return Ok(None);
        };
        let samples = s.collect_samples().map_err(|e| e.to_string())?;
        Ok(samples
            .iter()
            .rev()
            .find(|x| x.v.to_bits() != tsdb::STALE_NAN_BITS)
            .map(|x| (x.t, x.v)))
    }

    fn query_logs(&self, expr: &str, t: i64) -> Result<Vec<(LabelSet, f64)>, String> {
        use logstore::logql;
        let store = self
            .logs
            .as_ref()
            .ok_or("log-based rules need the log store")?;
        let parsed = logql::parse(expr).map_err(|e| e.to_string())?;
        let t_ns = t.saturating_mul(1_000_000);
        let params = logql::QueryParams {
            start: t_ns,
            end: t_ns,
            step_ns: 1_000_000_000,
            limit: 100,
            direction: logql::Direction::Backward,
            max_series: 100_000,
            stop: logql::Stop {
                deadline: Some(std::time::Instant::now() + self.engine.opts.timeout),
                cancelled: None,
            },
        };
        let (result, _) = logql::evaluate(store, &parsed, &params).map_err(|e| e.to_string())?;
        match result {
            logql::QueryResult::Matrix(series) => Ok(series
                .into_iter()
                .filter_map(|s| {
                    let v = s.points.last()?.1;
                    let labels = LabelSet::from_labels(
                        s.labels
                            .0
                            .iter()
                            .map(|(k, v)| tsdb::Label::new(k.as_str(), v.as_str()))
                            .collect(),
                    );
                    Some((labels, v))
                })
                .collect()),
            logql::QueryResult::Scalar(v) => Ok(vec![(LabelSet::default(), v)]),
            logql::QueryResult::Streams(_) => Err("a log query is not a rule expression".into()),
        }
    }

    fn append(&self, series: Vec<SeriesSamples>) -> Result<(), String> {
        let now = chrono::Utc::now().timestamp_millis();
        let out = self
            .db
            .append(&series, AppendMode::Live, now)
            .map_err(|e| e.to_string())?;
        if let Some(e) = out.errors.first() {
            return Err(format!("{} samples refused: {e}", out.rejected_samples()));
        }
        Ok(())
    }
}
