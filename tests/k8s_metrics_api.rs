//! End to end: Vigil serves `metrics.k8s.io/v1beta1` on its TLS port and a
//! real `kubectl top` reads it. Between them stands a fake kube-apiserver
//! doing what the real one does for an aggregated API: it serves
//! discovery, the core `nodes` and `pods` (which `kubectl top node` and
//! Vigil's own pod and node watch read), and proxies
//! `/apis/metrics.k8s.io/...` to Vigil's port. The numbers are checked
//! against what PromQL says about the same data.

mod common;

use common::{free_port, get_json, Vigil};
use serde_json::{json, Value};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The fake kube-apiserver: `objects` by collection path, and the metrics
/// API proxied to `upstream` (Vigil's TLS port).
struct FakeApiServer {
    port: u16,
}

fn node(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels, "resourceVersion": "1"},
           "status": {"allocatable": {"cpu": "2", "memory": "4Gi"},
                      "capacity": {"cpu": "2", "memory": "4Gi"}}})
}

fn pod(ns: &str, name: &str, labels: Value, phase: &str) -> Value {
    json!({"metadata": {"namespace": ns, "name": name, "labels": labels, "resourceVersion": "1",
                        "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "x"}]},
           "status": {"phase": phase}})
}

impl FakeApiServer {
    fn start(upstream: u16, nodes: Vec<Value>, pods: Vec<Value>) -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake API server");
        let port = listener.local_addr().unwrap().port();
        let tls = vigil_config::http_client::TlsConfig {
            insecure_skip_verify: true,
            ..Default::default()
        };
        let client = collector::fetch::http_agent(Some(&tls)).expect("TLS client");
        let state = Arc::new((nodes, pods, client, upstream));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let state = Arc::clone(&state);
                std::thread::spawn(move || {
                    let (nodes, pods, client, upstream) = &*state;
                    serve(conn, nodes, pods, client, *upstream)
                });
            }
        });
        FakeApiServer { port }
    }
}

fn respond(conn: &mut TcpStream, code: u16, body: &str) {
    let _ = conn.write_all(
        format!(
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}

fn list(kind: &str, items: Vec<Value>) -> String {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})
        .to_string()
}

fn serve(
    mut conn: TcpStream,
    nodes: &[Value],
    pods: &[Value],
    client: &ureq::Agent,
    upstream: u16,
) {
    let Some(target) = common::read_request_target(&conn) else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if query.contains("watch=true") || query.contains("watch=1") {
        // A watch with nothing to report: held open until the test ends.
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let proxied = [
        "/apis/metrics.k8s.io",
        "/apis/custom.metrics.k8s.io",
        "/apis/external.metrics.k8s.io",
    ];
    if proxied.iter().any(|g| path.starts_with(g)) {
        // The aggregator's proxying, to Vigil's TLS port.
        let url = format!("https://127.0.0.1:{upstream}{path}?{query}");
        let (code, body) = match client.get(&url).call() {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap_or_default()),
            Err(e) => (502, e.to_string()),
        };
        return respond(&mut conn, code, &body);
    }
    let by_name = |items: &[Value], name: &str| {
        items
            .iter()
            .find(|o| o["metadata"]["name"] == name)
            .cloned()
    };
    match path {
        "/api" => respond(&mut conn, 200, &json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}).to_string()),
        "/apis" => respond(&mut conn, 200, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": "metrics.k8s.io", "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
             "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}}]}).to_string()),
        "/api/v1/nodes" => {
            // `k=v` label selectors, as `kubectl top node -l` sends them.
            let wanted = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("labelSelector="))
                .map(|s| s.replace("%3D", "="));
            let selected = nodes
                .iter()
                .filter(|n| {
                    wanted.as_deref().and_then(|w| w.split_once('=')).is_none_or(|(k, v)| n["metadata"]["labels"][k] == v)
                })
                .cloned()
                .collect();
            respond(&mut conn, 200, &list("NodeList", selected))
        }
        "/api/v1/pods" => respond(&mut conn, 200, &list("PodList", pods.to_vec())),
        p => {
            let found = if let Some(name) = p.strip_prefix("/api/v1/nodes/") {
                by_name(nodes, name)
            } else if let Some(rest) = p.strip_prefix("/api/v1/namespaces/") {
                match rest.split('/').collect::<Vec<_>>()[..] {
                    [ns, "pods"] => Some(json!({"kind": "PodList", "apiVersion": "v1", "metadata": {},
                        "items": pods.iter().filter(|o| o["metadata"]["namespace"] == ns).cloned().collect::<Vec<_>>()})),
                    [ns, "pods", name] => pods
                        .iter()
                        .find(|o| o["metadata"]["namespace"] == ns && o["metadata"]["name"] == name)
                        .cloned(),
                    _ => None,
                }
            } else {
                None
            };
            match found {
                Some(o) => respond(&mut conn, 200, &o.to_string()),
                None => respond(&mut conn, 404, &json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure", "message": "not found", "reason": "NotFound", "code": 404}).to_string()),
            }
        }
    }
}

