//! `/api/vigil/dashboards` over HTTP: built-ins listed and read-only,
//! saved dashboards as pretty JSON files in `dashboards_dir`, errors that
//! name the field, and Grafana import listing what it leaves out.

mod common;

use common::*;

const DOC: &str = r#"{"uid": "team-a", "title": "Team A",
  "variables": [{"name": "job", "query": "label_values(up, job)"}],
  "panels": [{"title": "Up", "type": "stat", "targets": [{"expr": "up{job=\"$job\"}"}]}]}"#;

#[test]
fn save_list_read_delete_and_refuse() {
    let dir = tempfile::tempdir().unwrap();
    // A relative dashboards_dir is taken from the config file's directory.
    std::fs::write(
        dir.path().join("vigil.yml"),
        "dashboards_dir: team-dashboards\n",
    )
    .unwrap();
    let cfg = dir.path().join("vigil.yml");
    let v = Vigil::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let url = |p: &str| v.url(&format!("/api/vigil/dashboards{p}"));

    let (code, list) = get_json(&url(""));
    assert_eq!(code, 200);
    let uids: Vec<&str> = list["dashboards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids, ["node", "pods", "etcd", "vigil"]);

    assert_eq!(send("PUT", &url("/team-a"), Some(DOC)).0, 201);
    assert_eq!(send("PUT", &url("/team-a"), Some(DOC)).0, 200);
    let file = dir.path().join("team-dashboards/team-a.json");
    let text = std::fs::read_to_string(&file).expect("saved as a file");
    assert!(text.contains("\n  \"title\": \"Team A\""), "{text}");
    let (code, got) = get_json(&url("/team-a"));
    assert_eq!(code, 200);
    assert_eq!(got["builtin"], false);
    assert_eq!(got["dashboard"]["panels"][0]["width"], 6);
    let (_, list) = get_json(&url(""));
    assert_eq!(list["dashboards"][4]["uid"], "team-a");

    // Errors name what is wrong.
    let (code, body) = send(
        "PUT",
        &url("/team-a"),
        Some(&DOC.replace("\"stat\"", "\"pie\"")),
    );
    assert_eq!(code, 400);
    assert!(body.contains("line ") && body.contains("pie"), "{body}");
    let bad_width = DOC.replace("\"type\": \"stat\"", "\"type\": \"stat\", \"width\": 20");
    let (code, body) = send("PUT", &url("/team-a"), Some(&bad_width));
    assert_eq!(code, 400);
    assert!(body.contains("panels[0].width"), "{body}");
    let (code, body) = send("PUT", &url("/other"), Some(DOC));
    assert_eq!(code, 400);
    assert!(body.contains("other") && body.contains("team-a"), "{body}");
    let (code, body) = send("PUT", &url("/node"), Some(&DOC.replace("team-a", "node")));
    assert_eq!(code, 409, "{body}");
    assert_eq!(send("DELETE", &url("/node"), None).0, 409);
    assert_eq!(get_json(&url("/nope")).0, 404);

    // A broken file is reported, not hidden.
    std::fs::write(dir.path().join("team-dashboards/broken.json"), "{").unwrap();
    let (_, list) = get_json(&url(""));
    assert_eq!(list["errors"][0]["file"], "broken.json");

    assert_eq!(send("DELETE", &url("/team-a"), None).0, 204);
    assert!(!file.exists());
    assert_eq!(send("DELETE", &url("/team-a"), None).0, 404);
}

#[test]
fn grafana_import_converts_and_lists_what_it_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(&dir.path().join("data"), &[]);
    let grafana = r#"{"title": "Community", "uid": "abc", "time": {"from": "now-6h", "to": "now"},
      "templating": {"list": [{"name": "job", "type": "query", "query": "label_values(up, job)"}]},
      "panels": [
        {"type": "timeseries", "title": "Up", "gridPos": {"w": 24, "h": 8},
         "targets": [{"expr": "up{job=~\"$job\"}", "legendFormat": "{{instance}}"}]},
        {"type": "text", "title": "Notes"}]}"#;
    let (code, body) = post(
        &v.url("/api/vigil/dashboards/import"),
        "application/json",
        grafana.as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["dashboard"]["uid"], "abc");
    assert_eq!(r["dashboard"]["time"], "6h");
    assert_eq!(r["dashboard"]["panels"][0]["width"], 12);
    assert_eq!(
        r["unsupported"][0],
        "panel \"Notes\": panel type text is not supported"
    );
    // What the import answers can be saved as it is.
    let doc = r["dashboard"].to_string();
    assert_eq!(
        send("PUT", &v.url("/api/vigil/dashboards/abc"), Some(&doc)).0,
        201
    );

    let (code, body) = post(
        &v.url("/api/vigil/dashboards/import"),
        "application/json",
        b"{\"title\": 1",
    );
    assert_eq!(code, 400);
    assert!(body.contains("not JSON"), "{body}");
    let (code, body) = post(
        &v.url("/api/vigil/dashboards/import"),
        "application/json",
        b"{\"title\": \"x\"}",
    );
    assert_eq!(code, 400);
    assert!(
        body.contains("neither \\\"panels\\\" nor \\\"rows\\\""),
        "{body}"
    );
}
