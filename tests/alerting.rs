//! End to end: rule files loaded by the server, data ingested through
//! remote_write makes an alert go pending then firing; `/api/v1/rules`
//! and `/api/v1/alerts` in Prometheus's shapes; `ALERTS` and recording
//! rule output queryable; reload by `POST /-/reload` and SIGHUP keeps
//! alert state; a restart while pending keeps the `for` progress.

mod common;

use common::{get_json, now_ms, remote_write, wait_for, TestSeries, Vigil};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const RULES: &str = r#"
groups:
  - name: availability
    interval: 1s
    rules:
      - record: job:up:min
        expr: min by (job) (up)
      - alert: TargetDown
        expr: up == 0
        for: 2s
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.instance }} of {{ $labels.job }} is down ({{ $value }})"
      - alert: SlowBurn
        expr: up == 0
        for: 1h
"#;

fn config(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("rules.yml"), RULES).expect("write rules");
    let cfg = dir.join("vigil.yaml");
    std::fs::write(
        &cfg,
        "global:\n  evaluation_interval: 1s\n  external_labels: {cluster: test}\nrule_files: [rules.yml]\n",
    )
    .expect("write config");
    cfg
}

/// One alerting rule, evaluated every second, for the notifier tests.
const TARGET_DOWN: &str = "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: TargetDown\n        expr: up == 0\n        labels: {severity: page}\n        annotations: {summary: '{{ $labels.instance }} down'}\n";