/// Runs kubectl against the fake API server; (success, stdout + stderr).
fn kubectl(dir: &std::path::Path, api_port: u16, args: &[&str]) -> (bool, String) {
    let kubeconfig = dir.join("kubectl.yaml");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{api_port}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: u}}\ncurrent-context: fake\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(dir.join("kube-cache"))
        .arg("--request-timeout=20s")
        .args(args)
        .output()
        .expect("run kubectl (the test command installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Writes each series' two points, 15 s apart, the newest 5 s ago.
fn import_two_points<S: AsRef<str>>(v: &Vigil, data: &[(S, f64, f64)]) {
    let t1 = now_ms() - 5_000;
    let text: String = data
        .iter()
        .map(|(series, v0, v1)| {
            let series = series.as_ref();
            format!("{series} {v0} {}\n{series} {v1} {t1}\n", t1 - 15_000)
        })
        .collect();
    let (code, body) = common::post(
        &v.url("/api/v1/import/prometheus"),
        "text/plain",
        text.as_bytes(),
    );
    assert!(code < 300, "{code} {body}");
}

/// `kubectl get --raw PATH`.
fn get_raw(dir: &std::path::Path, api_port: u16, path: &str) -> (bool, String) {
    kubectl(dir, api_port, &["get", "--raw", path])
}

/// Rows of kubectl's table output, split on whitespace, header dropped.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .filter(|r: &Vec<String>| !r.is_empty())
        .collect()
}

/// PromQL's instant answer for `q` as one number.
fn promql(v: &Vigil, q: &str) -> f64 {
    let (code, body) = get_json(&v.url(&format!("/api/v1/query?query={}", common::enc(q))));
    assert_eq!(code, 200, "{q}: {body}");
    body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{q}: {body}"))
}

/// Starts Vigil with the metrics API on `metrics_port`, watching pods and
/// nodes through the fake API server on `api_port`; `extra` goes into
/// the `k8s_metrics_api` section.
fn start_vigil(dir: &std::path::Path, api_port: u16, metrics_port: u16, extra: &str) -> Vigil {
    let vigil_kubeconfig = dir.join("vigil-kube.yaml");
    std::fs::write(
        &vigil_kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{api_port}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: u}}\ncurrent-context: fake\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let cfg = dir.join("vigil.yaml");
    std::fs::write(
        &cfg,
        format!(
            "k8s_metrics_api:\n  listen_addr: 127.0.0.1:{metrics_port}\n  allow_unauthenticated: true\n  kubernetes:\n    kubeconfig_file: {}\n{extra}",
            vigil_kubeconfig.display()
        ),
    )
    .unwrap();
    Vigil::start(&dir.join("data"), &["--config", cfg.to_str().unwrap()])
}

