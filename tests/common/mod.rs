//! Helpers for end-to-end tests: start the real `vigil` binary on a free
//! port with its own data dir, talk to it over HTTP, stop it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

pub struct Vigil {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
}

impl Vigil {
    /// Starts `vigil` (all-in-one) on a free port and waits for `/-/ready`.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Vigil {
        // A free port can be taken by another test between `free_port`
        // and vigil's bind; a child that exits before ready gets one
        // more port rather than failing the test on a race.
        for _ in 0..3 {
            match Vigil::try_start_on(data_dir, &free_port().to_string(), extra) {
                Ok(v) => return v,
                Err(e) => eprintln!("vigil did not start, retrying on another port: {e}"),
            }
        }
        Vigil::start_on(data_dir, &free_port().to_string(), extra)
    }

    /// Starts `vigil` on a given port (to come back where a client expects it).
    pub fn start_on(data_dir: &Path, port: &str, extra: &[&str]) -> Vigil {
        Vigil::try_start_on(data_dir, port, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start_on(data_dir: &Path, port: &str, extra: &[&str]) -> Result<Vigil, String> {
        // Tests control what is stored: the built-in agent stays off
        // unless a test asks for it (`--local-agent` in `extra`).
        let with_agent = extra.contains(&"--local-agent");
        let extra: Vec<&str> = extra
            .iter()
            .copied()
            .filter(|a| *a != "--local-agent")
            .collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        if !with_agent {
            cmd.arg("--no-local-agent");
        }
        let child = cmd
            .arg("--listen-addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(&extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn vigil");
        let mut v = Vigil {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
        };
        v.try_wait_ready(Duration::from_secs(60))?;
        Ok(v)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn wait_ready(&mut self, timeout: Duration) {
        self.try_wait_ready(timeout)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Polls `/-/ready`, giving up early (with the exit status) when the
    /// process has already died instead of polling a dead port.
    fn try_wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = try_get(&self.url("/-/ready")) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "vigil at {} exited before ready: {status}",
                    self.base
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!("vigil at {} not ready in {timeout:?}", self.base));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().ok().and_then(|s| s.code())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

pub fn into_pair(r: Result<ureq::Response, ureq::Error>) -> Result<(u16, String), String> {
    match r {
        Ok(resp) => {
            let code = resp.status();
            // Read whole: an export after a fast ingest outgrows
            // `into_string`'s 10 MB cap.
            let mut body = String::new();
            std::io::Read::read_to_string(&mut resp.into_reader(), &mut body)
                .map_err(|e| e.to_string())?;
            Ok((code, body))
        }
        Err(ureq::Error::Status(code, resp)) => Ok((code, resp.into_string().unwrap_or_default())),
        Err(e) => Err(e.to_string()),
    }
}

pub fn try_get(url: &str) -> Result<(u16, String), String> {
    into_pair(agent().get(url).call())
}

pub fn get(url: &str) -> (u16, String) {
    try_get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

pub fn get_json(url: &str) -> (u16, serde_json::Value) {
    let (code, body) = get(url);
    let v =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"));
    (code, v)
}

pub fn try_post(url: &str, content_type: &str, body: &[u8]) -> Result<(u16, String), String> {
    into_pair(
        agent()
            .post(url)
            .set("Content-Type", content_type)
            .send_bytes(body),
    )
}

/// Any method with a JSON body (PUT, DELETE, ...).
pub fn send(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let req = agent().request(method, url);
    let r = match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    };
    into_pair(r).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

pub fn post(url: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    try_post(url, content_type, body).unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// Percent-encodes a query parameter value.
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---- remote_write encoding (independent of the server's decoder) ----

pub struct TestSeries<'a> {
    pub labels: Vec<(&'a str, &'a str)>,
    pub samples: Vec<(i64, f64)>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len(out: &mut Vec<u8>, field: u64, body: &[u8]) {
    put_varint(out, field << 3 | 2);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// A snappy-compressed remote_write 1.0 WriteRequest.
pub fn remote_write_body(series: &[TestSeries]) -> Vec<u8> {
    let mut req = Vec::new();
    for s in series {
        let mut ts = Vec::new();
        for (n, v) in &s.labels {
            let mut l = Vec::new();
            put_len(&mut l, 1, n.as_bytes());
            put_len(&mut l, 2, v.as_bytes());
            put_len(&mut ts, 1, &l);
        }
        for (t, v) in &s.samples {
            let mut smp = Vec::new();
            smp.push(1 << 3 | 1);
            smp.extend_from_slice(&v.to_bits().to_le_bytes());
            put_varint(&mut smp, 2 << 3);
            put_varint(&mut smp, *t as u64);
            put_len(&mut ts, 2, &smp);
        }
        put_len(&mut req, 1, &ts);
    }
    snap::raw::Encoder::new()
        .compress_vec(&req)
        .expect("snappy")
}

/// A snappy-compressed WriteRequest carrying only metadata entries:
/// (metric family, MetricType code, help, unit).
pub fn remote_write_metadata_body(entries: &[(&str, u64, &str, &str)]) -> Vec<u8> {
    let mut req = Vec::new();
    for (family, kind, help, unit) in entries {
        let mut m = Vec::new();
        put_varint(&mut m, 1 << 3);
        put_varint(&mut m, *kind);
        put_len(&mut m, 2, family.as_bytes());
        put_len(&mut m, 4, help.as_bytes());
        put_len(&mut m, 5, unit.as_bytes());
        put_len(&mut req, 3, &m);
    }
    snap::raw::Encoder::new()
        .compress_vec(&req)
        .expect("snappy")
}

pub fn remote_write(v: &Vigil, series: &[TestSeries]) -> (u16, String) {
    post(
        &v.url("/api/v1/write"),
        "application/x-protobuf",
        &remote_write_body(series),
    )
}

/// Export lines for a selector: (labels JSON, timestamps, values).
pub fn export(
    v: &Vigil,
    selector: &str,
) -> Vec<(serde_json::Value, Vec<i64>, Vec<serde_json::Value>)> {
    let (code, body) = get(&v.url(&format!("/api/v1/export?match[]={}", enc(selector))));
    assert_eq!(code, 200, "{body}");
    body.lines()
        .map(|l| {
            let j: serde_json::Value = serde_json::from_str(l).expect("export line is JSON");
            let ts = j["timestamps"]
                .as_array()
                .expect("timestamps")
                .iter()
                .map(|t| t.as_i64().expect("ts"))
                .collect();
            let vals = j["values"].as_array().expect("values").clone();
            (j["metric"].clone(), ts, vals)
        })
        .collect()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Finds a Debian-packaged peer binary, or explains how to get it.
pub fn peer_binary(name: &str) -> Option<PathBuf> {
    let p = Path::new("/usr/bin").join(name);
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is required in CI; .ci/run installs it");
    }
    eprintln!("skipping: {name} not installed (run .ci/run to install test peers)");
    None
}

/// A real Prometheus (the Debian package) run by a test; killed when dropped.
pub struct Prometheus {
    pub child: std::process::Child,
    pub base: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `vigil agent`; killed when dropped.
pub struct Agent {
    pub child: Child,
    /// Its own HTTP endpoint (`/metrics`, `/-/ready`).
    pub base: String,
}

impl Agent {
    /// SIGTERM and wait for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `vigil agent --config CFG --data-dir DIR`, its own /metrics on a
/// free loopback port.
pub fn start_agent(cfg: &Path, data_dir: &Path) -> Agent {
    start_agent_with_env(cfg, data_dir, &[])
}

/// [`start_agent`] with extra environment variables (`NODE_NAME`, ...).
pub fn start_agent_with_env(cfg: &Path, data_dir: &Path, env: &[(&str, &str)]) -> Agent {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["agent", "--config"])
        .arg(cfg)
        .arg("--listen-addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data_dir)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn agent");
    Agent {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// Polls `ok` every 200 ms until it holds; fails the test after `timeout`.
pub fn wait_for(what: &str, timeout: std::time::Duration, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Reads an HTTP/1.1 request's head from `conn` (a fake server's side)
/// and returns its target (`/path?query`); None if the client went away.
pub fn read_request_target(conn: &std::net::TcpStream) -> Option<String> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(conn.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => return None,
            Ok(_) if h == "\r\n" => break,
            Ok(_) => {}
        }
    }
    Some(
        request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string(),
    )
}
