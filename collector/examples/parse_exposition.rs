//! Throughput of the exposition parser and of a whole scrape's processing
//! (parse, series cache, relabeling, staleness, report series) on a body
//! shaped like node_exporter's: families with HELP and TYPE lines, a few
//! labels per series, float values.
//!
//! `cargo run --release -p collector --example parse_exposition -- [SERIES] [REPS]`

use collector::exposition::{Entry, Format, Parser};
use collector::scrape::{Body, ScrapeSettings, TargetScrapes};
use collector::scrape_config::AgentConfig;
use collector::target::{populate, static_groups, Outcome};
use std::time::{Duration, Instant};

fn body(series: usize, format: Format) -> String {
    let mut out = String::new();
    let per_family = 20;
    for f in 0..series.div_ceil(per_family) {
        let name = format!("node_bench_family{f:03}_bytes_total");
        out.push_str(&format!(
            "# HELP {name} A counter of bench family {f}.\n# TYPE {name} counter\n"
        ));
        for i in 0..per_family.min(series - f * per_family) {
            out.push_str(&format!(
                "{name}{{device=\"dev{i}\",mode=\"m{}\",instance_type=\"c5.large\"}} {}\n",
                i % 4,
                1.0e9 + (f * 1000 + i) as f64 * 1234.5678
            ));
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn report(what: &str, samples: usize, bytes: usize, reps: usize, took: Duration) {
    let per = took.as_nanos() as f64 / (samples * reps) as f64;
    let mbs = (bytes * reps) as f64 / took.as_secs_f64() / 1e6;
    println!("{what}: {per:.1} ns per sample, {mbs:.0} MB/s");
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let series = args.first().copied().unwrap_or(1000);
    let reps = args.get(1).copied().unwrap_or(2000);
    for format in [Format::Text, Format::OpenMetrics] {
        let text = body(series, format);
        let t = Instant::now();
        let mut n = 0;
        for _ in 0..reps {
            let mut p = Parser::new(&text, format);
            while let Ok(Some(e)) = p.next_entry() {
                if let Entry::Sample(s) = e {
                    n += s.labels.len();
                }
            }
        }
        let took = t.elapsed();
        std::hint::black_box(n);
        report(&format!("parse {format:?}"), series, text.len(), reps, took);
    }

    // A whole scrape's processing, the cache warm as in steady state.
    let cfg = AgentConfig::parse(
        "scrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets: ['host:9100']\n",
    )
    .unwrap_or_else(|e| panic!("bench config: {e}"));
    let sc = &cfg.scrape_configs[0];
    let Some(Outcome::Scrape(target)) = static_groups(sc)
        .first()
        .and_then(|g| populate(sc, &[], g).into_iter().next())
    else {
        panic!("bench target");
    };
    let mut scrapes = TargetScrapes::new(target, ScrapeSettings::from_config(sc));
    let text = body(series, Format::Text);
    let mut out = Vec::new();
    let t = Instant::now();
    for r in 0..reps {
        out.clear();
        let b = Body {
            bytes: text.as_bytes(),
            content_type: Some("text/plain; version=0.0.4"),
        };
        scrapes.process(Ok(b), r as i64 * 15_000, Duration::ZERO, &mut out);
    }
    report(
        "scrape processing (text)",
        series,
        text.len(),
        reps,
        t.elapsed(),
    );
}
