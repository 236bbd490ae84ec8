//! `global.external_labels`: labels every series leaving the agent
//! carries unless it has them already, added once before the batch fans
//! out to the remote_write endpoints (whose `write_relabel_configs` then
//! see them, as in Prometheus, where external labels apply before write
//! relabeling).

use crate::pipeline::{Events, Transform};
use std::sync::Arc;

pub struct ExternalLabels {
    labels: Vec<(String, String)>,
}

impl ExternalLabels {
    pub fn new(labels: Vec<(String, String)>) -> Self {
        ExternalLabels { labels }
    }
}

impl Transform for ExternalLabels {
    fn apply(&self, events: &mut Events) {
        let Events::Metrics(series) = events else {
            return;
        };
        if self.labels.is_empty() {
            return;
        }
        for s in series.iter_mut() {
            // The labels are shared with the scrape's series cache: copied
            // only when one is missing.
            if self.labels.iter().all(|(n, _)| s.labels.get(n).is_some()) {
                continue;
            }
            let labels = Arc::make_mut(&mut s.labels);
            for (n, v) in &self.labels {
                if labels.get(n).is_none() {
                    labels.set(n.as_str(), v.as_str());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;
    use crate::remote_write::WriteSeries;

    #[test]
    fn missing_labels_are_added_and_present_ones_kept() {
        let t = ExternalLabels::new(vec![
            ("cluster".into(), "prod".into()),
            ("job".into(), "ignored".into()),
        ]);
        let cached = Arc::new(Labels::from_pairs([("__name__", "up"), ("job", "node")]));
        let mut events = Events::Metrics(vec![WriteSeries {
            labels: Arc::clone(&cached),
            samples: Vec::new(),
        }]);
        t.apply(&mut events);
        let Events::Metrics(series) = events else {
            unreachable!()
        };
        assert_eq!(
            series[0].labels.to_string(),
            r#"{__name__="up", cluster="prod", job="node"}"#
        );
        // The scrape cache's copy is untouched.
        assert_eq!(cached.get("cluster"), None);
    }
}