#[test]
fn kubectl_top_reads_pods_and_nodes_from_vigil() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    // Vigil watches pods and nodes through the fake API server, which in
    // turn proxies the metrics API back to Vigil.
    let api = FakeApiServer::start(
        metrics_port,
        vec![
            node(
                "node-a",
                json!({"kubernetes.io/hostname": "node-a", "pool": "web"}),
            ),
            node("node-b", json!({"kubernetes.io/hostname": "node-b"})),
        ],
        vec![
            pod("shop", "web-0", json!({"app": "web"}), "Running"),
            pod("shop", "db-0", json!({"app": "db"}), "Running"),
            pod("shop", "done-0", json!({"app": "batch"}), "Succeeded"),
            // One container lacks CPU: the pod is left out, as metrics-server does.
            pod("shop", "half-0", json!({"app": "half"}), "Running"),
        ],
    );
    let v = start_vigil(dir.path(), api.port, metrics_port, "");

    // Two scrapes 15 s apart, the newest 5 s ago: cAdvisor's container
    // series (web-0's two containers, db-0, and a finished pod's), the
    // kubelet's node series for node-a, node_exporter's for node-b.
    let t1 = now_ms() - 5_000;
    let t0 = t1 - 15_000;
    let c = |name: &str, pod: &str, container: &str| {
        format!(r#"{name}{{namespace="shop",pod="{pod}",container="{container}",job="cadvisor"}}"#)
    };
    let (cpu, mem) = (
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
    );
    let busy = |mode: &str| {
        format!(r#"node_cpu_seconds_total{{instance="node-b",cpu="0",mode="{mode}"}}"#)
    };
    let meminfo = |field: &str| format!(r#"node_memory_{field}_bytes{{instance="node-b"}}"#);
    // (series, value at t0, value at t1)
    let data: Vec<(String, f64, f64)> = vec![
        (c(cpu, "web-0", "app"), 100.0, 101.5),
        (c(mem, "web-0", "app"), 52428800.0, 52428800.0),
        (c(cpu, "web-0", "proxy"), 7.0, 7.03),
        (c(mem, "web-0", "proxy"), 8388608.0, 8388608.0),
        (c(cpu, "db-0", "postgres"), 50.0, 53.0),
        (c(mem, "db-0", "postgres"), 2e8, 209715200.0),
        (c(cpu, "done-0", "job"), 1.0, 2.0),
        (c(mem, "done-0", "job"), 1e6, 1e6),
        (c(cpu, "half-0", "a"), 1.0, 2.0),
        (c(mem, "half-0", "a"), 1e6, 1e6),
        (c(mem, "half-0", "b"), 1e6, 1e6),
        (
            r#"node_cpu_usage_seconds_total{node="node-a"}"#.into(),
            1000.0,
            1003.0,
        ),
        (
            r#"node_memory_working_set_bytes{node="node-a"}"#.into(),
            2147483648.0,
            2147483648.0,
        ),
        (busy("user"), 500.0, 503.5),
        (busy("system"), 100.0, 101.0),
        (busy("idle"), 9000.0, 9025.0),
        (busy("iowait"), 5.0, 6.0),
        (meminfo("MemTotal"), 4294967296.0, 4294967296.0),
        (meminfo("MemFree"), 1073741824.0, 1073741824.0),
        (meminfo("Inactive_file"), 1073741824.0, 1073741824.0),
    ];
    let text: String = data
        .iter()
        .map(|(series, v0, v1)| format!("{series} {v0} {t0}\n{series} {v1} {t1}\n"))
        .collect();
    let (code, body) = common::post(
        &v.url("/api/v1/import/prometheus"),
        "text/plain",
        text.as_bytes(),
    );
    assert!(code < 300, "{code} {body}");

    // Vigil knows the pods once its watch has listed them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out) = get_raw(
            dir.path(),
            api.port,
            "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods",
        );
        if ok && out.contains("\"app\":\"web\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pods never listed with their labels: {out}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // kubectl top pod -A: running pods only, CPU as PromQL's irate says.
    let (ok, out) = kubectl(dir.path(), api.port, &["top", "pod", "-A"]);
    assert!(ok, "{out}");
    let web_cpu = promql(
        &v,
        r#"sum(irate(container_cpu_usage_seconds_total{pod="web-0"}[2m]))"#,
    );
    assert!((web_cpu - 0.102).abs() < 1e-9, "{web_cpu}");
    assert_eq!(
        rows(&out),
        [
            ["shop", "db-0", "200m", "200Mi"],
            ["shop", "web-0", "102m", "58Mi"],
        ],
        "{out}"
    );

    // --containers with a label selector: web-0's two containers.
    let (ok, out) = kubectl(
        dir.path(),
        api.port,
        &["top", "pod", "-n", "shop", "--containers", "-l", "app=web"],
    );
    assert!(ok, "{out}");
    assert_eq!(
        rows(&out),
        [
            ["web-0", "app", "100m", "50Mi"],
            ["web-0", "proxy", "2m", "8Mi"]
        ],
        "{out}"
    );

    // kubectl top node: node-a from the kubelet's series, node-b from
    // node_exporter's (busy modes: 4.5 s of CPU in 15 s; 4 GiB less free
    // and inactive file pages).
    let (ok, out) = kubectl(dir.path(), api.port, &["top", "node"]);
    assert!(ok, "{out}");
    let r = rows(&out);
    assert_eq!(r.len(), 2, "{out}");
    // Allocatable: 2 CPUs, 4 GiB.
    assert_eq!(r[0], ["node-a", "200m", "10%", "2048Mi", "50%"], "{out}");
    assert_eq!(r[1], ["node-b", "300m", "15%", "2048Mi", "50%"], "{out}");
    let (ok, out) = kubectl(dir.path(), api.port, &["top", "node", "-l", "pool=web"]);
    assert!(
        ok && rows(&out).len() == 1 && out.contains("node-a"),
        "{out}"
    );

    // The objects themselves, as metrics-server writes them.
    let (ok, out) = get_raw(
        dir.path(),
        api.port,
        "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/web-0",
    );
    assert!(ok, "{out}");
    let p: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["kind"], "PodMetrics");
    assert_eq!(p["apiVersion"], "metrics.k8s.io/v1beta1");
    assert_eq!(p["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(p["window"], "15s");
    assert_eq!(
        p["containers"][0],
        json!({"name": "app", "usage": {"cpu": "100m", "memory": "50Mi"}})
    );
    assert_eq!(p["containers"][1]["usage"]["cpu"], "2m");

    // Errors are Status objects with the right reason.
    let (ok, out) = get_raw(
        dir.path(),
        api.port,
        "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/nope",
    );
    assert!(
        !ok && out.contains("NotFound") && out.contains(r#"pods "nope" not found"#),
        "{out}"
    );
    let (ok, out) = get_raw(
        dir.path(),
        api.port,
        "/apis/metrics.k8s.io/v1beta1/nodes/node-c",
    );
    assert!(!ok && out.contains(r#"node "node-c" not found"#), "{out}");
    let (ok, out) = get_raw(
        dir.path(),
        api.port,
        "/apis/metrics.k8s.io/v1beta1/pods?labelSelector=app%20in%20web",
    );
    assert!(!ok && out.contains("BadRequest"), "{out}");

    // Discovery, straight from Vigil's port.
    let tls = vigil_config::http_client::TlsConfig {
        insecure_skip_verify: true,
        ..Default::default()
    };
    let client = collector::fetch::http_agent(Some(&tls)).unwrap();
    let get = |path: &str| -> (u16, Value) {
        let r = client
            .get(&format!("https://127.0.0.1:{metrics_port}{path}"))
            .call();
        let (code, body) = match r {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap()),
            Err(e) => panic!("{path}: {e}"),
        };
        (
            code,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    };
    let (code, rl) = get("/apis/metrics.k8s.io/v1beta1");
    assert_eq!(code, 200);
    assert_eq!(rl["resources"][0]["kind"], "NodeMetrics");
    assert_eq!(rl["resources"][1]["namespaced"], true);
    let (code, doc) = get("/openapi/v2");
    assert_eq!((code, doc["swagger"].clone()), (200, json!("2.0")));
    let (code, st) = get("/apis/metrics.k8s.io/v1beta1/frobs");
    assert_eq!(
        (code, st["kind"].clone(), st["reason"].clone()),
        (404, json!("Status"), json!("NotFound"))
    );
    let (code, ok_text) = get("/readyz");
    assert_eq!((code, ok_text), (200, json!("ok")));
    drop(v);
}

#[test]
fn the_metrics_api_is_refused_without_authentication_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vigil.yaml");
    std::fs::write(&cfg, "k8s_metrics_api:\n  listen_addr: 127.0.0.1:0\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--no-local-agent")
        .arg("--listen-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("allow_unauthenticated: true"), "{err}");
}

/// prometheus-adapter's walkthrough rule, a namespace-level rule and an
/// external rule, as users write them.
const ADAPTER_RULES: &str = r#"
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: "namespace"}
      pod: {resource: "pod"}
  name: {matches: "^(.*)_total", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
- seriesQuery: '{__name__="queue_length",namespace!=""}'
  resources: {template: "<<.Resource>>"}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: '{__name__="queue_depth",topic!=""}'
  resources: {namespaced: false}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (topic)'
"#;

#[test]
fn custom_and_external_metrics_answer_what_their_queries_give() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let api = FakeApiServer::start(
        metrics_port,
        vec![node("node-a", json!({}))],
        vec![
            pod("shop", "web-0", json!({"app": "web"}), "Running"),
            pod("shop", "web-1", json!({"app": "web"}), "Running"),
            pod("shop", "db-0", json!({"app": "db"}), "Running"),
        ],
    );
    let rules = dir.path().join("adapter.yaml");
    std::fs::write(&rules, ADAPTER_RULES).unwrap();
    // The check command accepts the file, and refuses a broken one.
    let check = |f: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["check", "k8s-metrics"])
            .arg(f)
            .output()
            .unwrap()
    };
    assert!(check(&rules).status.success());
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "rules:\n- {seriesQuery: up, metricsQuery: '<<.Series'}\n",
    )
    .unwrap();
    let out = check(&broken);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rules[0].metricsQuery"));

    let v = start_vigil(
        dir.path(),
        api.port,
        metrics_port,
        &format!(
            "  adapter_config_file: {}\n  relist_interval: 1s\n",
            rules.display()
        ),
    );
    import_two_points(
        &v,
        &[
            (
                r#"http_requests_total{namespace="shop",pod="web-0"}"#,
                100.0,
                130.0,
            ),
            (
                r#"http_requests_total{namespace="shop",pod="web-1"}"#,
                50.0,
                65.0,
            ),
            (
                r#"http_requests_total{namespace="shop",pod="db-0"}"#,
                10.0,
                10.0,
            ),
            (r#"queue_length{namespace="shop",queue="a"}"#, 7.0, 4.0),
            (r#"queue_length{namespace="shop",queue="b"}"#, 1.0, 2.5),
            (r#"queue_depth{topic="orders",name="q1"}"#, 40.0, 42.0),
            (r#"queue_depth{topic="orders",name="q2"}"#, 1.0, 0.5),
            (r#"queue_depth{topic="audit",name="q3"}"#, 9.0, 9.0),
        ],
    );
    let raw = |path: &str| -> (bool, Value, String) {
        let (ok, out) = get_raw(dir.path(), api.port, path);
        (ok, serde_json::from_str(&out).unwrap_or(Value::Null), out)
    };
    // Discovery lists what the rules found, once relisted.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, list, out) = raw("/apis/custom.metrics.k8s.io/v1beta2");
        let names: Vec<&str> = list["resources"].as_array().map_or(Vec::new(), |r| {
            r.iter().filter_map(|x| x["name"].as_str()).collect()
        });
        if ok
            && names.contains(&"pods/http_requests_per_second")
            && names.contains(&"namespaces/queue_length")
        {
            assert!(
                names.contains(&"namespaces/http_requests_per_second"),
                "{out}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "metrics never discovered: {out}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (ok, ext, out) = raw("/apis/external.metrics.k8s.io/v1beta1");
    assert!(ok && ext["resources"][0]["name"] == "queue_depth", "{out}");

    // Pods selected by labels: web-0 and web-1, each with the value the
    // rendered query gives through PromQL.
    let (ok, list, out) = raw("/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/http_requests_per_second?labelSelector=app%3Dweb");
    assert!(ok, "{out}");
    assert_eq!(list["kind"], "MetricValueList");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{out}");
    for item in items {
        let name = item["describedObject"]["name"].as_str().unwrap();
        assert_eq!(item["describedObject"]["kind"], "Pod");
        assert_eq!(item["describedObject"]["namespace"], "shop");
        assert_eq!(item["metric"]["name"], "http_requests_per_second");
        let want = promql(
            &v,
            &format!(
                r#"sum(rate(http_requests_total{{namespace="shop",pod="{name}"}}[2m])) by (pod)"#
            ),
        );
        // The API ran it a moment earlier: rate()'s extrapolation moves
        // with the evaluation time, by well under a thousandth here.
        let got = millis_of(item["value"].as_str().unwrap());
        assert!(
            (got - want).abs() <= 0.002,
            "{name}: {got} vs PromQL {want}: {out}"
        );
    }
    // One object (v1beta1's shape), and the namespace's own metric.
    let (ok, one, out) = raw(
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/shop/pods/web-1/http_requests_per_second",
    );
    assert!(
        ok && one["items"][0]["metricName"] == "http_requests_per_second",
        "{out}"
    );
    let item = one["items"][0].as_object().unwrap();
    assert!(
        item.contains_key("selector") && item["selector"].is_null(),
        "{out}"
    );
    let (ok, ns, out) =
        raw("/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/metrics/queue_length");
    assert!(ok, "{out}");
    assert_eq!(ns["items"][0]["describedObject"]["kind"], "Namespace");
    assert_eq!(ns["items"][0]["value"], "6500m", "{out}");
    // External: the selector is on the metric's labels.
    let (ok, e, out) = raw("/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_depth?labelSelector=topic%3Dorders");
    assert!(ok, "{out}");
    assert_eq!(e["items"].as_array().map(Vec::len), Some(1), "{out}");
    assert_eq!(e["items"][0]["metricLabels"], json!({"topic": "orders"}));
    assert_eq!(e["items"][0]["value"], "42500m");
    // Unknown metrics and objects are NotFound Status errors.
    let (ok, _, out) = raw("/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/nope");
    assert!(
        !ok && out.contains("NotFound")
            && out.contains("the server could not find the metric nope for pods"),
        "{out}"
    );
    let (ok, _, out) = raw(
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/ghost-0/http_requests_per_second",
    );
    assert!(!ok && out.contains("for pods ghost-0"), "{out}");
    let (ok, _, out) = raw("/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/http_requests_per_second?metricLabelSelector=n%3E1");
    assert!(!ok && out.contains("BadRequest"), "{out}");
    drop(v);
}

/// A quantity the adapter prints (`"467m"`, `"2"`) as a number.
fn millis_of(q: &str) -> f64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse::<f64>().unwrap() / 1000.0,
        None => q.parse().unwrap(),
    }
}

/// prometheus-adapter's `resourceRules` as its deploy manifest ships them
/// (window shortened).
const RESOURCE_RULES: &str = r#"
resourceRules:
  cpu:
    containerQuery: 'sum by (<<.GroupBy>>) (irate (container_cpu_usage_seconds_total{<<.LabelMatchers>>,container!="",pod!=""}[4m]))'
    nodeQuery: 'sum by (<<.GroupBy>>) (irate(node_cpu_usage_seconds_total{<<.LabelMatchers>>}[4m]))'
    resources: {overrides: {namespace: {resource: namespace}, node: {resource: node}, pod: {resource: pod}}}
    containerLabel: container
  memory:
    containerQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>,container!="",pod!=""})'
    nodeQuery: 'sum by (<<.GroupBy>>) (node_memory_working_set_bytes{<<.LabelMatchers>>})'
    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
    containerLabel: container
  window: 1m
"#;

#[test]
fn resource_rules_feed_kubectl_top_as_the_adapter_does() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let api = FakeApiServer::start(
        metrics_port,
        vec![node("node-a", json!({}))],
        vec![pod("shop", "web-0", json!({"app": "web"}), "Running")],
    );
    let rules = dir.path().join("adapter.yaml");
    std::fs::write(&rules, RESOURCE_RULES).unwrap();
    let v = start_vigil(
        dir.path(),
        api.port,
        metrics_port,
        &format!("  adapter_config_file: {}\n", rules.display()),
    );
    let c = |name: &str, container: &str| {
        format!(r#"{name}{{namespace="shop",pod="web-0",container="{container}"}}"#)
    };
    import_two_points(
        &v,
        &[
            (c("container_cpu_usage_seconds_total", "app"), 100.0, 101.5),
            (
                c("container_memory_working_set_bytes", "app"),
                52428800.0,
                52428800.0,
            ),
            (c("container_cpu_usage_seconds_total", "proxy"), 7.0, 7.03),
            (
                c("container_memory_working_set_bytes", "proxy"),
                8388608.0,
                8388608.0,
            ),
            (
                r#"node_cpu_usage_seconds_total{node="node-a"}"#.into(),
                1000.0,
                1003.0,
            ),
            (
                r#"node_memory_working_set_bytes{node="node-a"}"#.into(),
                2147483648.0,
                2147483648.0,
            ),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let (ok, out) = kubectl(
            dir.path(),
            api.port,
            &["top", "pod", "-n", "shop", "--containers"],
        );
        if ok && out.contains("web-0") {
            break out;
        }
        assert!(Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(300));
    };
    // The adapter's queries over the same data, through PromQL.
    let app = promql(
        &v,
        r#"sum(irate(container_cpu_usage_seconds_total{container="app"}[4m]))"#,
    );
    assert!((app - 0.1).abs() < 1e-9, "{app}");
    assert_eq!(
        rows(&out),
        [
            ["web-0", "app", "100m", "50Mi"],
            ["web-0", "proxy", "2m", "8Mi"]
        ],
        "{out}"
    );
    let (ok, out) = kubectl(dir.path(), api.port, &["top", "node"]);
    assert!(ok, "{out}");
    assert_eq!(
        rows(&out),
        [["node-a", "200m", "10%", "2048Mi", "50%"]],
        "{out}"
    );
    // The window is the rules' window.
    let (ok, out) = get_raw(
        dir.path(),
        api.port,
        "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/web-0",
    );
    assert!(ok, "{out}");
    let p: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["window"], "1m0s", "{out}");
    drop(v);
}

#[test]
fn the_adapters_documented_configs_serve_what_their_queries_give() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let api = FakeApiServer::start(
        metrics_port,
        vec![node("node-a", json!({}))],
        vec![pod("shop", "web-0", json!({"app": "web"}), "Running")],
    );
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/k8s/adapter-corpus.yaml");
    let v = start_vigil(
        dir.path(),
        api.port,
        metrics_port,
        &format!(
            "  adapter_config_file: {}\n  relist_interval: 1s\n",
            corpus.display()
        ),
    );
    import_two_points(
        &v,
        &[
            (
                r#"container_cpu_usage_seconds_total{namespace="shop",pod="web-0",container="app"}"#,
                100.0,
                101.5,
            ),
            (
                r#"container_network_receive_bytes_total{namespace="shop",pod="web-0",container="app"}"#,
                1000.0,
                2500.0,
            ),
            (
                r#"http_requests_total{kubernetes_namespace="shop",kubernetes_pod_name="web-0"}"#,
                10.0,
                40.0,
            ),
            (
                r#"http_requests_total{namespace="shop",pod="web-0"}"#,
                100.0,
                130.0,
            ),
            (
                r#"queue_consumer_lag{namespace="shop",name="q1"}"#,
                5.0,
                7.0,
            ),
            (r#"queue_depth{topic="orders",name="q2"}"#, 3.0, 4.0),
        ],
    );
    // The names the adapter would expose for these series (the sample
    // config's third rule says `__name__!=`, not `!~`, so it names the
    // container series too).
    let want = [
        "pods/container_cpu_usage_seconds",
        "namespaces/container_cpu_usage_seconds",
        "pods/container_network_receive_bytes",
        "namespaces/container_network_receive_bytes",
        "pods/cpu_usage",
        "namespaces/cpu_usage",
        "pods/network_receive_bytes",
        "namespaces/network_receive_bytes",
        "pods/http_requests_per_second",
        "namespaces/http_requests_per_second",
        "pods/http_requests",
        "namespaces/http_requests",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out) = get_raw(dir.path(), api.port, "/apis/custom.metrics.k8s.io/v1beta2");
        let list: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        let names: Vec<&str> = list["resources"].as_array().map_or(Vec::new(), |r| {
            r.iter().filter_map(|x| x["name"].as_str()).collect()
        });
        if ok && want.iter().all(|w| names.contains(w)) {
            assert_eq!(names.len(), want.len(), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "want {want:?}: {out}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // Each answer is what its metricsQuery gives through PromQL.
    for (path, query) in [
        (
            "namespaces/shop/pods/web-0/cpu_usage",
            r#"sum(rate(container_cpu_usage_seconds_total{namespace="shop",pod="web-0",container!="POD"}[2m])) by (pod)"#,
        ),
        (
            "namespaces/shop/pods/web-0/network_receive_bytes",
            r#"sum(rate(container_network_receive_bytes_total{namespace="shop",pod="web-0",container!="POD"}[2m])) by (pod)"#,
        ),
        (
            "namespaces/shop/pods/web-0/http_requests_per_second",
            r#"sum(rate(http_requests_total{kubernetes_namespace="shop",kubernetes_pod_name="web-0"}[2m])) by (kubernetes_pod_name)"#,
        ),
        (
            "namespaces/shop/metrics/http_requests",
            r#"sum(rate(http_requests_total{namespace="shop",container!="POD"}[2m])) by (namespace)"#,
        ),
    ] {
        let (ok, out) = get_raw(
            dir.path(),
            api.port,
            &format!("/apis/custom.metrics.k8s.io/v1beta2/{path}"),
        );
        assert!(ok, "{path}: {out}");
        let got: Value = serde_json::from_str(&out).unwrap();
        let got = millis_of(got["items"][0]["value"].as_str().unwrap_or("NaN"));
        let want = promql(&v, query);
        assert!(
            (got - want).abs() <= 0.002 * want.abs().max(1.0),
            "{path}: {got} vs PromQL {want}"
        );
    }
    for (path, value) in [
        ("namespaces/shop/queue_consumer_lag", "7"),
        ("namespaces/anywhere/queue_depth", "4"),
    ] {
        let (ok, out) = get_raw(
            dir.path(),
            api.port,
            &format!("/apis/external.metrics.k8s.io/v1beta1/{path}"),
        );
        assert!(ok, "{path}: {out}");
        let got: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(got["items"][0]["value"], value, "{path}: {out}");
    }
    drop(v);
}