/// Writes `up{job="node",instance="a:9100"} value` now.
fn up_is(v: &Vigil, value: f64) {
    let (status, body) = remote_write(
        v,
        &[TestSeries {
            labels: vec![("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
            samples: vec![(now_ms(), value)],
        }],
    );
    assert!(status < 300, "{status} {body}");
}

fn feed(v: &Vigil) {
    up_is(v, 0.0);
}

fn alerts(v: &Vigil) -> Vec<Value> {
    let (_, body) = get_json(&v.url("/api/v1/alerts"));
    body["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn alert<'a>(all: &'a [Value], name: &str) -> Option<&'a Value> {
    all.iter().find(|a| a["labels"]["alertname"] == name)
}

fn query(v: &Vigil, q: &str) -> Vec<Value> {
    let (_, body) = get_json(&v.url(&format!("/api/v1/query?query={}", common::enc(q))));
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn rules_fire_reload_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let data = dir.path().join("data");
    let cfg_arg = cfg.to_str().expect("utf-8 path");
    let mut v = Vigil::start(&data, &["--config", cfg_arg]);
    feed(&v);
    wait_for("TargetDown pending", Duration::from_secs(20), || {
        alert(&alerts(&v), "TargetDown").is_some_and(|a| a["state"] == "pending")
    });
    wait_for("TargetDown firing", Duration::from_secs(20), || {
        feed(&v);
        alert(&alerts(&v), "TargetDown").is_some_and(|a| a["state"] == "firing")
    });
    let all = alerts(&v);
    let a = alert(&all, "TargetDown").expect("firing");
    assert_eq!(a["labels"]["severity"], "page");
    assert_eq!(a["labels"]["instance"], "a:9100");
    assert_eq!(a["annotations"]["summary"], "a:9100 of node is down (0)");
    assert_eq!(a["value"], "0e+00");
    let active_at = a["activeAt"].as_str().expect("activeAt").to_string();

    // /api/v1/rules: groups, rule types, health, states.
    let (_, body) = get_json(&v.url("/api/v1/rules"));
    let g = &body["data"]["groups"][0];
    assert_eq!(g["name"], "availability");
    assert_eq!(g["interval"], 1.0);
    assert!(
        g["file"].as_str().is_some_and(|f| f.ends_with("rules.yml")),
        "{g}"
    );
    let rules = g["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0]["type"], "recording");
    assert_eq!(rules[0]["health"], "ok");
    assert_eq!(rules[1]["type"], "alerting");
    assert_eq!(rules[1]["state"], "firing");
    assert_eq!(rules[1]["duration"], 2.0);
    assert_eq!(rules[2]["state"], "pending");
    let (_, only) = get_json(&v.url("/api/v1/rules?type=record"));
    assert_eq!(
        only["data"]["groups"][0]["rules"].as_array().map(Vec::len),
        Some(1)
    );

    // Rule output in the store.
    wait_for(
        "ALERTS and the recorded series",
        Duration::from_secs(10),
        || {
            !query(&v, "ALERTS{alertname=\"TargetDown\",alertstate=\"firing\"}").is_empty()
                && !query(&v, "job:up:min{job=\"node\"}").is_empty()
        },
    );
    let fs = query(&v, "ALERTS_FOR_STATE{alertname=\"SlowBurn\"}");
    assert_eq!(fs.len(), 1, "{fs:?}");
    let slow_active: f64 = fs[0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("activeAt value");

    // The rule engine on /metrics.
    let (_, metrics) = common::get(&v.url("/metrics"));
    assert!(
        metrics.contains("vigil_rule_group_last_duration_seconds{rule_group=\"")
            && metrics.contains("rules.yml;availability\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigil_rule_evaluations_total "),
        "{metrics}"
    );
    assert!(metrics.contains("vigil_rule_group_rules{"), "{metrics}");

    // Reload with a rule added: alerts keep their state.
    std::fs::write(
        dir.path().join("rules.yml"),
        format!("{RULES}      - record: job:up:count\n        expr: count by (job) (up)\n"),
    )
    .expect("rewrite rules");
    let (_, info) = get_json(&v.url("/api/v1/status/runtimeinfo"));
    let started_config = info["data"]["lastConfigTime"].clone();
    std::thread::sleep(Duration::from_millis(1100));
    let (status, text) = common::post(&v.url("/-/reload"), "text/plain", b"");
    assert_eq!(status, 200, "{text}");
    let (_, info) = get_json(&v.url("/api/v1/status/runtimeinfo"));
    assert_eq!(info["data"]["reloadConfigSuccess"], true, "{info}");
    let reloaded_config = info["data"]["lastConfigTime"].clone();
    assert_ne!(
        reloaded_config, started_config,
        "a reload moves lastConfigTime"
    );
    let (_, body) = get_json(&v.url("/api/v1/rules"));
    assert_eq!(
        body["data"]["groups"][0]["rules"].as_array().map(Vec::len),
        Some(4)
    );
    let all = alerts(&v);
    let a = alert(&all, "TargetDown").expect("still there");
    assert_eq!(
        (a["state"].as_str(), a["activeAt"].as_str()),
        (Some("firing"), Some(active_at.as_str()))
    );
    // A broken file is refused and the running rules stay.
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: x\n    rules:\n      - alert: B\n        expr: up ==\n",
    )
    .expect("break rules");
    let (status, text) = common::post(&v.url("/-/reload"), "text/plain", b"");
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("group \"x\", rule 1, \"B\""), "{text}");
    // runtimeinfo shows the failed reload; the last good config time stays.
    let (_, info) = get_json(&v.url("/api/v1/status/runtimeinfo"));
    assert_eq!(info["data"]["reloadConfigSuccess"], false, "{info}");
    assert_eq!(info["data"]["lastConfigTime"], reloaded_config, "{info}");
    let (_, body) = get_json(&v.url("/api/v1/rules"));
    assert_eq!(
        body["data"]["groups"][0]["rules"].as_array().map(Vec::len),
        Some(4)
    );
    // SIGHUP reloads too.
    std::fs::write(dir.path().join("rules.yml"), RULES).expect("restore rules");
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &v.pid().to_string()])
        .status();
    wait_for("the SIGHUP reload", Duration::from_secs(10), || {
        let (_, body) = get_json(&v.url("/api/v1/rules"));
        body["data"]["groups"][0]["rules"].as_array().map(Vec::len) == Some(3)
    });
    wait_for(
        "runtimeinfo to show the SIGHUP reload",
        Duration::from_secs(10),
        || {
            let (_, info) = get_json(&v.url("/api/v1/status/runtimeinfo"));
            info["data"]["reloadConfigSuccess"] == true
        },
    );

    // Restart while SlowBurn is pending: its pending time is restored
    // (shifted by the downtime), not started again.
    assert_eq!(v.terminate(), Some(0));
    let down = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let v = Vigil::start(&data, &["--config", cfg_arg]);
    feed(&v);
    wait_for("SlowBurn restored", Duration::from_secs(20), || {
        feed(&v);
        let fs = query(&v, "ALERTS_FOR_STATE{alertname=\"SlowBurn\"}");
        fs.first()
            .and_then(|s| s["value"][1].as_str().and_then(|x| x.parse::<f64>().ok()))
            .is_some_and(|x| {
                (x - slow_active).abs() < down.elapsed().as_secs_f64() + 3.0
                    && x < now_ms() as f64 / 1000.0 - 2.0
            })
    });
}

/// A receiver for Alertmanager's webhooks: every POST body, as JSON.
fn webhook_receiver(port: u16) -> (u16, Hooks) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind receiver");
    let port = listener.local_addr().expect("addr").port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().expect("clone"));
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                g.lock().expect("lock").push(v);
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, got)
}

