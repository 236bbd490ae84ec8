//! `vigil test rules TEST_FILE...`: rule unit tests in promtool's format
//! (`rule_files`, `evaluation_interval`, `tests` with `input_series` in
//! the expanding notation, `alert_rule_test`, `promql_expr_test`,
//! `external_labels`), run against a scratch store the way `promtool test
//! rules` runs them: every group evaluated at every evaluation interval
//! from time 0, firing alerts compared at each `eval_time`, expressions
//! evaluated over the inputs and the rules' output.

use alerting::group::{AlertState, EvalOptions, GroupState};
use anyhow::{bail, Context};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tsdb::{AppendMode, Db, DbOptions, LabelSet, Sample, SeriesSamples, STALE_NAN_BITS};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: String,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    eval_time: String,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: f64,
}

/// One value of an input series: a sample, a gap or a stale marker.
#[derive(Debug, Clone, Copy, PartialEq)]
enum InputValue {
    Value(f64),
    Missing,
    Stale,
}

fn number(s: &str) -> Result<f64, String> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        "NaN" | "nan" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("invalid number {s:?}")),
    }
}

/// The expanding notation: `a+bxn` (n+1 values from a, step b), `a-bxn`,
/// `axn` (a, n+1 times), `_` (missing), `_xn` (n missing), `stale`.
fn expand_values(text: &str) -> Result<Vec<InputValue>, String> {
    let mut out = Vec::new();
    for tok in text.split_whitespace() {
        if tok == "_" {
            out.push(InputValue::Missing);
            continue;
        }
        if tok == "stale" {
            out.push(InputValue::Stale);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n
                .parse()
                .map_err(|_| format!("invalid repetition in {tok:?}"))?;
            out.extend(std::iter::repeat_n(InputValue::Missing, n));
            continue;
        }
        let Some((base, times)) = tok.rsplit_once('x') else {
            out.push(InputValue::Value(number(tok)?));
            continue;
        };
        let n: usize = times
            .parse()
            .map_err(|_| format!("invalid repetition in {tok:?}"))?;
        if n > 1_000_000 {
            return Err(format!("{tok:?} expands to more than a million values"));
        }
        // The step's sign: the first + or - after the start that is not an
        // exponent's.
        let b = base.as_bytes();
        let split = (1..b.len())
            .find(|&i| (b[i] == b'+' || b[i] == b'-') && !matches!(b[i - 1], b'e' | b'E'));
        let (start, step) = match split {
            Some(i) => (number(&base[..i])?, number(&base[i..])?),
            None => (number(base)?, 0.0),
        };
        for k in 0..=n {
            out.push(InputValue::Value(start + step * k as f64));
        }
    }
    Ok(out)
}

fn series_labels(series: &str) -> Result<LabelSet, String> {
    // `{}` is the empty label set (an aggregate such as `sum(x)` or
    // `vector(1)`), as promtool reads it; PromQL itself refuses a selector
    // without matchers.
    let inner = series.trim();
    if inner.is_empty()
        || inner
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .is_some_and(|r| r.trim().is_empty())
    {
        return Ok(LabelSet::default());
    }
    let expr = promql_parser::parser::parse(series).map_err(|e| format!("{series:?}: {e}"))?;
    let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
        return Err(format!("{series:?} is not a series selector"));
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(n) = vs.name {
        pairs.push(("__name__".into(), n));
    }
    for m in vs.matchers.matchers {
        if m.op != promql_parser::label::MatchOp::Equal {
            return Err(format!("{series:?}: only = matchers describe a series"));
        }
        if !pairs.iter().any(|(k, _)| *k == m.name) {
            pairs.push((m.name, m.value));
        }
    }
    Ok(LabelSet::from_labels(
        pairs
            .iter()
            .map(|(n, v)| tsdb::Label::new(n.as_str(), v.as_str()))
            .collect(),
    ))
}

