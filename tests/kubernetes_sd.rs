//! End to end: `kubernetes_sd_configs` with `role: pod` against a fake
//! Kubernetes API server that speaks list and watch as the real one does
//! (field selectors, resource versions, chunked watch streams, `410 Gone`
//! for a version from before a restart). The agent, told it runs on
//! `node-1`, scrapes only that node's pods, follows pods added and
//! deleted, keeps its targets while the API is away, and resyncs when it
//! returns.

mod common;

use common::{get_json, wait_for, Vigil};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Serves `metric{} N` for the pod named `name`.
fn serve_metrics(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind target");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 2048];
            let _ = conn.read(&mut buf);
            let body = format!("# TYPE app_info gauge\napp_info{{served_by=\"{name}\"}} 1\n");
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    port
}

fn pod(name: &str, node: &str, port: u16, rv: u64) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"),
            "resourceVersion": rv.to_string(), "labels": {"app": name},
            "annotations": {"prometheus.io/scrape": "true"}},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app:1",
            "ports": [{"name": "metrics", "containerPort": port}]}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

const PODS: &str = "/api/v1/pods";
const SERVICES: &str = "/api/v1/services";
const SLICES: &str = "/apis/discovery.k8s.io/v1/endpointslices";

/// A fake API server: pods, services and endpoint slices, and the watches
/// following them.
struct FakeApi {
    /// Resource versions of this incarnation start at `epoch * 1000`.
    epoch: u64,
    rv: AtomicU64,
    /// (collection path, object).
    objects: Mutex<Vec<(String, Value)>>,
    watchers: Mutex<Vec<(String, Sender<String>)>>,
    stopped: AtomicBool,
    port: u16,
    /// Field selectors the agent asked for.
    selectors: Mutex<Vec<String>>,
}

impl FakeApi {
    fn start(port: u16, epoch: u64, pods: Vec<Value>) -> Arc<FakeApi> {
        Self::start_with(
            port,
            epoch,
            pods.into_iter().map(|p| (PODS.to_string(), p)).collect(),
        )
    }

    fn start_with(port: u16, epoch: u64, objects: Vec<(String, Value)>) -> Arc<FakeApi> {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind fake API");
        let api = Arc::new(FakeApi {
            epoch,
            rv: AtomicU64::new(epoch * 1000 + 100),
            objects: Mutex::new(objects),
            watchers: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
            port: listener.local_addr().expect("addr").port(),
            selectors: Mutex::new(Vec::new()),
        });
        let a = Arc::clone(&api);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if a.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let a = Arc::clone(&a);
                std::thread::spawn(move || a.serve(conn));
            }
        });
        api
    }

    /// Closes the listener and every watch.
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        self.watchers.lock().unwrap().clear();
    }

    fn event(&self, kind: &str, object: Value) {
        self.event_in(PODS, kind, object);
    }

    fn event_in(&self, path: &str, kind: &str, mut object: Value) {
        let rv = self.rv.fetch_add(1, Ordering::SeqCst) + 1;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let line = json!({"type": kind, "object": object}).to_string();
        {
            let mut objects = self.objects.lock().unwrap();
            objects.retain(|(p, o)| {
                !(p == path && o["metadata"]["name"] == object["metadata"]["name"])
            });
            if kind != "DELETED" {
                objects.push((path.to_string(), object));
            }
        }
        self.watchers
            .lock()
            .unwrap()
            .retain(|(p, w)| p != path || w.send(line.clone()).is_ok());
    }

    fn serve(&self, conn: TcpStream) {
        let Some(target) = common::read_request_target(&conn) else {
            return;
        };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params: Vec<(String, String)> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), decode(v)))
            .collect();
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let mut conn = conn;
        if ![PODS, SERVICES, SLICES].contains(&path) {
            let _ = conn.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
        let node = param("fieldSelector").and_then(|f| {
            self.selectors.lock().unwrap().push(f.clone());
            f.strip_prefix("spec.nodeName=").map(str::to_string)
        });
        let on_node = move |p: &Value| node.as_deref().is_none_or(|n| p["spec"]["nodeName"] == n);
        if param("watch").as_deref() == Some("true") || param("watch").as_deref() == Some("1") {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
            let rv: u64 = param("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if rv / 1000 != self.epoch {
                let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                    "status": "Failure", "message": "too old resource version", "reason": "Expired", "code": 410}});
                let _ = write_chunk(&mut conn, &gone.to_string());
                let _ = conn.write_all(b"0\r\n\r\n");
                return;
            }
            let (tx, rx) = channel::<String>();
            self.watchers.lock().unwrap().push((path.to_string(), tx));
            while let Ok(line) = rx.recv() {
                let ev: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                if !on_node(&ev["object"]) {
                    continue;
                }
                if write_chunk(&mut conn, &line).is_err() {
                    return;
                }
            }
            let _ = conn.write_all(b"0\r\n\r\n");
            return;
        }
        let items: Vec<Value> = self
            .objects
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, o)| p == path && on_node(o))
            .map(|(_, o)| o.clone())
            .collect();
        let body = json!({"apiVersion": "v1", "kind": "List",
            "metadata": {"resourceVersion": self.rv.load(Ordering::SeqCst).to_string()},
            "items": items})
        .to_string();
        let _ = conn.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    }
}