/// Vigil with TARGET_DOWN and the built-in notifier configured by
/// `dir/am.yml`; `head` goes first in its config.
fn start_with_notifier(dir: &Path, head: &str) -> Vigil {
    std::fs::write(dir.join("rules.yml"), TARGET_DOWN).expect("write rules");
    let cfg = dir.join("vigil.yaml");
    std::fs::write(
        &cfg,
        format!("{head}alerting:\n  resend_delay: 1s\n  notifier_config_file: am.yml\nrule_files: [rules.yml]\n"),
    )
    .expect("write config");
    Vigil::start(
        &dir.join("data"),
        &["--config", cfg.to_str().expect("utf-8")],
    )
}

type Hooks = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;

/// The first webhook payload with `status`, waiting up to 30 s for it.
fn hook_with(hooks: &Hooks, status: &str) -> Value {
    let mut found = None;
    wait_for(
        &format!("a {status} webhook"),
        Duration::from_secs(30),
        || {
            found = hooks
                .lock()
                .expect("lock")
                .iter()
                .find(|h| h["status"] == status)
                .cloned();
            found.is_some()
        },
    );
    found.unwrap_or(Value::Null)
}

/// bcrypt (cost 4) of "vigil-secret", for Alertmanager's web config.
const AM_PASSWORD_HASH: &str = "$2b$04$FNeZoq.2bBtvDUHGSwTIBe4ep8rM5ZxmQT0ILkXRBtlRHgv..R04G";

