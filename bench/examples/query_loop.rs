//! Repeats one query against a running server and prints latency
//! percentiles: for profiling a single query (run the server under
//! `perf record` and point this at it).
//!
//! `cargo run --release -p vigil-bench --example query_loop -- URL QUERY TIME [REPS] [RANGE_S STEP_S]`

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        anyhow::bail!("usage: query_loop URL QUERY TIME_S [REPS] [RANGE_S STEP_S]");
    }
    let (base, query, time) = (&args[1], &args[2], args[3].parse::<i64>()?);
    let reps: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(200);
    let range: Option<(i64, i64)> = match (args.get(5), args.get(6)) {
        (Some(r), Some(s)) => Some((r.parse()?, s.parse()?)),
        _ => None,
    };
    let agent = ureq::AgentBuilder::new().build();
    let mut times = Vec::with_capacity(reps);
    let mut bytes = 0;
    for _ in 0..reps {
        let req = match range {
            None => agent
                .get(&format!("{base}/api/v1/query"))
                .query("query", query)
                .query("time", &time.to_string()),
            Some((r, s)) => agent
                .get(&format!("{base}/api/v1/query_range"))
                .query("query", query)
                .query("start", &(time - r).to_string())
                .query("end", &time.to_string())
                .query("step", &s.to_string()),
        };
        let t = Instant::now();
        let body = req.call()?.into_string()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        bytes = body.len();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "{reps} runs, {bytes} bytes: min {:.3} ms, p50 {:.3} ms, p90 {:.3} ms",
        p(0.0),
        p(0.5),
        p(0.9)
    );
    Ok(())
}
