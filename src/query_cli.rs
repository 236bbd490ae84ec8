//! `vigil query`: runs a PromQL query against a running server over its
//! HTTP API and prints the answer as a table or as the API's JSON.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde_json::Value;

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The PromQL expression
    pub expr: String,
    /// Evaluation time of an instant query (RFC 3339 or Unix seconds) [default: now]
    #[arg(long, conflicts_with_all = ["start", "end"])]
    pub time: Option<String>,
    /// Start of a range query (RFC 3339 or Unix seconds)
    #[arg(long, requires = "end")]
    pub start: Option<String>,
    /// End of a range query (RFC 3339 or Unix seconds)
    #[arg(long, requires = "start")]
    pub end: Option<String>,
    /// Resolution of a range query (duration like 30s, or seconds)
    #[arg(long, default_value = "1m")]
    pub step: String,
    /// How to print the result
    #[arg(long, short, value_enum, default_value = "table")]
    pub output: Output,
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub fn run(addr: &str, a: &QueryArgs) -> anyhow::Result<()> {
    let base = format!("http://{addr}");
    let url = match (&a.start, &a.end) {
        (Some(s), Some(e)) => format!(
            "{base}/api/v1/query_range?query={}&start={}&end={}&step={}",
            enc(&a.expr),
            enc(s),
            enc(e),
            enc(&a.step)
        ),
        _ => {
            let mut u = format!("{base}/api/v1/query?query={}", enc(&a.expr));
            if let Some(t) = &a.time {
                u += &format!("&time={}", enc(t));
            }
            u
        }
    };
    let text = match ureq::get(&url).call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => {
            r.into_string().context("cannot read the server's answer")?
        }
        Err(e) => return Err(e).with_context(|| format!("cannot reach Vigil at {base}")),
    };
    let body: Value = serde_json::from_str(&text)
        .with_context(|| format!("the server's answer is not JSON: {text:.200}"))?;
    if body["status"] != "success" {
        bail!(
            "query failed ({}): {}",
            body["errorType"].as_str().unwrap_or("unknown"),
            body["error"].as_str().unwrap_or("")
        );
    }
    let text = match a.output {
        Output::Json => serde_json::to_string_pretty(&body["data"])?,
        Output::Table => table(&body["data"]),
    };
    println!("{text}");
    for w in body["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", w.as_str().unwrap_or(""));
    }
    Ok(())
}

fn labels(m: &Value) -> String {
    let parts: Vec<String> = m
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or("")))
        .collect();
    let name = m["__name__"].as_str().unwrap_or("");
    format!("{name}{{{}}}", parts.join(", "))
}

/// A point `[t, "v"]` as `t  v`.
fn point(p: &Value) -> String {
    format!("{}  {}", p[0], p[1].as_str().unwrap_or(""))
}

/// Instant vectors as `labels  value  time` rows (aligned); matrices as a
/// block of `time  value` rows per series.
pub(crate) fn table(data: &Value) -> String {
    let result = &data["result"];
    match data["resultType"].as_str().unwrap_or("") {
        "scalar" | "string" => point(result),
        "vector" => {
            let rows: Vec<(String, String, String)> = result
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    (
                        labels(&r["metric"]),
                        r["value"][1].as_str().unwrap_or("").to_string(),
                        r["value"][0].to_string(),
                    )
                })
                .collect();
            let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(6);
            let mut out = format!("{:<w$}  VALUE  TIME", "SERIES");
            for (l, v, t) in rows {
                out += &format!("\n{l:<w$}  {v}  {t}");
            }
            out
        }
        _ => {
            let mut out = String::new();
            for r in result.as_array().into_iter().flatten() {
                out += &labels(&r["metric"]);
                out.push('\n');
                for p in r["values"].as_array().into_iter().flatten() {
                    out += &format!("  {}\n", point(p));
                }
            }
            out.trim_end().to_string()
        }
    }
}
