//! End to end: the agent's container collector reads a fabricated node (a
//! cgroup v2 tree as the kubelet lays it out under the systemd driver) and
//! names it through a kubelet-like `/pods` that wants the service
//! account's token; the same fake kubelet serves `/metrics/resource` and
//! `/metrics/cadvisor`, scraped with the token as deploy/ configures them.
//! Everything lands in a Vigil server under cAdvisor's names.

mod common;

use common::{get_json, wait_for, Vigil};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "sa-token-for-the-test";
const UID: &str = "3f2a9c1e-7b4d-4e21-9a0b-1c2d3e4f5a6b";

fn app_id() -> String {
    "a1".repeat(32)
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A kubelet stand-in: `/pods`, `/metrics/resource`, `/metrics/cadvisor`,
/// each only with the bearer token (401 otherwise, as the kubelet answers).
fn fake_kubelet() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let pods = format!(
        r#"{{"kind":"PodList","items":[{{"metadata":{{"name":"web-0","namespace":"shop","uid":"{UID}"}},
          "status":{{"containerStatuses":[{{"name":"app","image":"registry.local/shop/web:1.4",
            "containerID":"containerd://{}","state":{{"running":{{"startedAt":"2026-12-03T10:00:00Z"}}}}}}]}}}}]}}"#,
        app_id()
    );
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 2048];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&req).to_string();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let authorized = head
                .lines()
                .any(|l| l.eq_ignore_ascii_case(&format!("authorization: Bearer {TOKEN}")));
            let (status, body) = match (authorized, path.as_str()) {
                (false, _) => ("401 Unauthorized", "Unauthorized".to_string()),
                (true, "/pods") => ("200 OK", pods.clone()),
                (true, "/metrics/resource") => (
                    "200 OK",
                    "# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total 1234.5\n"
                        .to_string(),
                ),
                (true, "/metrics/cadvisor") => (
                    "200 OK",
                    "# TYPE machine_cpu_cores gauge\nmachine_cpu_cores 2\n".to_string(),
                ),
                _ => ("404 Not Found", String::new()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes());
        }
    });
    port
}

/// One pod's cgroups as the kubelet makes them on cgroup v2.
fn fake_node(root: &Path) {
    let pod = format!(
        "cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        UID.replace('-', "_")
    );
    write(root, "cgroup/cgroup.controllers", "cpu io memory pids\n");
    write(root, &format!("{pod}/cpu.stat"), "usage_usec 9000000\n");
    write(root, &format!("{pod}/memory.current"), "300000000\n");
    let app = format!("{pod}/cri-containerd-{}.scope", app_id());
    write(
        root,
        &format!("{app}/cpu.stat"),
        "usage_usec 7250000\nuser_usec 5000000\nsystem_usec 2250000\n",
    );
    write(root, &format!("{app}/memory.current"), "200000000\n");
    write(
        root,
        &format!("{app}/memory.stat"),
        "anon 80000000\nfile 110000000\ninactive_file 40000000\n",
    );
    write(root, &format!("{app}/memory.max"), "536870912\n");
    write(root, &format!("{app}/cgroup.procs"), "4242\n");
    write(
        root,
        "proc/4242/net/dev",
        "Inter-| Receive | Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n  eth0: 123456 789 0 0 0 0 0 0 65432 321 0 0 0 0 0 0\n",
    );
}

fn query(server: &Vigil, q: &str) -> Vec<serde_json::Value> {
    let (code, body) = get_json(&server.url(&format!("/api/v1/query?query={}", common::enc(q))));
    assert_eq!(code, 200, "{q}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn container_metrics_reach_the_server_under_cadvisor_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fake_node(root);
    write(root, "token", &format!("{TOKEN}\n"));
    let kubelet = fake_kubelet();
    let server = Vigil::start(&root.join("data"), &[]);
    let token = root.join("token").display().to_string();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
containers:
  cgroupfs: {cgroup}
  procfs: {proc}
  sysfs: {sys}
  instance: node-1
  pods:
    url: http://127.0.0.1:{kubelet}/pods
    bearer_token_file: {token}
scrape_configs:
  - job_name: kubelet-resource
    metrics_path: /metrics/resource
    bearer_token_file: {token}
    static_configs:
      - targets: ['127.0.0.1:{kubelet}']
  - job_name: kubelet-cadvisor
    metrics_path: /metrics/cadvisor
    bearer_token_file: {token}
    static_configs:
      - targets: ['127.0.0.1:{kubelet}']
  - job_name: kubelet-no-token
    metrics_path: /metrics/cadvisor
    static_configs:
      - targets: ['127.0.0.1:{kubelet}']
remote_write:
  - url: {base}/api/v1/write
    queue_config:
      batch_send_deadline: 200ms
"#,
        cgroup = root.join("cgroup").display(),
        proc = root.join("proc").display(),
        sys = root.join("sys").display(),
        base = server.base,
    );
    let cfg_path = root.join("agent.yaml");
    std::fs::write(&cfg_path, config).expect("write config");
    let _agent = common::start_agent(&cfg_path, &root.join("agent"));

    // The series of one scrape travel in several send shards: wait for
    // each family queried below.
    wait_for("container metrics", Duration::from_secs(30), || {
        [
            "container_memory_working_set_bytes{container=\"app\"}",
            "container_cpu_usage_seconds_total{container!=\"\", cpu=\"total\"}",
            "container_network_receive_bytes_total{pod=\"web-0\"}",
        ]
        .iter()
        .all(|q| !query(&server, q).is_empty())
    });
    let ws = query(
        &server,
        "container_memory_working_set_bytes{container=\"app\"}",
    );
    let m = &ws[0]["metric"];
    assert_eq!(ws[0]["value"][1], "160000000", "{ws:?}");
    assert_eq!(m["job"], "cadvisor");
    assert_eq!(m["instance"], "node-1");
    assert_eq!(m["namespace"], "shop");
    assert_eq!(m["pod"], "web-0");
    assert_eq!(m["image"], "registry.local/shop/web:1.4");
    assert_eq!(m["name"], app_id());
    assert!(
        m["id"].as_str().is_some_and(|id| id.ends_with(".scope")),
        "{m}"
    );
    // A dashboard's usual queries.
    let cpu = query(
        &server,
        "sum by (namespace, pod) (container_cpu_usage_seconds_total{container!=\"\", cpu=\"total\"})",
    );
    assert_eq!(cpu.len(), 1, "{cpu:?}");
    assert_eq!(cpu[0]["value"][1], "7.25");
    let net = query(
        &server,
        "container_network_receive_bytes_total{pod=\"web-0\"}",
    );
    assert_eq!(net.len(), 1, "{net:?}");
    assert_eq!(net[0]["metric"]["interface"], "eth0");

    // The kubelet's own endpoints, with the token; without it, down.
    wait_for("the kubelet's endpoints", Duration::from_secs(30), || {
        !query(&server, "node_cpu_usage_seconds_total").is_empty()
            && !query(&server, "machine_cpu_cores").is_empty()
            && !query(&server, "up{job=\"kubelet-no-token\"} == 0").is_empty()
    });
    assert_eq!(query(&server, "up{job=\"cadvisor\"}")[0]["value"][1], "1");
}