fn dur(s: &str, what: &str) -> anyhow::Result<Duration> {
    alerting::duration::parse(s).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

fn labels_string(l: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

type LabelsAndAnnotations = (BTreeMap<String, String>, BTreeMap<String, String>);

fn show(alerts: &[LabelsAndAnnotations]) -> String {
    let parts: Vec<String> = alerts
        .iter()
        .enumerate()
        .map(|(i, (l, a))| {
            format!(
                "{i}:\n            Labels:{}\n            Annotations:{}",
                labels_string(l),
                labels_string(a)
            )
        })
        .collect();
    format!("[\n          {}\n        ]", parts.join("\n          "))
}

/// Runs one test group; returns the failures.
fn run_group(file_dir: &Path, file: &TestFile, tg: &TestGroup) -> anyhow::Result<Vec<String>> {
    let eval_interval = match &file.evaluation_interval {
        Some(s) => dur(s, "evaluation_interval")?,
        None => Duration::from_secs(60),
    };
    let eval_ms = eval_interval.as_millis().max(1) as i64;
    let interval = match &tg.interval {
        Some(s) => dur(s, "interval")?,
        None => eval_interval,
    };
    let step_ms = interval.as_millis().max(1) as i64;
    let scratch = tempfile_dir()?;
    let db = Arc::new(Db::open(&scratch, DbOptions::default()).context("scratch store")?);
    let mut writes = Vec::new();
    for s in &tg.input_series {
        let labels = series_labels(&s.series).map_err(|e| anyhow::anyhow!("input_series: {e}"))?;
        let values = expand_values(&s.values)
            .map_err(|e| anyhow::anyhow!("input_series {}: {e}", s.series))?;
        let samples: Vec<Sample> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let t = i as i64 * step_ms;
                match v {
                    InputValue::Value(x) => Some(Sample::new(t, *x)),
                    InputValue::Stale => Some(Sample::new(t, f64::from_bits(STALE_NAN_BITS))),
                    InputValue::Missing => None,
                }
            })
            .collect();
        writes.push(SeriesSamples { labels, samples });
    }
    // As promtool's lazy loader: input samples are added as evaluation
    // reaches their time, so rules and expression tests see nothing past
    // the last evaluation step.
    let mut loaded_till = i64::MIN;
    let mut load_till = |ts: i64| -> anyhow::Result<()> {
        let batch: Vec<SeriesSamples> = writes
            .iter()
            .map(|w| SeriesSamples {
                labels: w.labels.clone(),
                samples: w
                    .samples
                    .iter()
                    .filter(|x| x.t > loaded_till && x.t <= ts)
                    .copied()
                    .collect(),
            })
            .filter(|w| !w.samples.is_empty())
            .collect();
        loaded_till = ts;
        if !batch.is_empty() {
            db.append(&batch, AppendMode::Backfill, 0)
                .context("loading input_series")?;
        }
        Ok(())
    };
    let mut groups: Vec<GroupState> = Vec::new();
    let opts = EvalOptions {
        default_interval: eval_interval,
        external_labels: tg.external_labels.clone(),
        external_url: tg.external_url.clone().unwrap_or_default(),
        ..Default::default()
    };
    for f in &file.rule_files {
        let path = file_dir.join(f);
        let files = alerting::manager::expand_files(&[path]).map_err(anyhow::Error::msg)?;
        for p in files {
            for g in alerting::rule_file::load(&p)? {
                groups.push(GroupState::new(g, &opts));
            }
        }
    }
    if !file.group_eval_order.is_empty() {
        let order = &file.group_eval_order;
        groups.sort_by_key(|g| {
            order
                .iter()
                .position(|n| *n == g.group.name)
                .unwrap_or(usize::MAX)
        });
    }
    let backend = crate::rules::DbBackend {
        db: db.clone(),
        engine: promql::Engine::new(promql::EngineOptions::default()),
        logs: None,
    };
    let mut alert_tests: BTreeMap<i64, Vec<&AlertTest>> = BTreeMap::new();
    for t in &tg.alert_rule_test {
        alert_tests
            .entry(dur(&t.eval_time, "eval_time")?.as_millis() as i64)
            .or_default()
            .push(t);
    }
    let mut expr_times = Vec::new();
    for t in &tg.promql_expr_test {
        expr_times.push(dur(&t.eval_time, "eval_time")?.as_millis() as i64);
    }
    let max_t = alert_tests
        .keys()
        .chain(expr_times.iter())
        .copied()
        .max()
        .unwrap_or(0);
    let mut failures = Vec::new();
    let mut ts = 0;
    while ts <= max_t {
        load_till(ts)?;
        for g in &mut groups {
            g.evaluate(&backend, &opts, ts, ts);
            for r in &g.rules {
                if let Some(e) = &r.last_error {
                    failures.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.rule.name(),
                        alerting::duration::format(Duration::from_millis(ts as u64))
                    ));
                }
            }
        }
        // Alert tests whose eval_time falls in [ts, ts + interval).
        for (&t, tests) in alert_tests.range(ts..ts + eval_ms) {
            for test in tests {
                let mut got: Vec<LabelsAndAnnotations> = groups
                    .iter()
                    .flat_map(|g| g.rules.iter())
                    .filter(|r| r.rule.name() == test.alertname)
                    .flat_map(|r| r.alerts.values())
                    .filter(|a| a.state == AlertState::Firing)
                    .map(|a| {
                        (
                            a.labels
                                .iter()
                                .map(|l| (l.name.to_string(), l.value.to_string()))
                                .collect(),
                            a.annotations.clone(),
                        )
                    })
                    .collect();
                let mut exp: Vec<LabelsAndAnnotations> = test
                    .exp_alerts
                    .iter()
                    .map(|a| {
                        let mut l = a.exp_labels.clone();
                        l.insert("alertname".into(), test.alertname.clone());
                        (l, a.exp_annotations.clone())
                    })
                    .collect();
                got.sort();
                exp.sort();
                if got != exp {
                    failures.push(format!(
                        "    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        test.alertname,
                        alerting::duration::format(Duration::from_millis(t as u64)),
                        show(&exp),
                        show(&got)
                    ));
                }
            }
        }
        ts += eval_ms;
    }
    for (test, &t) in tg.promql_expr_test.iter().zip(&expr_times) {
        use alerting::Backend;
        let got = match backend.query(&test.expr, t) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!(
                    "    expr: {:?}, time: {}, err: {e}",
                    test.expr, test.eval_time
                ));
                continue;
            }
        };
        let mut got: Vec<(String, f64)> =
            got.into_iter().map(|(l, v)| (l.to_string(), v)).collect();
        let mut exp = Vec::new();
        for s in &test.exp_samples {
            let labels = if s.labels.is_empty() {
                LabelSet::default()
            } else {
                series_labels(&s.labels).map_err(|e| anyhow::anyhow!("exp_samples: {e}"))?
            };
            exp.push((labels.to_string(), s.value));
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same = got.len() == exp.len()
            && got.iter().zip(&exp).all(|(g, e)| {
                g.0 == e.0
                    && (g.1 == e.1
                        || (g.1.is_nan() && e.1.is_nan())
                        || (g.1 - e.1).abs() <= 1e-9 * e.1.abs().max(1.0))
            });
        if !same {
            let fmt = |v: &[(String, f64)]| {
                let parts: Vec<String> = v
                    .iter()
                    .map(|(l, x)| format!("{l} {}", promql::format_value(*x)))
                    .collect();
                format!("[{}]", parts.join(", "))
            };
            failures.push(format!(
                "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
                test.expr,
                test.eval_time,
                fmt(&exp),
                fmt(&got)
            ));
        }
    }
    drop(groups);
    drop(backend);
    drop(db);
    let _ = std::fs::remove_dir_all(&scratch);
    if let Some(name) = &tg.name {
        for f in &mut failures {
            f.insert_str(0, &format!("    name: {name},\n"));
        }
    }
    Ok(failures)
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir().join(format!(
        "vigil-test-rules-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    Ok(base)
}

fn run_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: TestFile = serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
    if file.tests.is_empty() && file.rule_files.is_empty() {
        bail!("no tests and no rule_files");
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut failures = Vec::new();
    for tg in &file.tests {
        failures.extend(run_group(dir, &file, tg)?);
    }
    Ok(failures)
}

/// Prints a verdict per file as promtool does; 1 when any failed.
pub fn run(files: &[PathBuf]) -> i32 {
    let mut failed = false;
    for f in files {
        println!("Unit Testing:  {}", f.display());
        match run_file(f) {
            Ok(fails) if fails.is_empty() => println!("  SUCCESS"),
            Ok(fails) => {
                failed = true;
                eprintln!("  FAILED:");
                for x in fails {
                    eprintln!("{x}");
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("  FAILED:");
                eprintln!("    {e:#}");
            }
        }
        println!();
    }
    i32::from(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expanding_notation() {
        use InputValue::*;
        assert_eq!(
            expand_values("-2+4x3 1-2x2 5x2 _ _x2 stale 7").unwrap(),
            [
                Value(-2.0),
                Value(2.0),
                Value(6.0),
                Value(10.0),
                Value(1.0),
                Value(-1.0),
                Value(-3.0),
                Value(5.0),
                Value(5.0),
                Value(5.0),
                Missing,
                Missing,
                Missing,
                Stale,
                Value(7.0)
            ]
        );
        assert!(expand_values("1+x").is_err());
        assert!(expand_values("abc").is_err());
        assert_eq!(
            series_labels("up{job=\"a\"}").unwrap().to_string(),
            "up{job=\"a\"}"
        );
        assert!(series_labels("rate(up[5m])").is_err());
    }
}
