//! Head chunk decoding cost per sample, over chunks shaped like
//! node_exporter data: byte counters (integers), CPU-seconds counters (two
//! decimals), gauges (two decimals, random walk), constant series, and
//! non-decimal floats; 15 s scrapes with a few ms of jitter.
//! `cargo run --release -p tsdb --example decode_rate`

use std::time::Instant;
use tsdb::chunk::{FrozenChunk, OpenChunk};
use tsdb::Sample;

const CHUNKS_PER_KIND: usize = 2000;
const SAMPLES_PER_CHUNK: usize = 120;

/// A small deterministic generator (xorshift), so runs compare.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn chunks(kind: usize, rng: &mut Rng) -> Vec<FrozenChunk> {
    (0..CHUNKS_PER_KIND)
        .map(|_| {
            let mut c = OpenChunk::new();
            let mut t: i64 = 1_790_000_000_000 + rng.below(15_000) as i64;
            let mut v: f64 = match kind {
                0 => rng.below(1 << 40) as f64,
                1 => rng.below(10_000_000) as f64 / 100.0,
                2 => rng.below(400) as f64 / 100.0,
                3 => 1.0,
                _ => rng.below(1000) as f64 / 7.0,
            };
            for _ in 0..SAMPLES_PER_CHUNK {
                c.push(Sample::new(t, v));
                // Most scrapes land on time; some jitter by a few ms.
                t += 15_000 + [0, 0, 0, 1, 2, -1, -3, 4][rng.below(8) as usize];
                v = match kind {
                    0 => v + rng.below(1 << 20) as f64,
                    1 => ((v * 100.0).round() + rng.below(1500) as f64) / 100.0,
                    2 => ((v * 100.0).round() + rng.below(21) as f64 - 10.0).abs() / 100.0,
                    3 => v,
                    _ => v + rng.below(1000) as f64 / 7.0,
                };
            }
            c.freeze()
        })
        .collect()
}

fn main() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let names = [
        "byte counters",
        "cpu seconds",
        "gauges",
        "constant",
        "binary floats",
    ];
    let mut out: Vec<Sample> = Vec::with_capacity(SAMPLES_PER_CHUNK);
    let mut total = 0.0;
    for (kind, name) in names.iter().enumerate() {
        let cs = chunks(kind, &mut rng);
        let bytes: usize = cs.iter().map(|c| c.byte_len()).sum();
        let mut best = f64::MAX;
        let mut check = 0.0;
        for _ in 0..15 {
            let start = Instant::now();
            for c in &cs {
                out.clear();
                c.decode_into(i64::MIN, i64::MAX, &mut out);
                check += out[out.len() - 1].v;
            }
            let ns = start.elapsed().as_nanos() as f64 / (cs.len() * SAMPLES_PER_CHUNK) as f64;
            best = best.min(ns);
        }
        total += best;
        println!(
            "{name:>14}: {best:5.2} ns per sample, {:.2} bytes per sample (check {check:.0})",
            bytes as f64 / (cs.len() * SAMPLES_PER_CHUNK) as f64
        );
    }
    println!(
        "{:>14}: {:5.2} ns per sample",
        "mean",
        total / names.len() as f64
    );
}