/// Alerts reach a real Alertmanager (Debian's, behind basic auth) through
/// API v2: found through file_sd_configs, authenticated with a password
/// file, with external labels, the global and the entry's
/// alert_relabel_configs applied and a generatorURL; a second entry's
/// target that relabel_configs drops gets nothing and is listed as
/// dropped. Alertmanager notifies a webhook of the alert firing, then
/// resolved once the series recovers.
#[test]
fn alerts_reach_a_real_alertmanager_then_resolve() {
    let Some(am_bin) = common::peer_binary("prometheus-alertmanager") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook_port, hooks) = webhook_receiver(0);
    std::fs::write(
        dir.path().join("am.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{hook_port}/hook\n        send_resolved: true\n"
        ),
    )
    .expect("write am.yml");
    std::fs::write(
        dir.path().join("am-web.yml"),
        format!("basic_auth_users:\n  vigil: '{AM_PASSWORD_HASH}'\n"),
    )
    .expect("write am-web.yml");
    let am_port = common::free_port();
    let mut am = std::process::Command::new(am_bin)
        .arg(format!(
            "--config.file={}",
            dir.path().join("am.yml").display()
        ))
        .arg(format!(
            "--web.config.file={}",
            dir.path().join("am-web.yml").display()
        ))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("am-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let am_base = format!("http://127.0.0.1:{am_port}");
    // base64("vigil:vigil-secret")
    let am_get = |path: &str| -> Option<Value> {
        let r = ureq::get(&format!("{am_base}{path}"))
            .set("Authorization", "Basic dmlnaWw6dmlnaWwtc2VjcmV0")
            .timeout(Duration::from_secs(5))
            .call()
            .ok()?;
        serde_json::from_str(&r.into_string().ok()?).ok()
    };
    wait_for("alertmanager ready", Duration::from_secs(30), || {
        am_get("/api/v2/status").is_some()
    });
    assert!(
        common::try_get(&format!("{am_base}/api/v2/alerts")).is_ok_and(|(s, _)| s == 401),
        "alertmanager must refuse requests without credentials"
    );
    std::fs::write(dir.path().join("rules.yml"), TARGET_DOWN).expect("write rules");
    std::fs::write(dir.path().join("am-password"), "vigil-secret\n").expect("write password");
    std::fs::write(
        dir.path().join("alertmanagers.json"),
        format!(
            "[{{\"targets\": [\"127.0.0.1:{am_port}\"], \"labels\": {{\"role\": \"primary\"}}}}]"
        ),
    )
    .expect("write file_sd");
    let cfg = dir.path().join("vigil.yaml");
    std::fs::write(
        &cfg,
        r#"global:
  external_labels: {cluster: test}
alerting:
  resend_delay: 1s
  alert_relabel_configs:
    - {source_labels: [cluster], target_label: region, replacement: 'eu-$1'}
  alertmanagers:
    - file_sd_configs: [{files: [alertmanagers.json]}]
      relabel_configs:
        - {source_labels: [role], regex: primary, action: keep}
      basic_auth: {username: vigil, password_file: am-password}
      alert_relabel_configs:
        - {target_label: sent_to, replacement: primary}
    - static_configs: [{targets: ['127.0.0.1:1'], labels: {role: standby}}]
      relabel_configs:
        - {source_labels: [role], regex: primary, action: keep}
rule_files: [rules.yml]
"#,
    )
    .expect("write config");
    let v = Vigil::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().expect("utf-8")],
    );
    let (_, ams) = get_json(&v.url("/api/v1/alertmanagers"));
    assert_eq!(
        ams["data"]["activeAlertmanagers"],
        serde_json::json!([{"url": format!("{am_base}/api/v2/alerts")}]),
        "{ams}"
    );
    assert_eq!(
        ams["data"]["droppedAlertmanagers"],
        serde_json::json!([{"url": "http://127.0.0.1:1/api/v2/alerts"}]),
        "{ams}"
    );
    let up = |value: f64| up_is(&v, value);
    up(0.0);
    let am_alerts = || {
        am_get("/api/v2/alerts")
            .and_then(|b| b.as_array().cloned())
            .unwrap_or_default()
    };
    wait_for("the alert in Alertmanager", Duration::from_secs(30), || {
        am_alerts()
            .iter()
            .any(|a| a["labels"]["alertname"] == "TargetDown")
    });
    let a = am_alerts()
        .into_iter()
        .find(|a| a["labels"]["alertname"] == "TargetDown")
        .expect("alert");
    assert_eq!(a["labels"]["cluster"], "test", "{a}");
    assert_eq!(a["labels"]["region"], "eu-test", "{a}");
    assert_eq!(a["labels"]["sent_to"], "primary", "{a}");
    assert_eq!(a["labels"]["severity"], "page");
    assert_eq!(a["annotations"]["summary"], "a:9100 down");
    assert_eq!(a["status"]["state"], "active", "{a}");
    assert!(
        a["generatorURL"]
            .as_str()
            .is_some_and(|u| u.starts_with(&format!("{}/graph?g0.expr=up+%3D%3D+0", v.base))),
        "{a}"
    );
    let firing = hook_with(&hooks, "firing");
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["alerts"][0]["labels"]["instance"], "a:9100");
    // The series recovers: the alert resolves in Alertmanager and the
    // webhook hears it.
    up(1.0);
    hook_with(&hooks, "resolved");
    let body = am_get("/api/v2/alerts?active=true").unwrap_or(Value::Null);
    assert!(
        body.as_array()
            .is_none_or(|a| a.iter().all(|x| x["labels"]["alertname"] != "TargetDown")),
        "{body}"
    );
    let (_, metrics) = common::get(&v.url("/metrics"));
    let sent: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vigil_notifications_sent_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(sent >= 2.0, "firing and resolved sent: {metrics}");
    let _ = am.kill();
    let _ = am.wait();
}

