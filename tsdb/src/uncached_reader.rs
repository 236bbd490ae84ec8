//! Reading the store without its shared row-group cache: what a query
//! with `nocache=1` reads through (as VictoriaMetrics's parameter of that
//! name), to measure cold reads or to keep a one-off scan from evicting
//! what dashboards reuse.

use crate::db::Db;
use crate::error::TsdbError;
use crate::labels::LabelSet;
use crate::matcher::Matcher;
use crate::querier::{Querier, Series, SeriesPart, TimeRange};
use crate::row_group_cache::{RowGroupCache, MIN_BUDGET_BYTES};
use std::sync::Arc;

/// A reader whose block reads neither use nor fill the store's cache: row
/// groups it decodes go to a small cache of its own, dropped with it.
/// Series are read in label order (one row group after another), so a
/// few row groups are all it needs to decode each one once.
pub struct UncachedReader<'a> {
    db: &'a Db,
    cache: Arc<RowGroupCache>,
}

impl<'a> UncachedReader<'a> {
    pub fn new(db: &'a Db) -> Self {
        UncachedReader {
            db,
            cache: Arc::new(RowGroupCache::new(2 * MIN_BUDGET_BYTES)),
        }
    }
}

impl Querier for UncachedReader<'_> {
    fn select(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<Series>, TsdbError> {
        let mut out = self.db.select(matchers, range)?;
        for s in &mut out {
            for p in &mut s.parts {
                if let SeriesPart::Block { cache, .. } = p {
                    *cache = Some(self.cache.clone());
                }
            }
        }
        Ok(out)
    }

    fn series(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<LabelSet>, TsdbError> {
        self.db.series(matchers, range)
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<Vec<String>, TsdbError> {
        self.db.label_names(matchers, range)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<Vec<String>, TsdbError> {
        self.db.label_values(name, matchers, range)
    }
}