fn write_chunk(conn: &mut TcpStream, line: &str) -> std::io::Result<()> {
    let data = format!("{line}\n");
    conn.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())?;
    conn.flush()
}

fn decode(v: &str) -> String {
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(x) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// `pod` label of every `up` series of the job, with its value.
fn ups(server: &Vigil) -> Vec<(String, String)> {
    ups_of(server, "pods")
}

fn ups_of(server: &Vigil, job: &str) -> Vec<(String, String)> {
    let q = format!("up{{job=\"{job}\"}}");
    let (_, body) = get_json(&server.url(&format!("/api/v1/query?query={}", common::enc(&q))));
    let mut out: Vec<(String, String)> = body["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["metric"]["pod"].as_str().unwrap_or("").to_string(),
                s["value"][1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn kubeconfig(dir: &std::path::Path, api_port: u16) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{api_port}\nusers:\n- name: agent\n  user:\n    token: test-token\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: agent\n    namespace: shop\ncurrent-context: fake\n"
        ),
    )
    .expect("write kubeconfig");
    path
}

fn slice(endpoints: &[(&str, &str, &str)], port: u16) -> Value {
    let eps: Vec<Value> = endpoints
        .iter()
        .map(|(ip, node, pod)| {
            json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": true},
                "targetRef": {"kind": "Pod", "name": pod, "namespace": "shop"}})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-x1", "namespace": "shop", "resourceVersion": "1001",
            "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "endpoints": eps,
        "ports": [{"name": "metrics", "port": port, "protocol": "TCP"}]})
}

/// `role: endpointslice` joins each address with its service and pod,
/// keeps only this node's addresses, and follows a slice that changes.
#[test]
fn endpoint_slices_of_this_node_with_their_service_and_pods() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = serve_metrics("web");
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1001", "labels": {"team": "checkout"}},
        "spec": {"clusterIP": "10.96.0.9", "ports": [{"name": "metrics", "port": port}]}});
    let objects = vec![
        (SERVICES.to_string(), service),
        (PODS.to_string(), pod("web-0", "node-1", port, 1001)),
        (PODS.to_string(), pod("web-1", "node-2", port, 1002)),
        (
            SLICES.to_string(),
            slice(
                &[
                    ("127.0.0.1", "node-1", "web-0"),
                    ("127.0.0.2", "node-2", "web-1"),
                ],
                port,
            ),
        ),
    ];
    let api = FakeApi::start_with(0, 1, objects);
    let kubeconfig = kubeconfig(dir.path(), api.port);
    let server = Vigil::start(&dir.path().join("data"), &[]);
    let config = format!(
        r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: slices
    kubernetes_sd_configs:
      - role: endpointslice
        kubeconfig_file: {kubeconfig}
    relabel_configs:
      - source_labels: [__meta_kubernetes_service_label_team]
        target_label: team
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - source_labels: [__meta_kubernetes_endpointslice_endpoint_node_name]
        target_label: node
remote_write:
  - url: {base}/api/v1/write
    queue_config:
      batch_send_deadline: 200ms
"#,
        kubeconfig = kubeconfig.display(),
        base = server.base,
    );
    let cfg_path = dir.path().join("agent.yaml");
    std::fs::write(&cfg_path, config).expect("write config");
    let mut agent = common::start_agent_with_env(
        &cfg_path,
        &dir.path().join("agent"),
        &[("NODE_NAME", "node-1")],
    );
    wait_for("node-1's endpoint", Duration::from_secs(30), || {
        ups_of(&server, "slices") == [("web-0".to_string(), "1".to_string())]
    });
    let (_, body) = get_json(&server.url(&format!(
        "/api/v1/query?query={}",
        common::enc("up{job=\"slices\"}")
    )));
    let m = &body["data"]["result"][0]["metric"];
    assert_eq!(
        (m["team"].as_str(), m["node"].as_str()),
        (Some("checkout"), Some("node-1")),
        "{body}"
    );
    // The slice gains an address on this node, backed by a new pod.
    api.event_in(PODS, "ADDED", pod("web-2", "node-1", port, 0));
    api.event_in(
        SLICES,
        "MODIFIED",
        slice(
            &[
                ("127.0.0.1", "node-1", "web-0"),
                ("127.0.0.2", "node-2", "web-1"),
                ("127.0.0.3", "node-1", "web-2"),
            ],
            port,
        ),
    );
    wait_for("the new endpoint", Duration::from_secs(20), || {
        ups_of(&server, "slices").len() == 2
    });
    assert_eq!(agent.terminate(), Some(0));
    api.stop();
}