/// Log-based rules in Loki's ruler format: a LogQL metric expression over
/// pushed lines makes an alert fire, and a recording rule's output lands
/// in the metric store; a log query as a rule is refused at load.
#[test]
fn log_rules_fire_from_pushed_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("log-rules.yml"),
        "groups:\n  - name: logs\n    interval: 1s\n    rules:\n      - record: app:log_errors:count1m\n        expr: sum by (app) (count_over_time({app=~\".+\"} |= \"error\" [1m]))\n      - alert: ManyErrors\n        expr: sum by (app) (count_over_time({app=~\".+\"} |= \"error\" [1m])) > 2\n        annotations: {summary: '{{ $labels.app }} logged {{ $value }} errors in a minute'}\n",
    )
    .expect("write rules");
    let cfg = dir.path().join("vigil.yaml");
    std::fs::write(&cfg, "log_rule_files: [log-rules.yml]\n").expect("write config");
    let v = Vigil::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().expect("utf-8")],
    );
    let now_ns = now_ms() * 1_000_000;
    let values: Vec<Value> = (0..4)
        .map(|i| {
            serde_json::json!([
                (now_ns - 1_000_000_000 + i).to_string(),
                format!("error: request {i} failed")
            ])
        })
        .chain(std::iter::once(serde_json::json!([
            now_ns.to_string(),
            "all fine"
        ])))
        .collect();
    let body =
        serde_json::json!({"streams": [{"stream": {"app": "web"}, "values": values}]}).to_string();
    let (status, text) = common::post(
        &v.url("/loki/api/v1/push"),
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(status, 204, "{text}");
    wait_for("ManyErrors firing", Duration::from_secs(20), || {
        alert(&alerts(&v), "ManyErrors").is_some_and(|a| a["state"] == "firing")
    });
    let all = alerts(&v);
    let a = alert(&all, "ManyErrors").expect("alert");
    assert_eq!(a["labels"]["app"], "web");
    assert_eq!(
        a["annotations"]["summary"],
        "web logged 4 errors in a minute"
    );
    wait_for("the recorded series", Duration::from_secs(10), || {
        query(&v, "app:log_errors:count1m{app=\"web\"}")
            .first()
            .is_some_and(|s| s["value"][1] == "4")
    });
    // A log query is not a rule: the reload is refused, naming the rule.
    std::fs::write(
        dir.path().join("log-rules.yml"),
        "groups:\n  - name: logs\n    rules:\n      - alert: Lines\n        expr: '{app=\"web\"} |= \"error\"'\n",
    )
    .expect("rewrite rules");
    let (status, text) = common::post(&v.url("/-/reload"), "text/plain", b"");
    assert_eq!(status, 500, "{text}");
    assert!(
        text.contains("group \"logs\", rule 1, \"Lines\": a log query is not a rule expression"),
        "{text}"
    );
}

