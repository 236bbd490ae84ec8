//! `vigil logs`: runs a LogQL query against a running server and prints
//! lines as logcli does (`<time> <labels> <line>`), metric answers as a
//! table; `--follow` keeps polling for new lines.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogOutput {
    /// `<time> <labels> <line>`
    Default,
    /// The line only
    Raw,
    /// One JSON object per line: timestamp, labels, line
    Jsonl,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The LogQL query, e.g. '{namespace="prod"} |= "error"'
    pub query: String,
    /// How far back to look (a duration like 30m, 2h)
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// Start of the range (RFC 3339 or Unix time); overrides --since
    #[arg(long)]
    pub from: Option<String>,
    /// End of the range (RFC 3339 or Unix time) [default: now]
    #[arg(long)]
    pub to: Option<String>,
    /// Most lines to print
    #[arg(long, default_value_t = 30)]
    pub limit: usize,
    /// Oldest lines first (default: newest first)
    #[arg(long)]
    pub forward: bool,
    /// Keep printing new lines as they arrive
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Resolution of a metric query (duration or seconds)
    #[arg(long)]
    pub step: Option<String>,
    #[arg(long, short, value_enum, default_value = "default")]
    pub output: LogOutput,
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn get(url: &str) -> anyhow::Result<Value> {
    let (status, text) = match ureq::get(url).call() {
        Ok(r) => (
            r.status(),
            r.into_string().context("cannot read the server's answer")?,
        ),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => return Err(e).context("cannot reach Vigil"),
    };
    if status != 200 {
        bail!("query failed ({status}): {}", text.trim());
    }
    serde_json::from_str(&text)
        .with_context(|| format!("the server's answer is not JSON: {text:.200}"))
}

fn label_text(m: &Value) -> String {
    let parts: Vec<String> = m
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or("")))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// (time ns, labels, line) of a streams answer, in time order as asked.
fn entries(data: &Value, forward: bool) -> Vec<(i64, String, Value, String)> {
    let mut out = Vec::new();
    for s in data["result"].as_array().into_iter().flatten() {
        let labels = label_text(&s["stream"]);
        for v in s["values"].as_array().into_iter().flatten() {
            let ts = v[0].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
            let line = v[1].as_str().unwrap_or("").to_string();
            out.push((ts, labels.clone(), s["stream"].clone(), line));
        }
    }
    out.sort_by(|a, b| {
        if forward {
            a.0.cmp(&b.0)
        } else {
            b.0.cmp(&a.0)
        }
    });
    out
}

fn print_entry(o: LogOutput, ts: i64, labels: &str, stream: &Value, line: &str) {
    match o {
        LogOutput::Raw => println!("{line}"),
        LogOutput::Jsonl => println!(
            "{}",
            serde_json::json!({"timestamp": rfc3339(ts), "labels": stream, "line": line})
        ),
        LogOutput::Default => println!("{} {labels} {line}", rfc3339(ts)),
    }
}

fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

pub fn run(addr: &str, a: &LogsArgs) -> anyhow::Result<()> {
    let base = format!("http://{addr}");
    let end = a.to.clone().unwrap_or_else(|| now_ns().to_string());
    let mut url = format!(
        "{base}/loki/api/v1/query_range?query={}&limit={}&direction={}&end={}",
        enc(&a.query),
        a.limit,
        if a.forward { "forward" } else { "backward" },
        enc(&end)
    );
    match &a.from {
        Some(f) => url += &format!("&start={}", enc(f)),
        None => url += &format!("&since={}", enc(&a.since)),
    }
    if let Some(s) = &a.step {
        url += &format!("&step={}", enc(s));
    }
    let body = get(&url)?;
    let data = &body["data"];
    if data["resultType"] != "streams" {
        if a.follow {
            bail!("--follow works with log queries, not metric queries");
        }
        println!("{}", crate::query_cli::table(data));
        return Ok(());
    }
    let found = entries(data, a.forward);
    let mut last = found
        .iter()
        .map(|e| e.0)
        .max()
        .unwrap_or_else(|| now_ns() - 1);
    for (ts, labels, stream, line) in &found {
        print_entry(a.output, *ts, labels, stream, line);
    }
    if !a.follow {
        return Ok(());
    }
    // New lines: poll forward from the newest line seen; lines at that
    // same instant are remembered so none prints twice.
    let mut seen_at_last: HashSet<(String, String)> = found
        .iter()
        .filter(|e| e.0 == last)
        .map(|e| (e.1.clone(), e.3.clone()))
        .collect();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let url = format!(
            "{base}/loki/api/v1/query_range?query={}&limit=5000&direction=forward&start={last}&end={}",
            enc(&a.query),
            now_ns() + 1
        );
        let body = get(&url)?;
        for (ts, labels, stream, line) in entries(&body["data"], true) {
            if ts == last && seen_at_last.contains(&(labels.clone(), line.clone())) {
                continue;
            }
            if ts > last {
                last = ts;
                seen_at_last.clear();
            }
            seen_at_last.insert((labels.clone(), line.clone()));
            print_entry(a.output, ts, &labels, &stream, &line);
        }
    }
}