#[test]
fn pods_of_this_node_are_followed_through_watches_and_api_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (web, other, late, after) = (
        serve_metrics("web"),
        serve_metrics("other"),
        serve_metrics("late"),
        serve_metrics("after"),
    );
    let api = FakeApi::start(
        0,
        1,
        vec![
            pod("web", "node-1", web, 1001),
            pod("other", "node-2", other, 1002),
        ],
    );
    let api_port = api.port;
    let kubeconfig = kubeconfig(dir.path(), api_port);
    let server = Vigil::start(&dir.path().join("data"), &[]);
    let config = format!(
        r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - role: pod
        kubeconfig_file: {kubeconfig}
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
        regex: "true"
        action: keep
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - source_labels: [__meta_kubernetes_pod_node_name]
        target_label: node
remote_write:
  - url: {base}/api/v1/write
    queue_config:
      batch_send_deadline: 200ms
"#,
        kubeconfig = kubeconfig.display(),
        base = server.base,
    );
    let cfg_path = dir.path().join("agent.yaml");
    std::fs::write(&cfg_path, config).expect("write config");
    let mut agent = common::start_agent_with_env(
        &cfg_path,
        &dir.path().join("agent"),
        &[("NODE_NAME", "node-1")],
    );

    // Only this node's pod, asked for by field selector.
    wait_for("the pod on node-1", Duration::from_secs(30), || {
        ups(&server) == [("web".to_string(), "1".to_string())]
    });
    assert!(
        api.selectors
            .lock()
            .unwrap()
            .iter()
            .all(|s| s == "spec.nodeName=node-1"),
        "{:?}",
        api.selectors.lock().unwrap()
    );
    let (_, body) =
        get_json(&server.url(&format!("/api/v1/query?query={}", common::enc("app_info"))));
    let m = &body["data"]["result"][0]["metric"];
    assert_eq!(
        (m["namespace"].as_str(), m["node"].as_str()),
        (Some("shop"), Some("node-1")),
        "{body}"
    );

    // A pod scheduled here appears; a deleted one goes (stale).
    api.event("ADDED", pod("late", "node-1", late, 0));
    api.event("ADDED", pod("elsewhere", "node-2", other, 0));
    wait_for("the added pod", Duration::from_secs(20), || {
        ups(&server)
            == [
                ("late".to_string(), "1".to_string()),
                ("web".to_string(), "1".to_string()),
            ]
    });
    api.event("DELETED", pod("web", "node-1", web, 0));
    wait_for("the deleted pod to go", Duration::from_secs(20), || {
        ups(&server) == [("late".to_string(), "1".to_string())]
    });

    // The API goes away: targets stay, the agent keeps scraping.
    api.stop();
    drop(api);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(ups(&server), [("late".to_string(), "1".to_string())]);

    // It comes back (new resource versions, a different pod set): the old
    // version is refused with 410, the agent lists again and follows.
    let api = FakeApi::start(api_port, 2, vec![pod("after", "node-1", after, 2001)]);
    wait_for(
        "the resync after the API's return",
        Duration::from_secs(60),
        || ups(&server) == [("after".to_string(), "1".to_string())],
    );
    assert_eq!(agent.terminate(), Some(0));
    api.stop();
}