/// The built-in notifier (no Alertmanager): an alertmanager.yml route and
/// webhook receiver; the receiver is down at first and still gets the
/// firing notification (retries), with Alertmanager's payload; then the
/// resolved one.
#[test]
fn the_built_in_notifier_routes_groups_and_retries_webhooks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook_port = common::free_port();
    std::fs::write(
        dir.path().join("am.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n  routes:\n    - matchers: ['severity=\"never\"']\n      receiver: nobody\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{hook_port}/hook'}}]\n  - name: nobody\n"
        ),
    )
    .expect("write am.yml");
    let v = start_with_notifier(dir.path(), "global:\n  external_labels: {cluster: test}\n");
    let up = |value: f64| up_is(&v, value);
    up(0.0);
    wait_for("TargetDown firing", Duration::from_secs(20), || {
        alert(&alerts(&v), "TargetDown").is_some_and(|a| a["state"] == "firing")
    });
    // The receiver comes up a few seconds late.
    std::thread::sleep(Duration::from_secs(3));
    let (_, hooks) = webhook_receiver(hook_port);
    {
        let n = hook_with(&hooks, "firing");
        assert_eq!(n["version"], "4");
        assert_eq!(n["receiver"], "hook");
        assert_eq!(n["groupKey"], "{}:{alertname=\"TargetDown\"}", "{n}");
        assert_eq!(n["groupLabels"]["alertname"], "TargetDown");
        assert_eq!(n["commonLabels"]["cluster"], "test");
        assert_eq!(n["externalURL"], v.base.as_str());
        let a = &n["alerts"][0];
        assert_eq!(a["status"], "firing");
        assert_eq!(a["labels"]["instance"], "a:9100");
        assert_eq!(a["labels"]["severity"], "page");
        assert_eq!(a["annotations"]["summary"], "a:9100 down");
        assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
        assert!(
            a["startsAt"]
                .as_str()
                .is_some_and(|s| s.ends_with('Z') && s.starts_with("20")),
            "{a}"
        );
        assert!(
            a["generatorURL"]
                .as_str()
                .is_some_and(|u| u.starts_with(&format!("{}/graph?g0.expr=up+%3D%3D+0", v.base))),
            "{a}"
        );
        assert_eq!(a["fingerprint"].as_str().map(str::len), Some(16));
    }
    up(1.0);
    let n = hook_with(&hooks, "resolved");
    let h = hooks.lock().expect("lock");
    let a = &n["alerts"][0];
    assert_eq!(a["status"], "resolved");
    assert!(
        a["endsAt"]
            .as_str()
            .is_some_and(|s| s != "0001-01-01T00:00:00Z"),
        "{a}"
    );
    let firing = h.iter().filter(|h| h["status"] == "firing").count();
    assert_eq!(
        firing, 1,
        "one firing notification, not one per evaluation: {h:?}"
    );
}

