//! End to end: the agent scrapes a real etcd (Debian's etcd-server, on
//! loopback) over HTTPS with a client certificate, as a control-plane
//! node's agent does; without the certificate, or trusting the wrong CA,
//! the target is down with the TLS error and the agent keeps going.

mod common;

use common::{free_port, get_json, wait_for, Vigil};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA named `name` (`name.pem`, `name.key`).
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

/// A certificate `name.pem` / `name.key` signed by `ca`, for `usage`
/// (serverAuth, clientAuth), valid for 127.0.0.1 and etcd.local.
fn make_cert(dir: &Path, ca: &str, name: &str, usage: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        format!("subjectAltName=IP:127.0.0.1,DNS:etcd.local\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n"),
    )
    .expect("write extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

struct Etcd(Child);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The targets of one job as the server lists them.
fn targets(server: &Vigil, job: &str) -> Vec<serde_json::Value> {
    let (_, body) = get_json(&server.url(&format!("/api/v1/targets?scrapePool={job}")));
    body["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn agent_scrapes_etcd_over_https_with_a_client_certificate() {
    let Some(etcd_bin) = common::peer_binary("etcd") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = dir.path();
    make_ca(pki, "ca");
    make_ca(pki, "other-ca");
    make_cert(pki, "ca", "server", "serverAuth");
    make_cert(pki, "ca", "client", "clientAuth");

    let (client_port, peer_port) = (free_port(), free_port());
    let p = |f: &str| pki.join(f).display().to_string();
    let _etcd = Etcd(
        Command::new(etcd_bin)
            .args(["--name", "test", "--data-dir"])
            .arg(pki.join("etcd-data"))
            .arg(format!(
                "--listen-client-urls=https://127.0.0.1:{client_port}"
            ))
            .arg(format!(
                "--advertise-client-urls=https://127.0.0.1:{client_port}"
            ))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
            ))
            .arg(format!(
                "--initial-cluster=test=http://127.0.0.1:{peer_port}"
            ))
            .arg(format!("--cert-file={}", p("server.pem")))
            .arg(format!("--key-file={}", p("server.key")))
            .arg(format!("--trusted-ca-file={}", p("ca.pem")))
            .arg("--client-cert-auth")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd"),
    );

    let server = Vigil::start(&dir.path().join("data"), &[]);
    let target = format!("'127.0.0.1:{client_port}'");
    let config = format!(
        r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: etcd
    scheme: https
    tls_config:
      ca_file: {ca}
      cert_file: {cert}
      key_file: {key}
    static_configs:
      - targets: [{target}]
  - job_name: etcd-by-name
    scheme: https
    tls_config:
      ca_file: {ca}
      cert_file: {cert}
      key_file: {key}
      server_name: etcd.local
      min_version: TLS12
    static_configs:
      - targets: [{target}]
  - job_name: etcd-no-client-cert
    scheme: https
    tls_config:
      ca_file: {ca}
    static_configs:
      - targets: [{target}]
  - job_name: etcd-wrong-ca
    scheme: https
    tls_config:
      ca_file: {other}
      cert_file: {cert}
      key_file: {key}
    static_configs:
      - targets: [{target}]
  - job_name: etcd-missing-cert
    scheme: https
    tls_config:
      ca_file: {ca}
      cert_file: {missing}
      key_file: {key}
    static_configs:
      - targets: [{target}]
remote_write:
  - url: {base}/api/v1/write
    queue_config:
      batch_send_deadline: 200ms
vigil_server:
  url: {base}
  report_interval: 1s
"#,
        ca = p("ca.pem"),
        cert = p("client.pem"),
        key = p("client.key"),
        other = p("other-ca.pem"),
        missing = p("rotated-in-later.pem"),
        base = server.base,
    );
    let cfg_path = dir.path().join("agent.yaml");
    std::fs::write(&cfg_path, config).expect("write config");
    let _agent = common::start_agent(&cfg_path, &dir.path().join("agent"));

    wait_for("etcd's metrics", Duration::from_secs(60), || {
        let (_, body) = get_json(&server.url(&format!(
            "/api/v1/query?query={}",
            common::enc("etcd_server_has_leader")
        )));
        body["data"]["result"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
    });
    for job in ["etcd", "etcd-by-name"] {
        // Reports go out every second, apart from the samples.
        wait_for(&format!("{job} to be up"), Duration::from_secs(20), || {
            targets(&server, job)
                .first()
                .is_some_and(|t| t["health"] == "up")
        });
        let t = targets(&server, job);
        assert_eq!(t.len(), 1, "{job}: {t:?}");
        assert_eq!(
            t[0]["scrapeUrl"],
            format!("https://127.0.0.1:{client_port}/metrics")
        );
    }
    // The failures: each target down with its own reason.
    let down_with = |job: &str, want: &[&str]| {
        wait_for(
            &format!("{job} to be down"),
            Duration::from_secs(20),
            || {
                targets(&server, job)
                    .first()
                    .is_some_and(|t| t["health"] == "down")
            },
        );
        let t = &targets(&server, job)[0];
        let err = t["lastError"].as_str().unwrap_or("").to_lowercase();
        assert!(
            want.iter().any(|w| err.contains(w)),
            "{job}: lastError {err:?} names none of {want:?}"
        );
    };
    down_with(
        "etcd-no-client-cert",
        &["certificate", "alert", "reset", "closed"],
    );
    down_with(
        "etcd-wrong-ca",
        &["invalid peer certificate", "unknownissuer"],
    );
    down_with("etcd-missing-cert", &["unable to read client cert"]);

    // The missing certificate appears (a secret mounted late, a rotation):
    // the next scrape uses it.
    std::fs::copy(pki.join("client.pem"), pki.join("rotated-in-later.pem")).expect("copy cert");
    wait_for(
        "the late certificate to be used",
        Duration::from_secs(20),
        || {
            targets(&server, "etcd-missing-cert")
                .first()
                .is_some_and(|t| t["health"] == "up")
        },
    );
}