/// `logs.pod_labels`: the agent tails a pod's log file and its streams
/// carry the pod's labels from the API (names made valid), queryable
/// through the Loki API; a relabelled pod's later lines follow.
#[test]
fn pod_logs_carry_the_pods_labels_from_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut web = pod("web", "node-1", 1, 1001);
    web["metadata"]["labels"] =
        json!({"app.kubernetes.io/name": "shop-web", "tier": "front", "unasked": "x"});
    let api = FakeApi::start(0, 1, vec![web.clone(), pod("other", "node-2", 1, 1002)]);
    let kubeconfig = kubeconfig(dir.path(), api.port);
    let server = Vigil::start(&dir.path().join("data"), &[]);
    let pods = dir.path().join("pods");
    let log = pods.join("shop_web_uid-web/app/0.log");
    std::fs::create_dir_all(log.parent().expect("parent")).expect("mkdir");
    let now = cri_now();
    std::fs::write(&log, format!("{now} stdout F hello from web\n")).expect("write log");
    let cfg_path = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg_path,
        format!(
            "logs:\n  pods_dir: {}\n  node_name: node-1\n  poll_interval: 100ms\n  pod_labels: [app.kubernetes.io/name, tier, missing]\n  kubernetes: {{kubeconfig_file: {}}}\n  push:\n    url: {}/loki/api/v1/push\n    queue_config: {{batch_send_deadline: 100ms}}\n",
            pods.display(),
            kubeconfig.display(),
            server.base
        ),
    )
    .expect("write config");
    let _agent = common::start_agent(&cfg_path, &dir.path().join("agent"));
    let query = |q: &str| {
        let (_, body) = get_json(&server.url(&format!(
            "/loki/api/v1/query_range?query={}&since=1h",
            common::enc(q)
        )));
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    wait_for(
        "web's line, with its pod labels",
        Duration::from_secs(30),
        || !query(r#"{app_kubernetes_io_name="shop-web"}"#).is_empty(),
    );
    let streams = query(r#"{namespace="shop"}"#);
    assert_eq!(streams.len(), 1, "{streams:?}");
    let labels = &streams[0]["stream"];
    assert_eq!(labels["tier"], "front", "{labels}");
    assert_eq!(labels["pod"], "web", "{labels}");
    assert!(labels.get("unasked").is_none(), "{labels}");
    assert_eq!(streams[0]["values"][0][1], "hello from web");
    assert!(api
        .selectors
        .lock()
        .unwrap()
        .iter()
        .all(|s| s == "spec.nodeName=node-1"));

    // The pod is relabelled: lines written after that carry the new value.
    web["metadata"]["labels"]["tier"] = json!("back");
    api.event("MODIFIED", web);
    std::thread::sleep(Duration::from_secs(1));
    let now = cri_now();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open log");
    writeln!(f, "{now} stdout F after the change").expect("append");
    wait_for(
        "the line after relabelling",
        Duration::from_secs(30),
        || {
            query(r#"{tier="back"}"#)
                .iter()
                .any(|s| s["values"][0][1] == "after the change")
        },
    );
}

/// Now as RFC 3339 with nanoseconds, as the CRI writes it.
/// The server finds Alertmanagers through `kubernetes_sd_configs` (role
/// pod, cluster-wide: pods of any node), keeps those relabel_configs
/// select, lists the rest as dropped, and follows a pod that goes away.
#[test]
fn alertmanagers_are_discovered_from_pods() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = FakeApi::start(
        0,
        1,
        vec![
            pod("alertmanager-0", "node-2", 9093, 1001),
            pod("web", "node-1", 8080, 1002),
        ],
    );
    let kubeconfig = kubeconfig(dir.path(), api.port);
    let cfg = dir.path().join("vigil.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"alerting:
  alertmanagers:
    - kubernetes_sd_configs:
        - role: pod
          kubeconfig_file: {}
      relabel_configs:
        - {{source_labels: [__meta_kubernetes_pod_label_app], regex: 'alertmanager-.*', action: keep}}
"#,
            kubeconfig.display()
        ),
    )
    .expect("write config");
    let server = Vigil::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().expect("utf-8")],
    );
    let urls = |kind: &str| -> Vec<String> {
        let (_, body) = get_json(&server.url("/api/v1/alertmanagers"));
        body["data"][kind]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["url"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for("the alertmanager pod", Duration::from_secs(20), || {
        urls("activeAlertmanagers") == ["http://127.0.0.1:9093/api/v2/alerts"]
    });
    assert_eq!(
        urls("droppedAlertmanagers"),
        ["http://127.0.0.1:8080/api/v2/alerts"]
    );
    api.event("DELETED", pod("alertmanager-0", "node-2", 9093, 0));
    wait_for("the alertmanager pod gone", Duration::from_secs(20), || {
        urls("activeAlertmanagers").is_empty()
    });
    api.stop();
}

fn cri_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