/// Silences (API v2: create, list, expire) and inhibition in the built-in
/// notifier: a silenced alert is not notified until its silence is
/// expired; a warning is inhibited while a critical alert for the same
/// instance fires.
#[test]
fn silences_and_inhibition_mute_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook_port, hooks) = webhook_receiver(0);
    std::fs::write(
        dir.path().join("am.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{hook_port}/hook'}}]\ninhibit_rules:\n  - source_matchers: ['severity=\"critical\"']\n    target_matchers: ['severity=\"warning\"']\n    equal: [instance]\n"
        ),
    )
    .expect("write am.yml");
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Loud\n        expr: up == 0\n        labels: {severity: critical}\n      - alert: Quiet\n        expr: up == 0\n        labels: {severity: warning}\n      - alert: Hushed\n        expr: up == 0\n",
    )
    .expect("write rules");
    let cfg = dir.path().join("vigil.yaml");
    std::fs::write(
        &cfg,
        "alerting:\n  resend_delay: 1s\n  notifier_config_file: am.yml\nrule_files: [rules.yml]\n",
    )
    .expect("write config");
    let v = Vigil::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().expect("utf-8")],
    );
    let now = chrono::Utc::now();
    let silence = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "Hush.*", "isRegex": true, "isEqual": true}],
        "startsAt": (now - chrono::Duration::seconds(1)).to_rfc3339(),
        "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
        "createdBy": "test",
        "comment": "maintenance",
    });
    let (status, body) = common::post(
        &v.url("/api/v2/silences"),
        "application/json",
        silence.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).expect("json")["silenceID"]
        .as_str()
        .expect("silenceID")
        .to_string();
    let (_, listed) = get_json(&v.url("/api/v2/silences"));
    assert_eq!(listed[0]["status"]["state"], "active", "{listed}");
    assert_eq!(listed[0]["comment"], "maintenance");
    // A bad silence is refused with the reason.
    let (status, body) = common::post(
        &v.url("/api/v2/silences"),
        "application/json",
        br#"{"matchers": [], "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z"}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at least one matcher"), "{body}");

    up_is(&v, 0.0);
    let loud = hook_with(&hooks, "firing");
    assert_eq!(loud["groupLabels"]["alertname"], "Loud", "{loud}");
    // Quiet is inhibited by Loud (same instance), Hushed is silenced.
    std::thread::sleep(Duration::from_secs(4));
    let names: Vec<String> = hooks
        .lock()
        .expect("lock")
        .iter()
        .map(|h| {
            h["groupLabels"]["alertname"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(names, ["Loud"], "only the critical alert is told");
    // Expiring the silence lets Hushed through.
    let r = ureq::delete(&v.url(&format!("/api/v2/silence/{id}"))).call();
    assert!(r.is_ok(), "{r:?}");
    let (_, one) = get_json(&v.url(&format!("/api/v2/silence/{id}")));
    assert_eq!(one["status"]["state"], "expired", "{one}");
    wait_for(
        "Hushed after its silence expired",
        Duration::from_secs(20),
        || {
            hooks
                .lock()
                .expect("lock")
                .iter()
                .any(|h| h["groupLabels"]["alertname"] == "Hushed")
        },
    );
    assert!(
        !hooks
            .lock()
            .expect("lock")
            .iter()
            .any(|h| h["groupLabels"]["alertname"] == "Quiet"),
        "Quiet stays inhibited"
    );
}

/// Slack, PagerDuty (Events API v2, routing key from a file) and Discord
/// receivers get their own payload shapes: firing, then resolved.
#[test]
fn slack_pagerduty_and_discord_receivers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, got) = webhook_receiver(0);
    std::fs::write(dir.path().join("pd-key"), "R0UTINGKEY\n").expect("write key");
    std::fs::write(
        dir.path().join("am.yml"),
        format!(
            "route:\n  receiver: chat\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: chat\n    slack_configs: [{{api_url: 'http://127.0.0.1:{port}/slack', channel: '#ops', send_resolved: true}}]\n    pagerduty_configs: [{{url: 'http://127.0.0.1:{port}/pd', routing_key_file: {}}}]\n    discord_configs: [{{webhook_url: 'http://127.0.0.1:{port}/discord'}}]\n",
            dir.path().join("pd-key").display()
        ),
    )
    .expect("write am.yml");
    let v = start_with_notifier(dir.path(), "");
    up_is(&v, 0.0);
    let find = |pred: &dyn Fn(&Value) -> bool| -> Value {
        let mut found = None;
        wait_for("a receiver payload", Duration::from_secs(30), || {
            found = got.lock().expect("lock").iter().find(|b| pred(b)).cloned();
            found.is_some()
        });
        found.unwrap_or(Value::Null)
    };
    let slack = find(&|b| b["attachments"][0]["color"] == "danger");
    assert_eq!(slack["channel"], "#ops");
    assert_eq!(slack["attachments"][0]["title"], "[FIRING:1] TargetDown");
    assert!(
        slack["attachments"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("a:9100 down")),
        "{slack}"
    );
    let pd = find(&|b| b["event_action"] == "trigger");
    assert_eq!(pd["routing_key"], "R0UTINGKEY");
    assert_eq!(
        pd["payload"]["severity"], "critical",
        "severity page maps to critical: {pd}"
    );
    let dedup = pd["dedup_key"].as_str().expect("dedup_key").to_string();
    let discord = find(&|b| b["embeds"][0]["title"] == "[FIRING:1] TargetDown");
    assert!(discord["embeds"][0]["color"].is_number());
    up_is(&v, 1.0);
    let resolved = find(&|b| b["event_action"] == "resolve");
    assert_eq!(
        resolved["dedup_key"],
        dedup.as_str(),
        "the same incident is resolved"
    );
    let slack_ok = find(&|b| b["attachments"][0]["color"] == "good");
    assert_eq!(slack_ok["attachments"][0]["title"], "[RESOLVED] TargetDown");
    let (_, metrics) = common::get(&v.url("/metrics"));
    assert!(
        !metrics.contains("R0UTINGKEY"),
        "secrets stay out of /metrics"
    );
}

/// The built-in notifier's notification log: a restart does not repeat a
/// notification already sent, and the resolution still arrives after it.
#[test]
fn a_restart_neither_repeats_nor_drops_notifications() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook_port, hooks) = webhook_receiver(0);
    std::fs::write(
        dir.path().join("am.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{hook_port}/hook'}}]\n"
        ),
    )
    .expect("write am.yml");
    let mut v = start_with_notifier(dir.path(), "");
    up_is(&v, 0.0);
    hook_with(&hooks, "firing");
    assert_eq!(v.terminate(), Some(0));
    let port = v.base.rsplit(':').next().expect("port").to_string();
    let v = Vigil::start_on(
        &dir.path().join("data"),
        &port,
        &[
            "--config",
            dir.path().join("vigil.yaml").to_str().expect("utf-8"),
        ],
    );
    for _ in 0..8 {
        up_is(&v, 0.0);
        std::thread::sleep(Duration::from_millis(500));
    }
    let firing = |h: &Hooks| {
        h.lock()
            .expect("lock")
            .iter()
            .filter(|x| x["status"] == "firing")
            .count()
    };
    assert_eq!(firing(&hooks), 1, "not told again after the restart");
    up_is(&v, 1.0);
    let resolved = hook_with(&hooks, "resolved");
    assert_eq!(resolved["alerts"][0]["labels"]["alertname"], "TargetDown");
    assert_eq!(firing(&hooks), 1);
}

