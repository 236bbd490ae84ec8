//! Head append cost per sample on a node_exporter-sized head: 100 000
//! series in requests of 1 000 (one host's scrape), appended on one thread,
//! so cache misses of the series lookup and chunk writes show as they do
//! in remote_write ingest. `cargo run --release -p tsdb --example append_rate`

use std::time::Instant;
use tsdb::head::SeriesInput;
use tsdb::{AppendMode, Db, DbOptions, LabelsRef, Sample};

const HOSTS: usize = 100;
const SERIES_PER_HOST: usize = 1000;
const SCRAPES: usize = 40;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("vigil-append-rate-{}", std::process::id()));
    let db = Db::open(&dir, DbOptions::default())?;
    // Label strings per host: name, instance, job, and a per-series label.
    let hosts: Vec<Vec<[String; 4]>> = (0..HOSTS)
        .map(|h| {
            (0..SERIES_PER_HOST)
                .map(|s| {
                    [
                        format!("node_metric_{}_total", s % 97),
                        format!("host-{h:03}.example.org:9100"),
                        "node".to_string(),
                        format!("dev{s}"),
                    ]
                })
                .collect()
        })
        .collect();
    let t0: i64 = 1_790_000_000_000;
    let mut best = f64::MAX;
    let mut samples_buf: Vec<Sample> = Vec::with_capacity(SERIES_PER_HOST);
    for scrape in 0..SCRAPES {
        let start = Instant::now();
        for (h, series) in hosts.iter().enumerate() {
            let t = t0 + scrape as i64 * 15_000 + h as i64;
            samples_buf.clear();
            samples_buf.extend((0..series.len()).map(|s| Sample {
                t,
                v: (scrape * (s % 13)) as f64 + 0.25,
            }));
            let pairs: Vec<[(&str, &str); 4]> = series
                .iter()
                .map(|[n, i, j, d]| {
                    [
                        ("__name__", n.as_str()),
                        ("device", d.as_str()),
                        ("instance", i.as_str()),
                        ("job", j.as_str()),
                    ]
                })
                .collect();
            let inputs: Vec<SeriesInput> = pairs
                .iter()
                .zip(samples_buf.chunks(1))
                .map(|(p, s)| SeriesInput {
                    labels: LabelsRef::from_sorted(p),
                    samples: s,
                })
                .collect();
            db.append_inputs(&inputs, AppendMode::Live, t)?;
        }
        // The first scrape creates the series; later ones are the steady state.
        if scrape > 0 {
            let ns = start.elapsed().as_nanos() as f64 / (HOSTS * SERIES_PER_HOST) as f64;
            best = best.min(ns);
        }
    }
    println!("append: {best:.0} ns per sample (best of {} scrapes of {HOSTS} x {SERIES_PER_HOST} series)", SCRAPES - 1);
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
