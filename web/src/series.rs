//! Query results as the page draws them: labelled series of points, parsed
//! from the Prometheus query API's `matrix`/`vector`/`scalar` results.

use serde::Deserialize;
use std::collections::BTreeMap;

pub type LabelSet = BTreeMap<String, String>;

/// One series: its labels and its (unix seconds, value) points in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: LabelSet,
    pub points: Vec<(f64, f64)>,
}

/// `name{a="b", c="d"}`, or `{}` for an empty label set.
pub fn series_name(labels: &LabelSet) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        name
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

/// Fills a legend template such as `{{pod}} on {{node}}`; an empty template
/// gives the full series name.
pub fn legend(template: &str, labels: &LabelSet) -> String {
    if template.trim().is_empty() {
        return series_name(labels);
    }
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                out.push_str(labels.get(name).map(String::as_str).unwrap_or(""));
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `data` of a query or query_range answer.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct QueryData {
    #[serde(rename = "resultType")]
    pub result_type: String,
    pub result: serde_json::Value,
    #[serde(default)]
    pub stats: Option<QueryStats>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct QueryStats {
    pub timings: Timings,
    pub samples: Samples,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Timings {
    #[serde(rename = "evalTotalTime")]
    pub eval_total_time: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Samples {
    #[serde(rename = "totalQueryableSamples")]
    pub total_queryable_samples: u64,
}

#[derive(Deserialize)]
struct RangeItem {
    metric: LabelSet,
    #[serde(default)]
    values: Vec<(f64, String)>,
    #[serde(default)]
    histograms: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct InstantItem {
    metric: LabelSet,
    value: (f64, String),
}

/// Sample values travel as strings ("NaN", "+Inf" included).
pub fn parse_value(s: &str) -> f64 {
    match s {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or(f64::NAN),
    }
}

impl QueryData {
    /// The result as series: a vector's samples become one-point series, a
    /// scalar an unlabelled one.
    pub fn series(&self) -> Result<Vec<Series>, String> {
        let bad = |e: serde_json::Error| format!("unexpected {} result: {e}", self.result_type);
        match self.result_type.as_str() {
            "matrix" => {
                let items: Vec<RangeItem> =
                    serde_json::from_value(self.result.clone()).map_err(bad)?;
                Ok(items
                    .into_iter()
                    .filter(|i| !i.values.is_empty() || i.histograms.is_empty())
                    .map(|i| Series {
                        labels: i.metric,
                        points: i.values.iter().map(|(t, v)| (*t, parse_value(v))).collect(),
                    })
                    .collect())
            }
            "vector" => {
                let items: Vec<InstantItem> =
                    serde_json::from_value(self.result.clone()).map_err(bad)?;
                Ok(items
                    .into_iter()
                    .map(|i| Series {
                        labels: i.metric,
                        points: vec![(i.value.0, parse_value(&i.value.1))],
                    })
                    .collect())
            }
            "scalar" | "string" => {
                let (t, v): (f64, String) =
                    serde_json::from_value(self.result.clone()).map_err(bad)?;
                Ok(vec![Series {
                    labels: LabelSet::new(),
                    points: vec![(t, parse_value(&v))],
                }])
            }
            other => Err(format!("unknown result type {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_and_legends() {
        let l = labels(&[("__name__", "up"), ("job", "node"), ("pod", "web-1")]);
        assert_eq!(series_name(&l), "up{job=\"node\", pod=\"web-1\"}");
        assert_eq!(series_name(&labels(&[("__name__", "up")])), "up");
        assert_eq!(series_name(&LabelSet::new()), "{}");
        assert_eq!(legend("{{pod}} ({{ job }})", &l), "web-1 (node)");
        assert_eq!(legend("{{missing}}x", &l), "x");
        assert_eq!(legend("open {{pod", &l), "open {{pod");
        assert_eq!(legend("", &l), series_name(&l));
    }

    #[test]
    fn parses_matrix_vector_scalar() {
        let m: QueryData = serde_json::from_str(
            r#"{"resultType":"matrix","result":[{"metric":{"a":"1"},"values":[[10,"1"],[20,"NaN"],[30,"+Inf"]]}]}"#,
        )
        .unwrap();
        let s = m.series().unwrap();
        assert_eq!(s[0].points[0], (10.0, 1.0));
        assert!(s[0].points[1].1.is_nan());
        assert_eq!(s[0].points[2].1, f64::INFINITY);
        let v: QueryData = serde_json::from_str(
            r#"{"resultType":"vector","result":[{"metric":{},"value":[5.5,"2"]}]}"#,
        )
        .unwrap();
        assert_eq!(v.series().unwrap()[0].points, vec![(5.5, 2.0)]);
        let sc: QueryData =
            serde_json::from_str(r#"{"resultType":"scalar","result":[1,"3"]}"#).unwrap();
        assert_eq!(sc.series().unwrap()[0].points, vec![(1.0, 3.0)]);
        let bad: QueryData =
            serde_json::from_str(r#"{"resultType":"matrix","result":{"x":1}}"#).unwrap();
        assert!(bad.series().unwrap_err().contains("matrix"));
    }
}

/// `/api/v1/query_range` with timings and sample counts.
pub async fn query_range(
    query: &str,
    start: f64,
    end: f64,
    step: f64,
) -> Result<QueryData, crate::api::ApiError> {
    use crate::api::enc;
    let url = format!(
        "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={step}&stats=all",
        enc(query)
    );
    crate::api::prom_get(&url).await
}

/// `/api/v1/query` at `time`.
pub async fn query_instant(query: &str, time: f64) -> Result<QueryData, crate::api::ApiError> {
    use crate::api::enc;
    let url = format!(
        "/api/v1/query?query={}&time={time:.3}&stats=all",
        enc(query)
    );
    crate::api::prom_get(&url).await
}