/// `mute_time_intervals` and `active_time_intervals` hold a route's
/// notifications back; `POST /-/reload` rereads the notifier's config, and
/// the held alerts go out under the new routes.
#[test]
fn time_intervals_mute_routes_and_a_reload_changes_the_notifier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook_port, hooks) = webhook_receiver(0);
    let am = |intervals: bool| {
        let (mute, active) = if intervals {
            (
                "\n    mute_time_intervals: [always]",
                "\n    active_time_intervals: [long-ago]",
            )
        } else {
            ("", "")
        };
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n  routes:\n  - matchers: [alertname=Muted]{mute}\n  - matchers: [alertname=Inactive]{active}\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{hook_port}/hook'}}]\ntime_intervals:\n  - name: always\n    time_intervals: [{{weekdays: ['sunday:saturday']}}]\n  - name: long-ago\n    time_intervals: [{{years: ['2000:2001']}}]\n"
        )
    };
    std::fs::write(dir.path().join("am.yml"), am(true)).expect("write am.yml");
    let v = start_with_notifier(dir.path(), "");
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Told\n        expr: up == 0\n      - alert: Muted\n        expr: up == 0\n      - alert: Inactive\n        expr: up == 0\n",
    )
    .expect("write rules");
    let (status, body) = common::post(&v.url("/-/reload"), "text/plain", b"");
    assert_eq!(status, 200, "{body}");
    up_is(&v, 0.0);
    let told = hook_with(&hooks, "firing");
    assert_eq!(told["groupLabels"]["alertname"], "Told", "{told}");
    let names = |h: &Hooks| -> Vec<String> {
        let mut n: Vec<String> = h
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|x| x["groupLabels"]["alertname"].as_str().map(String::from))
            .collect();
        n.sort();
        n.dedup();
        n
    };
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        names(&hooks),
        ["Told"],
        "muted and inactive routes stay quiet"
    );
    // A broken notifier config is refused and changes nothing.
    std::fs::write(dir.path().join("am.yml"), "route: {receiver: nobody}\n").expect("write");
    let (status, body) = common::post(&v.url("/-/reload"), "text/plain", b"");
    assert!(status >= 400, "{status} {body}");
    assert!(body.contains("notifier_config_file"), "{body}");
    std::fs::write(dir.path().join("am.yml"), am(false)).expect("write am.yml");
    let (status, body) = common::post(&v.url("/-/reload"), "text/plain", b"");
    assert_eq!(status, 200, "{body}");
    wait_for(
        "Muted and Inactive after the reload",
        Duration::from_secs(20),
        || {
            up_is(&v, 0.0);
            names(&hooks) == ["Inactive", "Muted", "Told"]
        },
    );
    let told_twice = hooks
        .lock()
        .expect("lock")
        .iter()
        .filter(|x| x["groupLabels"]["alertname"] == "Told")
        .count();
    assert_eq!(told_twice, 1, "a reload does not repeat what was sent");
}
